//! AdamW over the flat parameter buffer, step for step as
//! `torch.optim.AdamW` (decoupled decay applied first, bias-corrected moments,
//! eps added after the square root), plus the sum of squares for clipping.

use super::real::Real;
use crate::backend::{AdamW, DecaySegment};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

#[allow(clippy::too_many_arguments)]
pub fn adamw<T: Real>(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], segments: &[DecaySegment], h: &AdamW, step: u64, grad_scale: T) {
    let (b1, b2) = (h.beta1 as f64, h.beta2 as f64);
    let bc1 = 1.0 - b1.powi(step as i32);
    let bc2_sqrt = (1.0 - b2.powi(step as i32)).sqrt();
    let step_size = T::of(h.lr as f64 / bc1);
    let (one_minus_b1, b2t, one_minus_b2) = (T::of(1.0 - b1), T::of(b2), T::of(1.0 - b2));
    let (eps, bc2_sqrt) = (T::of(h.eps as f64), T::of(bc2_sqrt));
    for seg in segments {
        let range = seg.offset..seg.offset + seg.len;
        let shrink = T::of(if seg.decay { 1.0 - h.lr as f64 * h.weight_decay as f64 } else { 1.0 });
        params[range.clone()]
            .par_chunks_mut(CHUNK)
            .zip(grads[range.clone()].par_chunks(CHUNK))
            .zip(m[range.clone()].par_chunks_mut(CHUNK).zip(v[range].par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| {
                for i in 0..p.len() {
                    let gi = g[i] * grad_scale;
                    p[i] *= shrink;
                    m[i] += one_minus_b1 * (gi - m[i]);
                    v[i] = b2t * v[i] + one_minus_b2 * gi * gi;
                    let denom = v[i].sqrt() / bc2_sqrt + eps;
                    p[i] -= step_size * m[i] / denom;
                }
            });
    }
}

pub fn sum_squares<T: Real>(v: &[T]) -> T {
    v.par_chunks(CHUNK).map(|c| c.iter().map(|&x| x * x).sum::<T>()).collect::<Vec<T>>().into_iter().sum()
}
