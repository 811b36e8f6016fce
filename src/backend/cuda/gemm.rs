//! Row-major matrix products on the device's SGEMM (cuBLAS on a GPU; f32, no
//! TF32), with the bias epilogue as a broadcast kernel run first.
//!
//! cuBLAS is column-major: a row-major `[r, c]` matrix is the column-major
//! `[c, r]` matrix in the same memory. So `out[m,n] = op(a)·op(b)` is computed
//! as `outᵀ[n,m] = op(b)ᵀ·op(a)ᵀ`, swapping the operands instead of copying.

use super::buffer::{CuView, CuViewMut};
use super::driver::Sgemm;
use super::runtime::Runtime;
use crate::backend::Gemm;

pub fn matmul(rt: &Runtime, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
    let (m, n, k) = (g.m, g.n, g.k);
    assert!(out.len >= m * n && a.len >= m * k && b.len >= k * n, "matmul: views smaller than {g:?}");
    if m == 0 || n == 0 {
        return;
    }
    if let Some(bias) = bias {
        assert!(bias.len >= n, "matmul: bias shorter than n = {n}");
        rt.launch_1d("bias_broadcast_f32", m * n, &[&out.ptr, &bias.ptr, &(m as i64), &(n as i64), &(g.accumulate as i32)]);
    }
    // Row-major b is [k,n] (or [n,k] when transposed), i.e. column-major
    // [n,k] with leading dimension n (or [k,n] with k); likewise for a.
    let sgemm = Sgemm {
        trans_a: g.trans_b,
        trans_b: g.trans_a,
        m: n,
        n: m,
        k,
        alpha: 1.0,
        a: b.ptr,
        lda: if g.trans_b { k } else { n },
        b: a.ptr,
        ldb: if g.trans_a { m } else { k },
        beta: if g.accumulate || bias.is_some() { 1.0 } else { 0.0 },
        c: out.ptr,
        ldc: n,
    };
    if let Err(e) = rt.driver.sgemm(&sgemm) {
        rt.record(e);
    }
}
