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

/// Σ x², as the sum of each CHUNK's sum of squares, each added in order. A
/// task takes LANES chunks side by side, so that their additions overlap
/// where one chunk's chain of dependent additions set the pace (9.6 GB/s);
/// every chunk's sum, and so the result, is bit for bit the one-by-one sum.
pub fn sum_squares<T: Real>(v: &[T]) -> T {
    const LANES: usize = 8;
    let chunk_sums: Vec<T> = v
        .par_chunks(CHUNK * LANES)
        .flat_map_iter(|group| {
            let mut sums = [T::ZERO; LANES];
            if group.len() == CHUNK * LANES {
                for i in 0..CHUNK {
                    for (lane, sum) in sums.iter_mut().enumerate() {
                        let x = group[lane * CHUNK + i];
                        *sum += x * x;
                    }
                }
            } else {
                for (sum, chunk) in sums.iter_mut().zip(group.chunks(CHUNK)) {
                    *sum = chunk.iter().map(|&x| x * x).sum();
                }
            }
            sums.into_iter().take(group.len().div_ceil(CHUNK))
        })
        .collect();
    chunk_sums.into_iter().sum()
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
    fn sum_squares_is_bit_for_bit_the_chunk_by_chunk_sum() {
        let mut rng = Rng::new(5);
        for len in [0, 1, CHUNK - 1, 8 * CHUNK, 8 * CHUNK + 5, 3 * 8 * CHUNK + 1000] {
            let v: Vec<f32> = (0..len).map(|_| (rng.normal() * 10f64.powf(rng.uniform() * 6.0 - 3.0)) as f32).collect();
            let one_by_one: f32 = v.chunks(CHUNK).map(|c| c.iter().map(|&x| x * x).sum::<f32>()).collect::<Vec<f32>>().into_iter().sum();
            assert_eq!(sum_squares(&v).to_bits(), one_by_one.to_bits(), "length {len}");
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
