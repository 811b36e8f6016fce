//! Elementwise ops: residual add and the tanh-approximated GELU
//! ("gelu_new" in transformers: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).

use super::real::Real;
use super::simd::simd_kernel;
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

pub fn add<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    out.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).zip(b.par_chunks(CHUNK)).for_each(|((o, a), b)| {
        for i in 0..o.len() {
            o[i] = a[i] + b[i];
        }
    });
}

pub fn add_assign<T: Real>(dst: &mut [T], src: &[T]) {
    dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &s)| *d += s));
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044715;

#[inline(always)]
fn gelu<T: Real>(x: T) -> T {
    let u = T::of(SQRT_2_OVER_PI) * (x + T::of(GELU_CUBIC) * x * x * x);
    T::of(0.5) * x * (T::ONE + u.fast_tanh())
}

#[inline(always)]
fn gelu_grad<T: Real>(x: T) -> T {
    let u = T::of(SQRT_2_OVER_PI) * (x + T::of(GELU_CUBIC) * x * x * x);
    let t = u.fast_tanh();
    let du = T::of(SQRT_2_OVER_PI) * (T::ONE + T::of(3.0 * GELU_CUBIC) * x * x);
    T::of(0.5) * (T::ONE + t) + T::of(0.5) * x * (T::ONE - t * t) * du
}

simd_kernel! {
    fn gelu_chunk<T: Real>(out: &mut [T], inp: &[T]) {
        for (o, &x) in out.iter_mut().zip(inp) {
            *o = gelu(x);
        }
    }
}

simd_kernel! {
    fn gelu_grad_chunk<T: Real>(dinp: &mut [T], inp: &[T], dout: &[T]) {
        for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
            *d += gelu_grad(x) * g;
        }
    }
}

pub fn gelu_forward<T: Real>(out: &mut [T], inp: &[T]) {
    out.par_chunks_mut(CHUNK).zip(inp.par_chunks(CHUNK)).for_each(|(o, x)| gelu_chunk(o, x));
}

pub fn gelu_backward<T: Real>(dinp: &mut [T], inp: &[T], dout: &[T]) {
    dinp.par_chunks_mut(CHUNK).zip(inp.par_chunks(CHUNK)).zip(dout.par_chunks(CHUNK)).for_each(|((d, x), g)| gelu_grad_chunk(d, x, g));
}
