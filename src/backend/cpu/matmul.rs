//! Matrix products through faer (blocked, SIMD, multi-threaded), with the bias
//! epilogue and its backward. Row-major slices are viewed as faer matrices; a
//! transpose is a free change of strides.

use super::real::Real;
use crate::backend::{Gemm, Stored};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// A stored row-major matrix as a faer view.
fn view<T>(x: &[T], s: Stored) -> MatRef<'_, T> {
    MatRef::from_row_major_slice_with_stride(&x[..s.span()], s.rows, s.cols, s.stride.max(1))
}

/// `out[m,n] (=|+=) op(a) · op(b) (+ bias)`; see [`crate::backend::Backend::matmul`].
/// Rows are `g.ld*` apart where set; elements between rows are not touched.
pub fn matmul<T: Real>(out: &mut [T], a: &[T], b: &[T], bias: Option<&[T]>, g: Gemm) {
    let (sa, sb, so) = (g.stored_a(), g.stored_b(), g.stored_out());
    assert!(g.strides_valid() && out.len() >= so.span() && a.len() >= sa.span() && b.len() >= sb.span(), "matmul: buffers too small for {g:?}");
    let (m, n) = (g.m, g.n);
    let lhs = if g.trans_a { view(a, sa).transpose() } else { view(a, sa) };
    let rhs = if g.trans_b { view(b, sb).transpose() } else { view(b, sb) };
    let out = &mut out[..so.span()];
    let mut accum = if g.accumulate { Accum::Add } else { Accum::Replace };
    if let Some(bias) = bias {
        for i in 0..m {
            let row = &mut out[i * so.stride..][..n];
            if g.accumulate {
                row.iter_mut().zip(bias).for_each(|(o, &b)| *o += b);
            } else {
                row.copy_from_slice(&bias[..n]);
            }
        }
        accum = Accum::Add;
    }
    // (As the transpose of a column-major view: faer 0.24's
    // `from_row_major_slice_with_stride_mut` lays the slice out column-major.)
    let mut dst = MatMut::from_column_major_slice_with_stride_mut(out, n, m, so.stride.max(1)).transpose_mut();
    if g.k == 0 {
        if !g.accumulate && bias.is_none() {
            dst.fill(T::ZERO);
        }
        return;
    }
    faer_matmul(dst, accum, lhs, rhs, T::ONE, Par::rayon(0));
}

/// `dbias[n] += Σ_rows dout[rows, n]`.
pub fn bias_backward<T: Real>(dbias: &mut [T], dout: &[T], rows: usize, n: usize) {
    for row in dout[..rows * n].chunks_exact(n) {
        dbias.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` values that differ from each other, from a seed.
    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1009) as f64 / 504.5 - 1.0).collect()
    }

    /// The rows of `s` packed densely.
    fn dense(x: &[f64], s: Stored) -> Vec<f64> {
        (0..s.rows).flat_map(|r| x[r * s.stride..][..s.cols].iter().copied()).collect()
    }

    #[test]
    fn strided_rows_give_the_product_and_keep_the_padding() {
        let (m, n, k) = (6, 5, 7);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (bias, acc) in [(false, false), (true, false), (true, true)] {
                let g = Gemm { trans_a: ta, trans_b: tb, accumulate: acc, ..Gemm::new(m, n, k) };
                let strided = g.lda(g.stored_a().cols + 2).ldb(g.stored_b().cols + 3).ldc(n + 4);
                let (a, b, init) = (values(strided.stored_a().span(), 1), values(strided.stored_b().span(), 2), values(strided.stored_out().span(), 3));
                let bias = bias.then(|| values(n, 4));
                let mut got = init.clone();
                matmul(&mut got, &a, &b, bias.as_deref(), strided);
                // The product from its definition, on the packed operands.
                let (pa, pb, p0) = (dense(&a, strided.stored_a()), dense(&b, strided.stored_b()), dense(&init, strided.stored_out()));
                let want: Vec<f64> = (0..m * n)
                    .map(|ij| {
                        let (i, j) = (ij / n, ij % n);
                        let dot: f64 = (0..k).map(|p| pa[if ta { p * m + i } else { i * k + p }] * pb[if tb { j * k + p } else { p * n + j }]).sum();
                        dot + bias.as_ref().map_or(0.0, |b| b[j]) + if acc { p0[ij] } else { 0.0 }
                    })
                    .collect();
                for (x, y) in dense(&got, strided.stored_out()).iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12, "ta={ta} tb={tb} bias={bias:?} acc={acc}: {x} against {y}");
                }
                for (i, (&x, &x0)) in got.iter().zip(&init).enumerate() {
                    if i % (n + 4) >= n {
                        assert_eq!(x, x0, "padding element {i} was written");
                    }
                }
            }
        }
    }
}
