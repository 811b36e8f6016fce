//! Fused softmax + cross-entropy: one pass per row computes the loss and, when
//! asked, overwrites the logits with their gradient `g·(softmax − onehot)`.
//! Negative targets (-100) are ignored: zero loss, zero gradient.

use super::real::Real;
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
        let max = row.iter().copied().fold(T::NEG_INFINITY, T::max);
        let sum: T = row.iter().map(|&x| (x - max).exp()).sum();
        let lse = max + sum.ln();
        *loss = lse - row[target];
        if let Some(g) = grad_scale {
            for x in row.iter_mut() {
                *x = (*x - lse).exp() * g;
            }
            row[target] -= g;
        }
    });
}
