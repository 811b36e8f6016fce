//! Row-major matrix products on cuBLAS (f32 SGEMM, no TF32), with the bias
//! epilogue as a broadcast kernel run before the product.
//!
//! cuBLAS is column-major: a row-major `[r, c]` matrix is the column-major
//! `[c, r]` matrix in the same memory. So `out[m,n] = op(a)·op(b)` is computed
//! as `outᵀ[n,m] = op(b)ᵀ·op(a)ᵀ`, swapping the operands instead of copying.

use super::runtime::Runtime;
use super::view::{CuView, CuViewMut};
use crate::backend::Gemm;
use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};

pub fn matmul(rt: &Runtime, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
    let (m, n, k) = (g.m, g.n, g.k);
    assert!(out.len >= m * n && a.len >= m * k && b.len >= k * n, "matmul: views smaller than {g:?}");
    if m == 0 || n == 0 {
        return;
    }
    if let Some(bias) = bias {
        assert!(bias.len >= n, "matmul: bias shorter than n = {n}");
        let cfg = rt.grid_for(m * n, 256);
        rt.launch("bias_broadcast_f32", cfg, &[&out.ptr, &bias.ptr, &(m as i64), &(n as i64), &(g.accumulate as i32)]);
    }
    let beta: f32 = if g.accumulate || bias.is_some() { 1.0 } else { 0.0 };
    let alpha: f32 = 1.0;
    let (op_b, ldb) = if g.trans_b { (CUBLAS_OP_T, k) } else { (CUBLAS_OP_N, n) };
    let (op_a, lda) = if g.trans_a { (CUBLAS_OP_T, m) } else { (CUBLAS_OP_N, k) };
    // SAFETY: the pointers address live device buffers at least as large as
    // the shapes checked above; alpha and beta are host scalars (pointer mode host).
    let result = unsafe {
        cudarc::cublas::result::sgemm(
            *rt.blas.handle(),
            op_b,
            op_a,
            n as i32,
            m as i32,
            k as i32,
            &alpha,
            b.ptr as *const f32,
            ldb as i32,
            a.ptr as *const f32,
            lda as i32,
            &beta,
            out.ptr as *mut f32,
            n as i32,
        )
    };
    if let Err(e) = result {
        rt.record(&format!("cublasSgemm {g:?}"), e);
    }
}
