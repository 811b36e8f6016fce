//! Fused softmax + cross-entropy: one pass per row computes the loss and, when
//! asked, overwrites the logits with their gradient `g·(softmax − onehot)`.
//! Negative targets (-100) are ignored: zero loss, zero gradient. Rows are
//! `stride` elements apart (≥ vocab; the elements between rows are not touched).

use super::real::Real;
use super::simd::{max_in_lanes, simd_kernel};
use rayon::prelude::*;

pub fn softmax_cross_entropy<T: Real>(losses: &mut [T], logits: &mut [T], targets: &[i32], rows: usize, vocab: usize, stride: usize, grad_scale: Option<T>) {
    assert!(stride >= vocab.max(1), "softmax_cross_entropy: row stride {stride} below the vocabulary {vocab}");
    let span = if rows == 0 { 0 } else { (rows - 1) * stride + vocab };
    losses[..rows].par_iter_mut().zip(logits[..span].par_chunks_mut(stride)).enumerate().for_each(|(r, (loss, row))| {
        let row = &mut row[..vocab];
        let target = targets[r];
        if target < 0 {
            *loss = T::ZERO;
            if grad_scale.is_some() {
                row.fill(T::ZERO);
            }
            return;
        }
        let target = target as usize;
        let lse = log_sum_exp(row);
        *loss = lse - row[target];
        if let Some(g) = grad_scale {
            softmax_scaled(row, lse, g);
            row[target] -= g;
        }
    });
}

/// log Σ exp(x), stable (shifted by the maximum).
fn log_sum_exp<T: Real>(row: &[T]) -> T {
    let max = max_in_lanes(row);
    let mut sum = T::ZERO;
    sum_exp_shifted(row, max, &mut sum);
    max + sum.ln()
}

simd_kernel! {
    fn sum_exp_shifted<T: Real>(row: &[T], shift: T, sum: &mut T) {
        // Eight partial sums let the loop vectorise.
        let mut acc = [T::ZERO; 8];
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..8 {
                acc[k] += (c[k] - shift).fast_exp();
            }
        }
        let mut s = acc.iter().copied().sum::<T>();
        for &x in tail {
            s += (x - shift).fast_exp();
        }
        *sum = s;
    }
}

simd_kernel! {
    /// `row[j] = g · exp(row[j] − lse)`.
    fn softmax_scaled<T: Real>(row: &mut [T], lse: T, g: T) {
        for x in row.iter_mut() {
            *x = (*x - lse).fast_exp() * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_rows_give_the_dense_losses_and_keep_the_padding() {
        let (rows, vocab, stride) = (4, 11, 16);
        let padded: Vec<f64> = (0..rows * stride).map(|i| ((i * 37) % 23) as f64 / 4.0 - 2.0).collect();
        let targets = [3, -100, 10, 0];
        for grad in [None, Some(0.25)] {
            let mut dense: Vec<f64> = padded.chunks(stride).flat_map(|r| r[..vocab].iter().copied()).collect();
            let mut want = vec![0.0; rows];
            softmax_cross_entropy(&mut want, &mut dense, &targets, rows, vocab, vocab, grad);
            let (mut got, mut strided) = (vec![0.0; rows], padded.clone());
            softmax_cross_entropy(&mut got, &mut strided, &targets, rows, vocab, stride, grad);
            assert_eq!(got, want);
            for (r, (row, row0)) in strided.chunks(stride).zip(padded.chunks(stride)).enumerate() {
                assert_eq!(row[..vocab], dense[r * vocab..][..vocab], "row {r} with grad {grad:?}");
                assert_eq!(row[vocab..], row0[vocab..], "row {r}'s padding was written");
            }
        }
    }
}
