//! Matrix products through faer (blocked, SIMD, multi-threaded), with the bias
//! epilogue and its backward. Row-major slices are viewed as faer matrices; a
//! transpose is a free change of strides.

use super::real::Real;
use crate::backend::Gemm;
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `out[m,n] (=|+=) op(a) · op(b) (+ bias)`; see [`crate::backend::Backend::matmul`].
pub fn matmul<T: Real>(out: &mut [T], a: &[T], b: &[T], bias: Option<&[T]>, g: Gemm) {
    let Gemm { m, n, k, trans_a, trans_b, accumulate } = g;
    assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "matmul: buffers too small for {g:?}");
    let lhs = if trans_a { MatRef::from_row_major_slice(&a[..m * k], k, m).transpose() } else { MatRef::from_row_major_slice(&a[..m * k], m, k) };
    let rhs = if trans_b { MatRef::from_row_major_slice(&b[..k * n], n, k).transpose() } else { MatRef::from_row_major_slice(&b[..k * n], k, n) };
    let out = &mut out[..m * n];
    let mut accum = if accumulate { Accum::Add } else { Accum::Replace };
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(n) {
            if accumulate {
                row.iter_mut().zip(bias).for_each(|(o, &b)| *o += b);
            } else {
                row.copy_from_slice(&bias[..n]);
            }
        }
        accum = Accum::Add;
    }
    if k == 0 {
        if !accumulate && bias.is_none() {
            out.fill(T::ZERO);
        }
        return;
    }
    let dst = MatMut::from_row_major_slice_mut(out, m, n);
    faer_matmul(dst, accum, lhs, rhs, T::ONE, Par::rayon(0));
}

/// `dbias[n] += Σ_rows dout[rows, n]`.
pub fn bias_backward<T: Real>(dbias: &mut [T], dout: &[T], rows: usize, n: usize) {
    for row in dout[..rows * n].chunks_exact(n) {
        dbias.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
    }
}
