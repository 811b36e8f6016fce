//! Every op of the set, run on every device on the same random inputs and
//! compared with the CPU reference (ggml's test-backend-ops idea: one test
//! body, every backend). Outputs that an op overwrites start as NaN, so an
//! element the device forgets to write fails; outputs an op accumulates into
//! start random, so `+=` is checked too. Shapes cross the kernels' tile and
//! warp boundaries and every attention head-size bound (32, 64, 128).
//!
//! In bf16, inputs held in the compute type are rounded to bf16 on the host
//! for both backends, so the comparison measures the device's arithmetic and
//! output rounding, not the rounding of the inputs.
//!
//! The CUDA backend runs twice: on the kernel emulator (the kernels compiled
//! for the host, so every launcher and kernel is checked on any machine) and
//! on a real GPU where there is one; without one that half prints
//! `skipped: no CUDA device (why)`.

mod common;

use hhi::backend::cpu::Cpu;
use hhi::backend::cuda::Cuda;
use hhi::backend::{Act, AdamW, AttnGrads, AttnInputs, AttnShape, Backend, DecaySegment, Gemm};
use hhi::generate::candidates::{BeamPlan, BeamRow};
use hhi::generate::{SamplingConfig, TokenPlan};
use hhi::rng::Rng;
use hhi::tensor::DType;

/// Normalised error allowed between a device and the CPU,
/// max |device − cpu| / max |cpu|: f32, and bf16 (PARITY.md's forward bound).
const F32_TOLERANCE: f32 = 1e-4;
const BF16_TOLERANCE: f32 = 2e-2;

fn random(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32 * scale).collect()
}

/// Runs the op set on one backend and collects every output, by name.
struct Recorder<'a, B: Backend> {
    be: &'a B,
    /// Round compute-type inputs to bf16 first (same rounding on every backend).
    bf16_inputs: bool,
    outputs: Vec<(String, Vec<f32>)>,
}

impl<'a, B: Backend> Recorder<'a, B> {
    /// A buffer in the compute type (parameters, activations).
    fn up(&self, host: &[f32]) -> B::Buf {
        let host: Vec<f32> = if self.bf16_inputs { host.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect() } else { host.to_vec() };
        self.be.upload(&host).expect("upload")
    }
    /// A buffer that is f32 on every backend (gradients, statistics, masks).
    fn up32(&self, host: &[f32]) -> B::Buf {
        self.be.upload_f32(host).expect("upload")
    }
    fn keep(&mut self, name: String, buf: &B::Buf) {
        self.outputs.push((name, self.be.download(B::view(buf)).expect("download")));
    }
    /// A buffer of `n` NaNs: every element must be written by the op.
    fn poisoned(&self, n: usize) -> B::Buf {
        self.up(&vec![f32::NAN; n])
    }
    fn poisoned32(&self, n: usize) -> B::Buf {
        self.up32(&vec![f32::NAN; n])
    }

    fn matmul(&mut self, seed: u64) {
        let (m, n, k) = (37, 53, 29);
        let mut rng = Rng::new(seed);
        let (a, b, bias, init) = (random(&mut rng, m * k, 1.0), random(&mut rng, k * n, 1.0), random(&mut rng, n, 1.0), random(&mut rng, m * n, 1.0));
        let (a, b, bias) = (self.up(&a), self.up(&b), self.up(&bias));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (with_bias, acc) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut g = Gemm::new(m, n, k);
                (g.trans_a, g.trans_b, g.accumulate) = (ta, tb, acc);
                let mut out = if acc { self.up(&init) } else { self.poisoned(m * n) };
                self.be.matmul(B::view_mut(&mut out), B::view(&a), B::view(&b), with_bias.then(|| B::view(&bias)), g);
                self.keep(format!("matmul ta={ta} tb={tb} bias={with_bias} acc={acc}"), &out);
            }
        }
        // Rows wider than the matrices (as padded logits rows are): every
        // operand's padding holds values that must not be read, the output's
        // values that must stay.
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (with_bias, acc) in [(true, false), (false, true)] {
                let mut g = Gemm::new(m, n, k);
                (g.trans_a, g.trans_b, g.accumulate) = (ta, tb, acc);
                let g = g.lda(g.stored_a().cols + 3).ldb(g.stored_b().cols + 5).ldc(n + 8);
                let (a, b) = (self.up(&random(&mut rng, g.stored_a().span(), 1.0)), self.up(&random(&mut rng, g.stored_b().span(), 1.0)));
                let mut out = self.up(&random(&mut rng, g.stored_out().span(), 1.0));
                self.be.matmul(B::view_mut(&mut out), B::view(&a), B::view(&b), with_bias.then(|| B::view(&bias)), g);
                self.keep(format!("matmul strided rows ta={ta} tb={tb} bias={with_bias} acc={acc}"), &out);
            }
        }
        // A weight gradient: compute-type operands accumulated into f32.
        let dy = self.up(&random(&mut rng, m * n, 1.0));
        let mut dw = self.up32(&init[..k * n]);
        self.be.matmul(B::view_mut(&mut dw), B::view(&a), B::view(&dy), None, Gemm::new(k, n, m).ta().acc());
        self.keep("matmul weight gradient xᵀ·dy into f32".into(), &dw);
        // The bias gradient in 16-byte packs (304 columns) and one element at
        // a time (53), over several row splits (300 rows) and one (40).
        for (rows, width) in [(300, n), (40, n), (300, 304), (40, 304)] {
            let mut dbias = self.up32(&random(&mut rng, width, 1.0));
            let dout = self.up(&random(&mut rng, rows * width, 1.0));
            self.be.bias_backward(B::view_mut(&mut dbias), B::view(&dout), rows, width);
            self.keep(format!("bias_backward {rows}×{width}"), &dbias);
        }
    }

    /// A linear layer with its activation (`matmul_act`) and the gradient
    /// through both (`matmul_act_backward`): output rows 48 wide (a multiple
    /// of 8, which cuBLASLt's GELU epilogues take) and 53 (they do not), with
    /// and without a bias, weights in both layouts, a GELU the epilogues
    /// have and one they do not.
    fn matmul_act(&mut self, seed: u64) {
        let (rows, k, p) = (37, 29, 21);
        let mut rng = Rng::new(seed);
        for n in [48, 53] {
            let (x, bias) = (self.up(&random(&mut rng, rows * k, 1.0)), self.up(&random(&mut rng, n, 1.0)));
            let (w, dz, wz) = (self.up(&random(&mut rng, k * n, 0.5)), self.up(&random(&mut rng, rows * p, 1.0)), self.up(&random(&mut rng, n * p, 0.5)));
            let pre_in = self.up(&random(&mut rng, rows * n, 2.0));
            for act in [Act::GeluTanh, Act::QuickGelu] {
                for (transposed, with_bias) in [(false, true), (true, false)] {
                    let g = if transposed { Gemm::new(rows, n, k).tb() } else { Gemm::new(rows, n, k) };
                    let (mut out, mut pre) = (self.poisoned(rows * n), self.poisoned(rows * n));
                    self.be.matmul_act(act, B::view_mut(&mut out), B::view_mut(&mut pre), B::view(&x), B::view(&w), with_bias.then(|| B::view(&bias)), g);
                    let label = format!("n={n} {act:?} transposed={transposed} bias={with_bias}");
                    self.keep(format!("matmul_act out {label}"), &out);
                    self.keep(format!("matmul_act pre {label}"), &pre);
                    // The next layer's input gradient dz·Wzᵀ (Wz stored [n, p], or [p, n]) through act.
                    let g = if transposed { Gemm::new(rows, n, p) } else { Gemm::new(rows, n, p).tb() };
                    let (mut dpre, mut scratch) = (self.poisoned(rows * n), self.poisoned(rows * n));
                    self.be.matmul_act_backward(act, B::view_mut(&mut dpre), B::view(&pre_in), B::view_mut(&mut scratch), B::view(&dz), B::view(&wz), g);
                    self.keep(format!("matmul_act_backward {label}"), &dpre);
                }
            }
        }
        // GELU and its derivative over [-2.5, 2.5], where erf GELU and its
        // tanh approximation differ most (4.7e-4, and 8.7e-4 in the
        // derivative): products of one term, x·1 and 1·1, so in f32 the
        // outputs are GELU's own values and a GEMM epilogue computing the
        // other GELU fails the comparison.
        let (rows, n) = (64, 48);
        let sweep: Vec<f32> = (0..rows).map(|r| -2.5 + 5.0 * r as f32 / (rows - 1) as f32).collect();
        let (x, ones, pre) = (self.up(&sweep), self.up(&vec![1.0; rows.max(n)]), self.up(&sweep.iter().flat_map(|&v| [v; 48]).collect::<Vec<_>>()));
        let (mut out, mut pre_out, mut dpre, mut scratch) = (self.poisoned(rows * n), self.poisoned(rows * n), self.poisoned(rows * n), self.poisoned(rows * n));
        self.be.matmul_act(Act::GeluTanh, B::view_mut(&mut out), B::view_mut(&mut pre_out), B::view(&x), B::view(&ones), None, Gemm::new(rows, n, 1));
        self.keep("matmul_act GELU over [-2.5, 2.5]".into(), &out);
        self.be.matmul_act_backward(Act::GeluTanh, B::view_mut(&mut dpre), B::view(&pre), B::view_mut(&mut scratch), B::view(&ones), B::view(&ones), Gemm::new(rows, n, 1));
        self.keep("matmul_act_backward GELU' over [-2.5, 2.5]".into(), &dpre);
    }

    fn elementwise(&mut self, seed: u64) {
        let n = 1000;
        let mut rng = Rng::new(seed);
        let (a, b, d) = (self.up(&random(&mut rng, n, 2.0)), self.up(&random(&mut rng, n, 1.0)), self.up(&random(&mut rng, n, 1.0)));
        let mut out = self.poisoned(n);
        self.be.add(B::view_mut(&mut out), B::view(&a), B::view(&b));
        self.keep("add".into(), &out);
        self.be.add_assign(B::view_mut(&mut out), B::view(&d));
        self.keep("add_assign".into(), &out);
        // One vector onto each of 37 rows of 27 (the last 1000 − 999 values untouched).
        self.be.broadcast_add(B::view_mut(&mut out), B::view(&d), 37, 27);
        self.keep("broadcast_add".into(), &out);
        // And onto 20 rows of 48 (16-byte packs on the CUDA backend; the last 40 untouched).
        self.be.broadcast_add(B::view_mut(&mut out), B::view(&d), 20, 48);
        self.keep("broadcast_add 20×48".into(), &out);
        let mut out = self.poisoned(n);
        self.be.mul(B::view_mut(&mut out), B::view(&a), B::view(&b));
        self.keep("mul".into(), &out);
        self.be.scale(B::view_mut(&mut out), -0.375);
        self.keep("scale".into(), &out);
        for act in [Act::GeluTanh, Act::GeluErf, Act::QuickGelu, Act::Relu, Act::Tanh] {
            let mut out = self.poisoned(n);
            self.be.activation_forward(act, B::view_mut(&mut out), B::view(&a));
            self.keep(format!("activation_forward {act:?}"), &out);
            let mut dinp = self.poisoned(n);
            self.be.activation_backward(act, B::view_mut(&mut dinp), B::view(&a), B::view(&d));
            self.keep(format!("activation_backward {act:?}"), &dinp);
        }
        // Inputs one element in (not 16-byte aligned): the kernels with element access.
        let (a1, b1, d1) = (B::slice(B::view(&a), 1, n - 1), B::slice(B::view(&b), 1, n - 1), B::slice(B::view(&d), 1, n - 1));
        let mut out = self.poisoned(n - 1);
        self.be.mul(B::view_mut(&mut out), a1, b1);
        self.keep("mul, unaligned inputs".into(), &out);
        for act in [Act::GeluTanh, Act::Tanh] {
            let mut out = self.poisoned(n - 1);
            self.be.activation_forward(act, B::view_mut(&mut out), a1);
            self.keep(format!("activation_forward {act:?}, unaligned input"), &out);
            let mut dinp = self.poisoned(n - 1);
            self.be.activation_backward(act, B::view_mut(&mut dinp), a1, d1);
            self.keep(format!("activation_backward {act:?}, unaligned inputs"), &dinp);
        }
        let mut filled = self.poisoned(n);
        self.be.fill(B::slice_mut(B::view_mut(&mut filled), 10, 500), 0.25);
        self.be.fill(B::slice_mut(B::view_mut(&mut filled), 0, 10), -1.0);
        self.be.fill(B::slice_mut(B::view_mut(&mut filled), 510, 490), 3.0);
        self.keep("fill".into(), &filled);
        // copy_rows: 7 rows of 9 floats, strides 20 → 13.
        let src = self.up(&random(&mut rng, 7 * 20, 1.0));
        let mut dst = self.up(&random(&mut rng, 7 * 13, 1.0));
        self.be.copy_rows(B::view_mut(&mut dst), 13, B::view(&src), 20, 7, 9);
        self.keep("copy_rows".into(), &dst);
        // gather_rows: 6 rows picked from 9 (repeats and skips): 24 of each
        // 40 into rows 32 apart (whole 16-byte packs on CUDA), then 9 into 13.
        let index = self.be.upload_ids(&[3, 0, 8, 3, 5, 1]).unwrap();
        let src = self.up(&random(&mut rng, 9 * 40, 1.0));
        let mut dst = self.up(&random(&mut rng, 6 * 32, 1.0));
        self.be.gather_rows(B::view_mut(&mut dst), 32, B::view(&src), 40, &index, 6, 24);
        self.keep("gather_rows (16-byte packs)".into(), &dst);
        let mut dst = self.up(&random(&mut rng, 6 * 13, 1.0));
        self.be.gather_rows(B::view_mut(&mut dst), 13, B::view(&src), 40, &index, 6, 9);
        self.keep("gather_rows".into(), &dst);
    }

    /// LayerNorm and T5's RMS norm, forward and backward. On the CUDA
    /// backend rows of 70 take the kernels that keep rows in registers with
    /// element access, rows of 768 the same with 16-byte packs (150 rows: in
    /// bf16 several rows a warp through the cp.async pipeline), rows of 1,000
    /// that forward and the fused backward, rows of 2,101 and 2,104 the general forward
    /// and the two-kernel backward.
    fn layernorm(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        // 1100 rows: at 200 blocks an SM (a tuning alternative below) the
        // 2-warp pipelined backward's 550 blocks give the dw/db reduce more
        // partial rows than one batch of its loads (32 lanes × 16).
        // Rows over 2,048 take the two-kernel backward, whose dw/db sums run
        // in one row split (3 rows) and in three (130): rows of 2,101 with
        // element access, of 2,104 in 16-byte packs (in f32 and in bf16).
        for (rows, c) in [(19, 70), (21, 768), (150, 768), (1100, 768), (5, 1000), (3, 2101), (130, 2104)] {
            let inp = self.up(&random(&mut rng, rows * c, 3.0).iter().map(|x| x + 1.5).collect::<Vec<_>>());
            let (w, b) = (self.up(&random(&mut rng, c, 1.0)), self.up(&random(&mut rng, c, 1.0)));
            let (mut out, mut mean, mut rstd) = (self.poisoned(rows * c), self.poisoned32(rows), self.poisoned32(rows));
            self.be.layernorm_forward(B::view_mut(&mut out), B::view_mut(&mut mean), B::view_mut(&mut rstd), B::view(&inp), B::view(&w), B::view(&b), rows, c, 1e-5);
            self.keep(format!("layernorm_forward out {rows}×{c}"), &out);
            self.keep(format!("layernorm_forward mean {rows}×{c}"), &mean);
            self.keep(format!("layernorm_forward rstd {rows}×{c}"), &rstd);
            let dout = self.up(&random(&mut rng, rows * c, 1.0));
            let (mut dinp, mut dw, mut db) = (self.up(&random(&mut rng, rows * c, 1.0)), self.up32(&random(&mut rng, c, 1.0)), self.up32(&random(&mut rng, c, 1.0)));
            let (dx, dw_, db_) = (B::view_mut(&mut dinp), B::view_mut(&mut dw), B::view_mut(&mut db));
            self.be.layernorm_backward(dx, dw_, db_, B::view(&dout), B::view(&inp), B::view(&w), B::view(&mean), B::view(&rstd), rows, c);
            self.keep(format!("layernorm_backward dinp {rows}×{c}"), &dinp);
            self.keep(format!("layernorm_backward dw {rows}×{c}"), &dw);
            self.keep(format!("layernorm_backward db {rows}×{c}"), &db);
            if c > 768 {
                continue;
            }
            // T5's RMS norm on the same rows (its dw: element access at 70,
            // 16-byte packs at 768; one row split up to 64 rows, several past).
            let (mut out, mut rstd) = (self.poisoned(rows * c), self.poisoned32(rows));
            self.be.rmsnorm_forward(B::view_mut(&mut out), B::view_mut(&mut rstd), B::view(&inp), B::view(&w), rows, c, 1e-6);
            self.keep(format!("rmsnorm_forward out {rows}×{c}"), &out);
            self.keep(format!("rmsnorm_forward rstd {rows}×{c}"), &rstd);
            let (mut dinp, mut dw) = (self.up(&random(&mut rng, rows * c, 1.0)), self.up32(&random(&mut rng, c, 1.0)));
            self.be.rmsnorm_backward(B::view_mut(&mut dinp), B::view_mut(&mut dw), B::view(&dout), B::view(&inp), B::view(&w), B::view(&rstd), rows, c);
            self.keep(format!("rmsnorm_backward dinp {rows}×{c}"), &dinp);
            self.keep(format!("rmsnorm_backward dw {rows}×{c}"), &dw);
        }
    }

    /// The residual add fused into LayerNorm's forward, out of place and in
    /// place, on each of the forward's kernels (rows of 70: element access;
    /// 768: 16-byte packs, and element access where the rows start one
    /// element off; 1,000: cached; 2,100: general), and into T5's RMS norm.
    /// On every backend each must equal `add` (or `add_assign`) then the
    /// norm bit for bit — in bf16 that is the norm of the residual rounded
    /// to bf16, as stored.
    fn add_layernorm(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        for (rows, c, offset) in [(19, 70, 0), (21, 768, 0), (21, 768, 1), (5, 1000, 0), (3, 2100, 0)] {
            let n = rows * c;
            let (x, delta) = (self.up(&random(&mut rng, n + offset, 3.0)), self.up(&random(&mut rng, n + offset, 1.0)));
            let (x, delta) = (B::slice(B::view(&x), offset, n), B::slice(B::view(&delta), offset, n));
            let (w, b) = (self.up(&random(&mut rng, c, 1.0)), self.up(&random(&mut rng, c, 1.0)));
            let (w, b) = (B::view(&w), B::view(&b));
            let label = format!("{rows}×{c}{}", if offset > 0 { " unaligned" } else { "" });
            // Outputs start `offset` elements into their buffers, as the inputs do.
            let [mut res, mut out, mut res2, mut out2] = [(); 4].map(|_| self.poisoned(n + offset));
            let [mut mean, mut rstd, mut mean2, mut rstd2] = [(); 4].map(|_| self.poisoned32(rows));
            macro_rules! at {
                ($buf:expr) => {
                    B::slice_mut(B::view_mut(&mut $buf), offset, n)
                };
            }
            self.be.add_layernorm_forward(at!(res), at!(out), B::view_mut(&mut mean), B::view_mut(&mut rstd), Some(x), delta, w, b, rows, c, 1e-5);
            // The unfused ops on the same inputs.
            self.be.add(at!(res2), x, delta);
            self.be.layernorm_forward(at!(out2), B::view_mut(&mut mean2), B::view_mut(&mut rstd2), B::slice(B::view(&res2), offset, n), w, b, rows, c, 1e-5);
            self.same_bits(&format!("add_layernorm_forward {label}"), offset, [&res, &out, &mean, &rstd], [&res2, &out2, &mean2, &rstd2]);
            // In place: res += delta, then its LayerNorm.
            self.be.add_layernorm_forward(at!(res), at!(out), B::view_mut(&mut mean), B::view_mut(&mut rstd), None, delta, w, b, rows, c, 1e-5);
            self.be.add_assign(at!(res2), delta);
            self.be.layernorm_forward(at!(out2), B::view_mut(&mut mean2), B::view_mut(&mut rstd2), B::slice(B::view(&res2), offset, n), w, b, rows, c, 1e-5);
            self.same_bits(&format!("add_layernorm_forward in place {label}"), offset, [&res, &out, &mean, &rstd], [&res2, &out2, &mean2, &rstd2]);
            // T5's RMS norm, both ways (mean and mean2 stay as they are).
            self.be.add_rmsnorm_forward(at!(res), at!(out), B::view_mut(&mut rstd), Some(x), delta, w, rows, c, 1e-6);
            self.be.add(at!(res2), x, delta);
            self.be.rmsnorm_forward(at!(out2), B::view_mut(&mut rstd2), B::slice(B::view(&res2), offset, n), w, rows, c, 1e-6);
            self.same_bits(&format!("add_rmsnorm_forward {label}"), offset, [&res, &out, &mean, &rstd], [&res2, &out2, &mean2, &rstd2]);
            self.be.add_rmsnorm_forward(at!(res), at!(out), B::view_mut(&mut rstd), None, delta, w, rows, c, 1e-6);
            self.be.add_assign(at!(res2), delta);
            self.be.rmsnorm_forward(at!(out2), B::view_mut(&mut rstd2), B::slice(B::view(&res2), offset, n), w, rows, c, 1e-6);
            self.same_bits(&format!("add_rmsnorm_forward in place {label}"), offset, [&res, &out, &mean, &rstd], [&res2, &out2, &mean2, &rstd2]);
        }
    }

    /// Asserts that a fused op's outputs (res, out, mean, rstd) equal the
    /// unfused ops' bit for bit, and keeps them for the CPU comparison (res
    /// and out from `offset` on).
    fn same_bits(&mut self, label: &str, offset: usize, fused: [&B::Buf; 4], unfused: [&B::Buf; 4]) {
        for (i, (name, (f, u))) in ["res", "out", "mean", "rstd"].into_iter().zip(fused.into_iter().zip(unfused)).enumerate() {
            let skip = if i < 2 { offset } else { 0 };
            let (got, want) = (self.be.download(B::view(f)).expect("download"), self.be.download(B::view(u)).expect("download"));
            let (got, want) = (got[skip..].to_vec(), &want[skip..]);
            let same = got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{}: {label} {name} differs from the unfused ops' bits", self.be.name());
            self.outputs.push((format!("{label} {name}"), got));
        }
    }

    /// Token and position lookups (rows of 24 take the CUDA backend's 16-byte
    /// lookups, rows of 10 the element ones) and T5's position bias.
    fn embedding(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        for c in [24, 10] {
            self.lookups(&mut rng, c);
        }
        // T5's position bias: 3 heads over a 9×9 bucket grid from 32 buckets.
        let (heads, n, buckets) = (3, 81, 32);
        let ids: Vec<i32> = (0..n).map(|_| rng.below(buckets) as i32).collect();
        let ids = self.be.upload_ids(&ids).unwrap();
        let table = self.up(&random(&mut rng, buckets * heads, 1.0));
        let mut bias = self.poisoned32(heads * n);
        self.be.position_bias_forward(B::view_mut(&mut bias), B::view(&table), &ids, heads);
        self.keep("position_bias_forward".into(), &bias);
        let mut dtable = self.up32(&random(&mut rng, buckets * heads, 1.0));
        self.be.position_bias_backward(B::view_mut(&mut dtable), B::view(&bias), &ids, heads);
        self.keep("position_bias_backward".into(), &dtable);
    }

    fn lookups(&mut self, rng: &mut Rng, c: usize) {
        let (vocab, ctx) = (11, 9);
        let ids: Vec<i32> = (0..30).map(|_| rng.below(vocab) as i32).collect(); // repeats on purpose
        let pos: Vec<i32> = (0..30).map(|i| (i % ctx) as i32).collect();
        let (ids, pos) = (self.be.upload_ids(&ids).unwrap(), self.be.upload_ids(&pos).unwrap());
        let (wte, wpe) = (self.up(&random(rng, vocab * c, 1.0)), self.up(&random(rng, ctx * c, 1.0)));
        let mut out = self.poisoned(30 * c);
        self.be.embedding_forward(B::view_mut(&mut out), &ids, B::view(&wte), Some((&pos, B::view(&wpe))), c);
        self.keep(format!("embedding_forward c={c}"), &out);
        let mut out = self.poisoned(30 * c);
        self.be.embedding_forward(B::view_mut(&mut out), &ids, B::view(&wte), None, c);
        self.keep(format!("embedding_forward without positions c={c}"), &out);
        let dout = self.up(&random(rng, 30 * c, 1.0));
        let (mut dwte, mut dwpe) = (self.up32(&random(rng, vocab * c, 1.0)), self.up32(&random(rng, ctx * c, 1.0)));
        self.be.embedding_backward(B::view_mut(&mut dwte), Some((&pos, B::view_mut(&mut dwpe))), B::view(&dout), &ids, c);
        self.keep(format!("embedding_backward dwte c={c}"), &dwte);
        self.keep(format!("embedding_backward dwpe c={c}"), &dwpe);
        self.be.embedding_backward(B::view_mut(&mut dwte), None, B::view(&dout), &ids, c);
        self.keep(format!("embedding_backward without positions c={c}"), &dwte);
    }

    /// Self-attention on a fused QKV buffer, forward and backward, with a
    /// padding mask, for head sizes under each kernel bound.
    fn attention(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        // The last case is a GPT-Neo local layer: a window of 9 over 70 positions.
        for (batch, t, heads, d, window) in [(2, 70, 3, 5, 0), (2, 37, 2, 64, 0), (1, 33, 2, 100, 0), (2, 70, 2, 40, 9)] {
            let c = heads * d;
            let s = AttnShape { window, ..AttnShape::fused_self(batch, t, heads, d, 1.0 / (d as f32).sqrt()) };
            let qkv = self.up(&random(&mut rng, batch * t * 3 * c, 1.0));
            let mut mask = vec![1.0f32; batch * t];
            mask[t - 3..t].fill(0.0); // right padding in the first sequence
            if batch > 1 {
                mask[t + 1] = 0.0; // a hole in the second
            }
            let mask = self.up32(&mask);
            let (mut out, mut lse) = (self.poisoned(batch * t * c), self.poisoned32(batch * heads * t));
            let inp = AttnInputs::fused(B::view(&qkv), c, batch * t * 3 * c).mask(Some(B::view(&mask)));
            self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
            self.keep(format!("attention_forward out d={d} window={window}"), &out);
            self.keep(format!("attention_forward lse d={d} window={window}"), &lse);
            let dout = self.up(&random(&mut rng, batch * t * c, 1.0));
            let mut dqkv = self.poisoned(batch * t * 3 * c); // every element written
            self.be.attention_backward(AttnGrads::Fused(B::view_mut(&mut dqkv)), None, B::view(&dout), B::view(&out), B::view(&lse), &inp, &s);
            self.keep(format!("attention_backward d={d} window={window}"), &dqkv);
        }
        // No padding mask and sequences long enough for tiles that a warp's
        // rows all see whole (the tensor-core kernels' unchecked scores):
        // causal, bidirectional, and a local window wider than a tile.
        for (t, heads, d, causal, window) in [(150, 2, 64, true, 0), (130, 1, 128, false, 0), (200, 1, 64, true, 90)] {
            let c = heads * d;
            let s = AttnShape { causal, window, ..AttnShape::fused_self(1, t, heads, d, 1.0 / (d as f32).sqrt()) };
            let qkv = self.up(&random(&mut rng, t * 3 * c, 1.0));
            let inp = AttnInputs::fused(B::view(&qkv), c, t * 3 * c);
            let (mut out, mut lse) = (self.poisoned(t * c), self.poisoned32(heads * t));
            self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
            let label = format!("t={t} d={d} causal={causal} window={window}");
            self.keep(format!("unmasked attention_forward out {label}"), &out);
            self.keep(format!("unmasked attention_forward lse {label}"), &lse);
            let dout = self.up(&random(&mut rng, t * c, 1.0));
            let mut dqkv = self.poisoned(t * 3 * c);
            self.be.attention_backward(AttnGrads::Fused(B::view_mut(&mut dqkv)), None, B::view(&dout), B::view(&out), B::view(&lse), &inp, &s);
            self.keep(format!("unmasked attention_backward {label}"), &dqkv);
        }
        // T5: cross-attention (queries against a fused KV buffer of another
        // length, padded keys) and causal self-attention, each with a
        // position bias and its gradient; q_len crosses the warp tiles, and
        // in the fourth case both lengths cross the 64-row blocks of the f32
        // register-blocked kernels (attention_fma.cu), with partial last ones.
        for (batch, tq, tk, heads, d, causal) in [(2, 37, 20, 3, 8, false), (2, 45, 45, 2, 64, true), (1, 9, 70, 2, 100, false), (1, 100, 150, 2, 32, false)] {
            let c = heads * d;
            let s = AttnShape { batch, heads, head_dim: d, q_len: tq, kv_len: tk, kv_cap: tk, q_stride: c, kv_stride: 2 * c, causal, window: 0, scale: 1.0 };
            let (q, kv) = (self.up(&random(&mut rng, batch * tq * c, 1.0)), self.up(&random(&mut rng, batch * tk * 2 * c, 1.0)));
            let bias = self.up32(&random(&mut rng, heads * tq * tk, 1.0));
            let mut mask = vec![1.0f32; batch * tk];
            mask[tk - 4..tk].fill(0.0);
            let mask = self.up32(&mask);
            let inp = AttnInputs::with_kv(B::view(&q), B::view(&kv), c, batch * tk * 2 * c).mask((!causal).then(|| B::view(&mask))).bias(Some(B::view(&bias)));
            let (mut out, mut lse) = (self.poisoned(batch * tq * c), self.poisoned32(batch * heads * tq));
            self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
            let label = format!("tq={tq} tk={tk} d={d} causal={causal}");
            self.keep(format!("biased attention_forward out {label}"), &out);
            self.keep(format!("biased attention_forward lse {label}"), &lse);
            let dout = self.up(&random(&mut rng, batch * tq * c, 1.0));
            let (mut dq, mut dkv) = (self.poisoned(batch * tq * c), self.poisoned(batch * tk * 2 * c));
            let mut dbias = self.up32(&random(&mut rng, heads * tq * tk, 1.0));
            let grads = AttnGrads::Split { dq: B::view_mut(&mut dq), dkv: B::view_mut(&mut dkv) };
            self.be.attention_backward(grads, Some(B::view_mut(&mut dbias)), B::view(&dout), B::view(&out), B::view(&lse), &inp, &s);
            self.keep(format!("biased attention_backward dq {label}"), &dq);
            self.keep(format!("biased attention_backward dkv {label}"), &dkv);
            self.keep(format!("biased attention_backward dbias {label}"), &dbias);
        }
        // Decoding layout: 3 new queries against a KV cache of capacity 40
        // holding 25 rows per sequence, no mask, and a non-causal call.
        let (batch, heads, d, q_len, kv_len, kv_cap) = (2, 4, 16, 3, 25, 40);
        let c = heads * d;
        let q = self.up(&random(&mut rng, batch * q_len * c, 1.0));
        let kv = self.up(&random(&mut rng, batch * kv_cap * 2 * c, 1.0));
        for (causal, window) in [(true, 0), (false, 0), (true, 7)] {
            let s = AttnShape { batch, heads, head_dim: d, q_len, kv_len, kv_cap, q_stride: c, kv_stride: 2 * c, causal, window, scale: 0.3 };
            let (mut out, mut lse) = (self.poisoned(batch * q_len * c), self.poisoned32(batch * heads * q_len));
            let inp = AttnInputs::with_kv(B::view(&q), B::view(&kv), c, batch * kv_cap * 2 * c);
            self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
            self.keep(format!("attention_forward kv-cache causal={causal} window={window}"), &out);
            self.keep(format!("attention_forward kv-cache lse causal={causal} window={window}"), &lse);
        }
        // Decoding against long caches, where the decode kernel splits each
        // query's keys into chunks and merges them (on the emulator's one
        // multiprocessor: a chunk is at most 256 keys, and few queries get
        // more chunks): 16-byte rows at head_dim 128 (GPT-Neo: unscaled),
        // a local window with padded keys at 64 (causal, and not: then the
        // earlier queries see more keys than the window), and a T5-like
        // cross-attention with a bias at 100 whose second sequence is all
        // padding (its query sees no key: zero output, lse −∞); head sizes
        // 24 and 48 take the d ≤ 32 and element-access d ≤ 64 kernels.
        for (batch, heads, d, q_len, kv_len, causal, window, scale, biased) in [
            (2, 2, 128, 1, 300, true, 0, 1.0, false),
            (1, 2, 24, 1, 300, true, 0, 0.2, false),
            (1, 1, 48, 2, 200, false, 0, 0.14, false),
            (1, 1, 64, 2, 200, true, 90, 0.125, false),
            (1, 1, 64, 3, 200, false, 50, 0.125, false),
            (2, 1, 100, 1, 70, false, 0, 1.0, true),
        ] {
            let (c, kv_cap) = (heads * d, kv_len + 8);
            let q = self.up(&random(&mut rng, batch * q_len * c, 1.0));
            let kv = self.up(&random(&mut rng, batch * kv_cap * 2 * c, 1.0));
            let mut mask = vec![1.0f32; batch * kv_cap];
            if biased {
                mask[kv_cap..].fill(0.0);
            } else {
                mask[kv_len - 5] = 0.0;
                mask[kv_len - 60] = 0.0;
            }
            let mask = self.up32(&mask);
            let bias = self.up32(&random(&mut rng, heads * q_len * kv_len, 1.0));
            let s = AttnShape { batch, heads, head_dim: d, q_len, kv_len, kv_cap, q_stride: c, kv_stride: 2 * c, causal, window, scale };
            let inp = AttnInputs::with_kv(B::view(&q), B::view(&kv), c, batch * kv_cap * 2 * c).mask(Some(B::view(&mask))).bias(biased.then(|| B::view(&bias)));
            let (mut out, mut lse) = (self.poisoned(batch * q_len * c), self.poisoned32(batch * heads * q_len));
            self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
            let label = format!("d={d} q_len={q_len} kv_len={kv_len} window={window} bias={biased}");
            self.keep(format!("attention_forward long cache {label}"), &out);
            self.keep(format!("attention_forward long cache lse {label}"), &lse);
        }
        // A causal prefill of 100 queries after 50 cached rows: the diagonal
        // tiles sit 50 keys right of the queries' own positions.
        let (heads, d, q_len, kv_len, kv_cap) = (2, 64, 100, 150, 160);
        let c = heads * d;
        let q = self.up(&random(&mut rng, q_len * c, 1.0));
        let kv = self.up(&random(&mut rng, kv_cap * 2 * c, 1.0));
        let s = AttnShape { batch: 1, heads, head_dim: d, q_len, kv_len, kv_cap, q_stride: c, kv_stride: 2 * c, causal: true, window: 0, scale: 0.125 };
        let (mut out, mut lse) = (self.poisoned(q_len * c), self.poisoned32(heads * q_len));
        let inp = AttnInputs::with_kv(B::view(&q), B::view(&kv), c, kv_cap * 2 * c);
        self.be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &s);
        self.keep("attention_forward causal prefill after a cache".into(), &out);
        self.keep("attention_forward causal prefill after a cache lse".into(), &lse);
    }

    fn loss(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        // 50,257: rows start unaligned, and each thread loads several rounds
        // of packs; rows strided wider than the vocabulary (50,304: GPT-2's
        // padded logits) keep their padding as it was.
        for (rows, vocab, stride) in [(9, 77, 77), (5, 5000, 5000), (6, 3, 3), (3, 50257, 50257), (4, 77, 83), (3, 50257, 50304)] {
            let logits = random(&mut rng, rows * stride, 3.0);
            let targets: Vec<i32> = (0..rows).map(|r| if r % 4 == 3 { -100 } else { rng.below(vocab) as i32 }).collect();
            let targets = self.be.upload_ids(&targets).unwrap();
            for grad in [None, Some(0.125f32)] {
                let mut l = self.up(&logits);
                let mut losses = self.poisoned32(rows);
                self.be.softmax_cross_entropy(B::view_mut(&mut losses), B::view_mut(&mut l), &targets, rows, vocab, stride, grad);
                self.keep(format!("softmax_cross_entropy losses vocab={vocab} stride={stride} grad={grad:?}"), &losses);
                self.keep(format!("softmax_cross_entropy logits vocab={vocab} stride={stride} grad={grad:?}"), &l);
            }
        }
    }

    fn optimizer(&mut self, seed: u64) {
        let n = 5000;
        let mut rng = Rng::new(seed);
        let g = self.up32(&random(&mut rng, n, 1.0));
        let sum = self.be.sum_squares(B::view(&g));
        self.outputs.push(("sum_squares".into(), vec![sum]));
        let init = random(&mut rng, n, 1.0);
        let (mut p, mut m, mut v) = (self.up(&init), self.up32(&random(&mut rng, n, 0.1)), self.up32(&random(&mut rng, n, 0.1).iter().map(|x| x * x).collect::<Vec<_>>()));
        // Narrow parameters carry f32 master weights (from the same rounded values).
        let mut master = (self.be.compute_dtype() != DType::F32).then(|| self.up32(&self.be.download(B::view(&p)).unwrap()));
        // A gap (1000..1200) that no segment covers must stay untouched.
        let segments =
            [DecaySegment { offset: 0, len: 1000, decay: true }, DecaySegment { offset: 1200, len: 3000, decay: false }, DecaySegment { offset: 4200, len: 800, decay: true }];
        let h = AdamW { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
        for step in 1..=3 {
            let w = master.as_mut().map(B::view_mut);
            self.be.adamw(B::view_mut(&mut p), w, B::view(&g), B::view_mut(&mut m), B::view_mut(&mut v), &segments, &h, step, 0.5);
        }
        self.keep("adamw params".into(), master.as_ref().unwrap_or(&p));
        self.keep("adamw m".into(), &m);
        self.keep("adamw v".into(), &v);
    }
}

fn run_all<B: Backend>(be: &B, bf16_inputs: bool) -> Vec<(String, Vec<f32>)> {
    let mut r = Recorder { be, bf16_inputs, outputs: Vec::new() };
    r.matmul(1);
    r.matmul_act(9);
    r.elementwise(2);
    r.layernorm(3);
    r.add_layernorm(8);
    r.embedding(4);
    r.attention(5);
    r.loss(6);
    r.optimizer(7);
    r.outputs
}

/// Token selection (`select_tokens`) under several decoding settings, with
/// two random draws each; returns the chosen ids per case.
fn select_all<B: Backend>(be: &B, bf16_inputs: bool) -> Vec<(String, Vec<u32>)> {
    let (rows, vocab) = (6, 2000);
    let mut rng = Rng::new(11);
    let mut logits = random(&mut rng, rows * vocab, 3.0);
    if bf16_inputs {
        logits.iter_mut().for_each(|x| *x = half::bf16::from_f32(*x).to_f32());
    }
    let logits = be.upload(&logits).unwrap();
    let histories: Vec<Vec<u32>> = (0..rows).map(|_| (0..20).map(|_| rng.below(40) as u32 * 7).collect()).collect();
    // Row 4 has finished: it must come back as 0 and draw no random number.
    let rows_in: Vec<Option<&[u32]>> = histories.iter().enumerate().map(|(r, h)| (r != 4).then_some(h.as_slice())).collect();
    let sample = SamplingConfig { do_sample: true, ..Default::default() };
    let cases = [
        ("greedy", SamplingConfig::default()),
        ("greedy, penalty 1.3, no-repeat 2", SamplingConfig { repetition_penalty: 1.3, no_repeat_ngram_size: 2, ..Default::default() }),
        ("sample T=0.7", SamplingConfig { temperature: 0.7, ..sample.clone() }),
        ("sample top-k 50", SamplingConfig { top_k: 50, ..sample.clone() }),
        ("sample top-p 0.9", SamplingConfig { top_p: 0.9, ..sample.clone() }),
        (
            "sample T=1.2 top-k 200 top-p 0.8 penalty 1.2 no-repeat 3",
            SamplingConfig { temperature: 1.2, top_k: 200, top_p: 0.8, repetition_penalty: 1.2, no_repeat_ngram_size: 3, ..sample },
        ),
    ];
    let mut out = Vec::new();
    for (name, cfg) in cases {
        let mut draws = Rng::new(5);
        for draw in 0..2 {
            let plan = TokenPlan::new(&cfg, &rows_in, &mut draws);
            out.push((format!("{name} (draw {draw})"), be.select_tokens(B::view(&logits), vocab, &plan).expect("select_tokens")));
        }
    }
    out
}

fn check_selection(device: &impl Backend, label: &str) {
    let bf16 = device.compute_dtype() == DType::BF16;
    let (got, want) = (select_all(device, bf16), select_all(&Cpu, bf16));
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        println!("{label:>8}  {name:<62} {g:?}");
        assert_eq!(g, w, "{label}: {name}: the device chose other tokens than the CPU");
    }
}

/// max |got − want| / max |want|; infinite where NaN appears in `got` but not in `want`.
fn normalised_error(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().filter(|x| x.is_finite()).fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            if g.is_nan() != w.is_nan() {
                f32::INFINITY
            } else if g == w {
                0.0
            } else {
                (g - w).abs() / scale
            }
        })
        .fold(0.0, f32::max)
}

fn compare(device: &str, got: &[(String, Vec<f32>)], want: &[(String, Vec<f32>)], tolerance: f32) {
    assert_eq!(got.len(), want.len());
    let mut failures = Vec::new();
    for ((name, g), (_, w)) in got.iter().zip(want) {
        let err = if g.len() == w.len() { normalised_error(g, w) } else { f32::INFINITY };
        println!("{device:>8}  {name:<52} err {err:.2e}");
        if err.is_nan() || err > tolerance {
            failures.push(format!("{name}: {err:.2e}"));
        }
    }
    assert!(failures.is_empty(), "{device} differs from the CPU reference (tolerance {tolerance:.0e}):\n{}", failures.join("\n"));
}

#[test]
fn cpu_reference_writes_every_output() {
    // The reference itself must overwrite every poisoned element (no NaN left
    // where the op defines a value), or the device comparison would be vacuous.
    for (name, out) in run_all(&Cpu, false) {
        assert!(out.iter().all(|x| x.is_finite() || name.contains("lse")), "{name}: CPU left a non-finite value");
    }
}

/// Runs the op set on `device` and on the CPU, from the same inputs.
fn check(device: &impl Backend, label: &str, tolerance: f32) {
    let bf16 = device.compute_dtype() == DType::BF16;
    compare(label, &run_all(device, bf16), &run_all(&Cpu, bf16), tolerance);
}

#[test]
fn emulated_cuda_matches_cpu_f32() {
    check(&common::emulated(DType::F32), "emulator", F32_TOLERANCE);
}

#[test]
fn emulated_cuda_matches_cpu_bf16() {
    check(&common::emulated(DType::BF16), "emu bf16", BF16_TOLERANCE);
}

/// The op set on an emulated device of an H100's 132 multiprocessors: the
/// launches sized to fill a device (the column sums' row splits, the
/// LayerNorm backward's blocks, decoding attention's key chunks) take the
/// many-block forms a GPU gives them, which one multiprocessor leaves out.
#[test]
fn emulated_cuda_on_132_multiprocessors_matches_cpu() {
    for (dtype, label, tolerance) in [(DType::F32, "emu 132 SMs", F32_TOLERANCE), (DType::BF16, "emu bf16 132 SMs", BF16_TOLERANCE)] {
        check(&Cuda::emulated_on(dtype, 132).expect("the kernel emulator"), label, tolerance);
    }
}

#[test]
fn emulated_token_selection_matches_cpu() {
    check_selection(&common::emulated(DType::F32), "emulator");
    check_selection(&common::emulated(DType::BF16), "emu bf16");
}

#[test]
fn cuda_token_selection_matches_cpu() {
    for dtype in [DType::F32, DType::BF16] {
        let Some(cuda) = common::cuda_or_skip("cuda_token_selection_matches_cpu", dtype) else { return };
        check_selection(&cuda, &format!("cuda {dtype}"));
    }
}

/// Beam-search candidates (`Backend::beam_candidates`) in every case: few
/// and many wanted, banned tokens, running scores of 0, -3.5 and the
/// "impossible" -1e9 (every value ties there: the order is the tokens'),
/// and more wanted than the vocabulary holds.
fn candidates_all<B: Backend>(be: &B, bf16_inputs: bool) -> Vec<(String, Vec<(f32, u32)>)> {
    let mut rng = Rng::new(17);
    let mut out = Vec::new();
    for (rows, vocab, n) in [(6, 2000, 1), (6, 2000, 8), (4, 3001, 64), (2, 5, 8)] {
        let mut logits = random(&mut rng, rows * vocab, 3.0);
        if bf16_inputs {
            logits.iter_mut().for_each(|x| *x = half::bf16::from_f32(*x).to_f32());
        }
        let logits = be.upload(&logits).unwrap();
        let plan_rows = (0..rows)
            .map(|r| BeamRow { score: [0.0, -3.5, -1e9][r % 3], banned: if r % 2 == 1 { (0..5).map(|_| rng.below(vocab) as u32).collect() } else { Vec::new() } })
            .collect();
        let got = be.beam_candidates(B::view(&logits), vocab, &BeamPlan { n, rows: plan_rows }).expect("beam_candidates");
        out.extend(got.into_iter().enumerate().map(|(r, c)| (format!("vocab {vocab}, {n} wanted, row {r}"), c)));
    }
    out
}

fn check_candidates(device: &impl Backend, label: &str) {
    let bf16 = device.compute_dtype() == DType::BF16;
    let (got, want) = (candidates_all(device, bf16), candidates_all(&Cpu, bf16));
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        let tokens = |c: &[(f32, u32)]| c.iter().map(|x| x.1).collect::<Vec<_>>();
        let err = g.iter().zip(w).map(|(a, b)| if a.0 == b.0 { 0.0 } else { (a.0 - b.0).abs() / b.0.abs().max(1.0) }).fold(0f32, f32::max);
        println!("{label:>8}  {name:<34} {} candidates, score err {err:.1e}", g.len());
        assert_eq!(tokens(g), tokens(w), "{label}: {name}: other candidates than the CPU's");
        assert!(err <= 1e-5, "{label}: {name}: scores differ by {err:.1e}: {g:?} vs {w:?}");
    }
}

#[test]
fn emulated_beam_candidates_match_cpu() {
    check_candidates(&common::emulated(DType::F32), "emulator");
    check_candidates(&common::emulated(DType::BF16), "emu bf16");
}

#[test]
fn cuda_beam_candidates_match_cpu() {
    for dtype in [DType::F32, DType::BF16] {
        let Some(cuda) = common::cuda_or_skip("cuda_beam_candidates_match_cpu", dtype) else { return };
        check_candidates(&cuda, &format!("cuda {dtype}"));
    }
}

#[test]
fn cuda_matches_cpu_f32() {
    let Some(cuda) = common::cuda_or_skip("cuda_matches_cpu_f32", DType::F32) else { return };
    check(&cuda, "cuda", F32_TOLERANCE);
}

#[test]
fn cuda_matches_cpu_bf16() {
    let Some(cuda) = common::cuda_or_skip("cuda_matches_cpu_bf16", DType::BF16) else { return };
    check(&cuda, "cuda bf16", BF16_TOLERANCE);
}

/// The launch shapes a tuning run (HHI_CUDA_TUNE) may choose instead of the
/// defaults: each must compute the same as the CPU, on the emulator and on a GPU.
const TUNING_ALTERNATIVES: [&str; 13] = [
    "xent_threads=512,xent_unroll=8,ln_backward=cached,attn_forward=8x16",
    "xent_threads=128,xent_unroll=2,ln_backward_blocks_per_sm=1,attn_forward=4x32,attn_backward=b3",
    "xent_unroll=4,ln_backward=pipelined3,ln_backward_blocks_per_sm=200,attn_forward=4x16b4",
    "ln_backward=pipelined4",
    "ln_backward=pipelined_atomic",
    "gemm_bias=epilogue,gemm_gelu=epilogue,attn_decode=tiled",
    "attn_f32=warp",
    "attn_forward=wgmma",
    "attn_forward=wgmma2",
    "attn_forward=wgmma_overlap",
    "attn_backward=wgmma",
    "attn_backward=wgmma_fused",
    "attn_backward=fused",
];

#[test]
fn emulated_tuning_alternatives_match_cpu() {
    for (dtype, tolerance) in [(DType::F32, F32_TOLERANCE), (DType::BF16, BF16_TOLERANCE)] {
        for spec in TUNING_ALTERNATIVES {
            check(&common::emulated(dtype).with_tuning(spec).unwrap(), &format!("emu {dtype} (tuned)"), tolerance);
        }
    }
}

/// Each alternative on a backend of its own, every one run even where one
/// fails (a GPU run is rare: it should say everything it can).
#[test]
fn cuda_tuning_alternatives_match_cpu() {
    let mut failed = Vec::new();
    for (dtype, tolerance) in [(DType::F32, F32_TOLERANCE), (DType::BF16, BF16_TOLERANCE)] {
        for spec in TUNING_ALTERNATIVES {
            let Some(cuda) = common::cuda_or_skip("cuda_tuning_alternatives_match_cpu", dtype) else { return };
            let cuda = cuda.with_tuning(spec).unwrap();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&cuda, &format!("cuda {dtype} {spec}"), tolerance))).is_err() {
                failed.push(format!("{dtype} {spec}"));
            }
        }
    }
    assert!(failed.is_empty(), "tuning alternatives differing from the CPU (each one's failure printed above): {failed:?}");
}
