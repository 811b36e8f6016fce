//! A linear layer `y = x·W (+ b)` as backend GEMM calls, for both weight
//! layouts found in checkpoints: GPT-2's `Conv1D` stores W as [in, out],
//! `nn.Linear` as [out, in]. The output rows (y, and dy in the backward) may
//! be wider than `out` (padded LM-head logits).

use crate::backend::{Act, Backend, Gemm};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightLayout {
    /// W stored [in, out] (GPT-2 `Conv1D`).
    InOut,
    /// W stored [out, in] (`nn.Linear`).
    OutIn,
}

#[derive(Clone, Copy, Debug)]
pub struct Linear {
    pub inp: usize,
    pub out: usize,
    pub layout: WeightLayout,
    /// Elements between consecutive rows of y and dy (≥ `out`).
    pub out_stride: usize,
}

impl Linear {
    pub fn conv1d(inp: usize, out: usize) -> Self {
        Linear { inp, out, layout: WeightLayout::InOut, out_stride: out }
    }
    pub fn nn_linear(inp: usize, out: usize) -> Self {
        Linear { inp, out, layout: WeightLayout::OutIn, out_stride: out }
    }
    /// The same layer writing (and reading back the gradient of) output rows `stride` apart.
    pub fn with_out_stride(self, stride: usize) -> Self {
        assert!(stride >= self.out, "an output row stride below the row");
        Linear { out_stride: stride, ..self }
    }

    /// `y[rows, out] = x[rows, inp] · W (+ b)`.
    pub fn forward<B: Backend>(&self, be: &B, y: B::ViewMut<'_>, x: B::View<'_>, w: B::View<'_>, b: Option<B::View<'_>>, rows: usize) {
        be.matmul(y, x, w, b, self.forward_gemm(rows));
    }

    /// `pre = x · W (+ b)` and `y = act(pre)` ([`Backend::matmul_act`]).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_act<B: Backend>(&self, be: &B, act: Act, y: B::ViewMut<'_>, pre: B::ViewMut<'_>, x: B::View<'_>, w: B::View<'_>, b: Option<B::View<'_>>, rows: usize) {
        be.matmul_act(act, y, pre, x, w, b, self.forward_gemm(rows));
    }

    fn forward_gemm(&self, rows: usize) -> Gemm {
        let g = Gemm::new(rows, self.out, self.inp).ldc(self.out_stride);
        if self.layout == WeightLayout::OutIn {
            g.tb()
        } else {
            g
        }
    }

    /// `dx = dy · Wᵀ`.
    fn input_grad_gemm(&self, rows: usize) -> Gemm {
        let g = Gemm::new(rows, self.inp, self.out).lda(self.out_stride);
        if self.layout == WeightLayout::OutIn {
            g
        } else {
            g.tb()
        }
    }

    /// `dpre = act'(pre) ⊙ (dy · Wᵀ)`: for a layer whose input is
    /// `act(pre)`, the gradient of `pre` from that of the layer's output
    /// ([`Backend::matmul_act_backward`]; `scratch` as there). `backward`
    /// with no `dx` gives the layer's own gradients.
    #[allow(clippy::too_many_arguments)]
    pub fn input_grad_through_act<B: Backend>(
        &self,
        be: &B,
        act: Act,
        dpre: B::ViewMut<'_>,
        pre: B::View<'_>,
        scratch: B::ViewMut<'_>,
        dy: B::View<'_>,
        w: B::View<'_>,
        rows: usize,
    ) {
        be.matmul_act_backward(act, dpre, pre, scratch, dy, w, self.input_grad_gemm(rows));
    }

    /// `dx (=|+=) dy · Wᵀ` (accumulates when `acc_dx`), `dW += xᵀ·dy` in W's
    /// layout, `db += Σ_rows dy`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        be: &B,
        dx: Option<B::ViewMut<'_>>,
        dw: B::ViewMut<'_>,
        db: Option<B::ViewMut<'_>>,
        dy: B::View<'_>,
        x: B::View<'_>,
        w: B::View<'_>,
        rows: usize,
        acc_dx: bool,
    ) {
        let dy_rows = self.out_stride;
        if let Some(dx) = dx {
            let g = self.input_grad_gemm(rows);
            be.matmul(dx, dy, w, None, if acc_dx { g.acc() } else { g });
        }
        match self.layout {
            // dW[in,out] += xᵀ[in,rows] · dy[rows,out]
            WeightLayout::InOut => be.matmul(dw, x, dy, None, Gemm::new(self.inp, self.out, rows).ta().acc().ldb(dy_rows)),
            // dW[out,in] += dyᵀ[out,rows] · x[rows,in]
            WeightLayout::OutIn => be.matmul(dw, dy, x, None, Gemm::new(self.out, self.inp, rows).ta().acc().lda(dy_rows)),
        }
        if let Some(db) = db {
            assert_eq!(dy_rows, self.out, "the bias gradient takes dense dy rows");
            be.bias_backward(db, dy, rows, self.out);
        }
    }
}
