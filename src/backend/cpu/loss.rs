//! Fused softmax + cross-entropy: one pass per row computes the loss and, when
//! asked, overwrites the logits with their gradient `g·(softmax − onehot)`.
//! Negative targets (-100) are ignored: zero loss, zero gradient.

use super::real::Real;
use super::simd::{max_in_lanes, simd_kernel};
use rayon::prelude::*;

pub fn softmax_cross_entropy<T: Real>(losses: &mut [T], logits: &mut [T], targets: &[i32], rows: usize, vocab: usize, grad_scale: Option<T>) {
    losses[..rows].par_iter_mut().zip(logits[..rows * vocab].par_chunks_mut(vocab)).enumerate().for_each(|(r, (loss, row))| {
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
