//! The kernel emulator's stand-in for cuBLAS / cuBLASLt:
//! `c = alpha·op(A)·op(B) + beta·c` with cuBLAS's column-major argument conventions (element (r, c)
//! of an ld-strided matrix at r + c·ld, `trans` flags, f32 or bf16 operands),
//! accumulated in f32 as with CUBLAS_COMPUTE_32F, and cuBLASLt's epilogues
//! applied to the f32 result before c is rounded. Written apart from the CPU
//! backend's products, so the tests compare the CUDA backend's arguments
//! against the CPU reference rather than one implementation with itself.
//!
//! Each output is a dot product of A's row r and B's column c over k. An
//! operand whose vectors run along memory is read where it lies (a weight
//! matrix of a decoding step is not copied for one row); one strided along
//! k is first gathered into contiguous f32. Output columns are split among
//! the host's cores; each writes only its own.

use super::driver::{Epilogue, GemmEx};
use crate::tensor::DType;
use half::bf16;
use rayon::prelude::*;

/// Runs the product `g` describes.
///
/// # Safety
/// Every address of `g` must hold the elements its shape, leading dimension
/// and type reach (the CUDA backend checks them against its buffers).
pub unsafe fn gemm(g: &GemmEx) {
    // A(r, k) lies at k + r·lda when transposed, else r + k·lda; B(k, col)
    // at col + k·ldb when transposed, else k + col·ldb.
    let a = Vectors::of(g.a, g.a_type, g.m, g.k, if g.trans_a { (g.lda, 1) } else { (1, g.lda) });
    let b = Vectors::of(g.b, g.b_type, g.n, g.k, if g.trans_b { (1, g.ldb) } else { (g.ldb, 1) });
    (0..g.n).into_par_iter().for_each(|col| {
        let b_col = b.vector(col, g.k);
        for r in 0..g.m {
            let sum = dot(a.vector(r, g.k), b_col);
            // SAFETY: the caller's promise; column `col` is this task's alone.
            unsafe { finish(g, r, col, sum) };
        }
    });
}

/// One operand as `count` vectors of k values: in place (vector i at
/// base + i·step, contiguous), or gathered into f32.
enum Vectors {
    InPlace { base: u64, dtype: DType, step: usize },
    Gathered(Vec<f32>),
}

/// A vector of k values, as the operand stores them.
#[derive(Clone, Copy)]
enum Values<'a> {
    F32(&'a [f32]),
    Bf16(&'a [bf16]),
}

impl Vectors {
    /// Vector i's element j at `base` + i·steps.0 + j·steps.1.
    unsafe fn of(base: u64, dtype: DType, count: usize, k: usize, steps: (usize, usize)) -> Self {
        if steps.1 == 1 || k <= 1 {
            Vectors::InPlace { base, dtype, step: steps.0 }
        } else {
            Vectors::Gathered(gather(base, dtype, count, k, steps))
        }
    }

    fn vector(&self, i: usize, k: usize) -> Values<'_> {
        match self {
            Vectors::Gathered(all) => Values::F32(&all[i * k..(i + 1) * k]),
            // SAFETY: `of`'s caller promised these k elements.
            Vectors::InPlace { base, dtype: DType::BF16, step } => Values::Bf16(unsafe { std::slice::from_raw_parts((*base as *const bf16).add(i * step), k) }),
            Vectors::InPlace { base, step, .. } => Values::F32(unsafe { std::slice::from_raw_parts((*base as *const f32).add(i * step), k) }),
        }
    }
}

/// `count` vectors of k f32 values, element j of vector i read at
/// i·steps.0 + j·steps.1: in 64 × 64 blocks, so that the strided reads and
/// the contiguous writes both stay in cache.
unsafe fn gather(base: u64, dtype: DType, count: usize, k: usize, steps: (usize, usize)) -> Vec<f32> {
    const BLOCK: usize = 64;
    let mut out = vec![0f32; count * k];
    out.par_chunks_mut(BLOCK * k).enumerate().for_each(|(block, rows)| {
        for j0 in (0..k).step_by(BLOCK) {
            for (i, row) in rows.chunks_mut(k).enumerate().map(|(r, row)| (block * BLOCK + r, row)) {
                for (j, v) in row.iter_mut().enumerate().skip(j0).take(BLOCK) {
                    // SAFETY: the caller's promise.
                    *v = unsafe { load(base, i * steps.0 + j * steps.1, dtype) };
                }
            }
        }
    });
    out
}

/// Σ a_i·b_i in f32.
fn dot(a: Values, b: Values) -> f32 {
    match (a, b) {
        (Values::F32(a), Values::F32(b)) => dot_of(a, b),
        (Values::F32(a), Values::Bf16(b)) => dot_of(a, b),
        (Values::Bf16(a), Values::F32(b)) => dot_of(a, b),
        (Values::Bf16(a), Values::Bf16(b)) => dot_of(a, b),
    }
}

/// A stored value read as f32.
trait AsF32: Copy {
    fn f32(self) -> f32;
}
impl AsF32 for f32 {
    fn f32(self) -> f32 {
        self
    }
}
impl AsF32 for bf16 {
    fn f32(self) -> f32 {
        self.to_f32()
    }
}

/// Σ a_i·b_i over 8 running sums, so that the compiler vectorises it.
fn dot_of<X: AsF32, Y: AsF32>(a: &[X], b: &[Y]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x.f32() * y.f32()).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i].f32() * y[i].f32();
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Stores output (r, col) of the product, `sum` = Σ_k A(r, k)·B(k, col):
/// alpha, beta and the epilogue applied in f32, then rounded to c's type.
unsafe fn finish(g: &GemmEx, r: usize, col: usize, sum: f32) {
    let i = r + col * g.ldc;
    let old = if g.beta == 0.0 { 0.0 } else { g.beta * load(g.c, i, g.c_type) };
    let bias = |b: u64| if b == 0 { 0.0 } else { load(b, r, g.c_type) };
    let value = g.alpha * sum + old;
    let value = match g.epilogue {
        Epilogue::None => value,
        Epilogue::Bias { bias: b } => value + bias(b),
        Epilogue::GeluAux { bias: b, aux, ld } => {
            let pre = value + bias(b);
            store(aux, r + col * ld, g.c_type, pre);
            gelu_tanh(pre)
        }
        Epilogue::DGelu { aux, ld } => gelu_tanh_grad(load(aux, r + col * ld, g.c_type)) * value,
    };
    store(g.c, i, g.c_type, value);
}

/// GELU's tanh approximation, which cuBLASLt's GELU epilogues are taken to
/// compute (the f32 op tests on a GPU tell it from erf GELU), written out
/// apart from the CPU backend's so the two are compared, not shared.
fn gelu_tanh(x: f32) -> f32 {
    let u = GELU_TANH_SCALE * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

/// d gelu_tanh / dx.
fn gelu_tanh_grad(x: f32) -> f32 {
    let t = (GELU_TANH_SCALE * (x + 0.044715 * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_TANH_SCALE * (1.0 + 3.0 * 0.044715 * x * x)
}

/// √(2/π).
const GELU_TANH_SCALE: f32 = 0.797_884_6;

/// Element `i` of an f32 or bf16 array at `base`, as f32.
unsafe fn load(base: u64, i: usize, dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => (*(base as *const bf16).add(i)).to_f32(),
        _ => *(base as *const f32).add(i),
    }
}

unsafe fn store(base: u64, i: usize, dtype: DType, x: f32) {
    match dtype {
        DType::BF16 => *(base as *mut bf16).add(i) = bf16::from_f32(x),
        _ => *(base as *mut f32).add(i) = x,
    }
}
