//! AdamW over the flat parameter buffer, step for step as
//! `torch.optim.AdamW` (decoupled decay applied first, bias-corrected moments,
//! eps added after the square root), plus the sum of squares for clipping.

use super::real::Real;
use super::simd::simd_kernel;
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
        let k = Coefficients { grad_scale, shrink, one_minus_b1, b2t, one_minus_b2, bc2_sqrt, eps, step_size };
        params[range.clone()]
            .par_chunks_mut(CHUNK)
            .zip(grads[range.clone()].par_chunks(CHUNK))
            .zip(m[range.clone()].par_chunks_mut(CHUNK).zip(v[range].par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| update(p, g, m, v, k));
    }
}

/// The step's constants (see `adamw`).
#[derive(Clone, Copy)]
struct Coefficients<T> {
    grad_scale: T,
    shrink: T,
    one_minus_b1: T,
    b2t: T,
    one_minus_b2: T,
    bc2_sqrt: T,
    eps: T,
    step_size: T,
}

simd_kernel! {
    /// One chunk of the update, element by element as `torch.optim.AdamW`
    /// (vectorised: the same correctly rounded operations in the same order).
    fn update<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], k: Coefficients<T>) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * k.grad_scale;
            *p *= k.shrink;
            *m += k.one_minus_b1 * (g - *m);
            *v = k.b2t * *v + k.one_minus_b2 * g * g;
            let denom = v.sqrt() / k.bc2_sqrt + k.eps;
            *p -= k.step_size * *m / denom;
        }
    }
}

pub fn sum_squares<T: Real>(v: &[T]) -> T {
    v.par_chunks(CHUNK).map(|c| c.iter().map(|&x| x * x).sum::<T>()).collect::<Vec<T>>().into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The update as written before it was vectorised, one element at a time.
    fn reference(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: Coefficients<f32>) {
        for i in 0..p.len() {
            let gi = g[i] * k.grad_scale;
            p[i] *= k.shrink;
            m[i] += k.one_minus_b1 * (gi - m[i]);
            v[i] = k.b2t * v[i] + k.one_minus_b2 * gi * gi;
            let denom = v[i].sqrt() / k.bc2_sqrt + k.eps;
            p[i] -= k.step_size * m[i] / denom;
        }
    }

    #[test]
    fn vectorised_update_is_bit_for_bit_the_scalar_one() {
        let mut rng = Rng::new(3);
        // Magnitudes from 1e-25 to 1e3, so that squares underflow to denormals too.
        let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.normal() * 10f64.powf(rng.uniform() * 28.0 - 25.0)) as f32).collect() };
        let n = 1000 + 7;
        let (p, g, m) = (values(n), values(n), values(n));
        let v: Vec<f32> = values(n).iter().map(|x| x * x).collect();
        let k = Coefficients { grad_scale: 0.37, shrink: 0.999, one_minus_b1: 0.1, b2t: 0.95, one_minus_b2: 0.05, bc2_sqrt: 0.3, eps: 1e-8, step_size: 3e-4 };
        let (mut p1, mut m1, mut v1) = (p.clone(), m.clone(), v.clone());
        let (mut p2, mut m2, mut v2) = (p, m, v);
        update(&mut p1, &g, &mut m1, &mut v1, k);
        reference(&mut p2, &g, &mut m2, &mut v2, k);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&p1), bits(&m1), bits(&v1)), (bits(&p2), bits(&m2), bits(&v2)));
    }
}
