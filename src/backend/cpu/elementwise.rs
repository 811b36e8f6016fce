//! Elementwise ops: residual add, products, scaling, and the activations
//! (`Act`): the tanh GELU ("gelu_new": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))),
//! the erf GELU, quick_gelu, relu and tanh, each with its gradient.

use super::real::Real;
use super::simd::simd_kernel;
use crate::backend::Act;
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

pub fn broadcast_add<T: Real>(dst: &mut [T], v: &[T], rows: usize, width: usize) {
    if width > 0 {
        dst[..rows * width].par_chunks_mut(width).for_each(|row| row.iter_mut().zip(&v[..width]).for_each(|(d, &x)| *d += x));
    }
}

pub fn mul<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    out.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).zip(b.par_chunks(CHUNK)).for_each(|((o, a), b)| {
        for i in 0..o.len() {
            o[i] = a[i] * b[i];
        }
    });
}

pub fn scale<T: Real>(v: &mut [T], alpha: T) {
    v.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|x| *x *= alpha));
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044715;
/// 1/√(2π), the standard normal density at 0.
const NORMAL_PDF_0: f64 = 0.398_942_280_401_432_7;
const QUICK_GELU_SLOPE: f64 = 1.702;

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

/// σ(x) through `fast_exp` (vectorises).
#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    T::ONE / (T::ONE + (-x).fast_exp())
}

simd_kernel! {
    /// The erf GELU x·Φ(x), Φ the standard normal CDF (= ½(1 + erf(x/√2))).
    fn gelu_erf_chunk<T: Real>(out: &mut [T], inp: &[T]) {
        for (o, &x) in out.iter_mut().zip(inp) {
            *o = x * x.normal_cdf();
        }
    }
}

simd_kernel! {
    /// Its derivative Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
    fn gelu_erf_grad_chunk<T: Real>(dinp: &mut [T], inp: &[T], dout: &[T]) {
        for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
            *d = (x.normal_cdf() + x * T::of(NORMAL_PDF_0) * (T::of(-0.5) * x * x).fast_exp()) * g;
        }
    }
}

/// tanh and its derivative 1 − tanh².
#[inline]
fn tanh<T: Real>(x: T) -> (T, T) {
    let t = x.tanh();
    (t, T::ONE - t * t)
}

/// relu and its derivative (0 at 0, as PyTorch's).
#[inline]
fn relu<T: Real>(x: T) -> (T, T) {
    if x > T::ZERO {
        (x, T::ONE)
    } else {
        (T::ZERO, T::ZERO)
    }
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
            *d = gelu_grad(x) * g;
        }
    }
}

simd_kernel! {
    fn quick_gelu_chunk<T: Real>(out: &mut [T], inp: &[T]) {
        for (o, &x) in out.iter_mut().zip(inp) {
            *o = x * sigmoid(T::of(QUICK_GELU_SLOPE) * x);
        }
    }
}

simd_kernel! {
    fn quick_gelu_grad_chunk<T: Real>(dinp: &mut [T], inp: &[T], dout: &[T]) {
        for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
            let s = sigmoid(T::of(QUICK_GELU_SLOPE) * x);
            *d = (s + T::of(QUICK_GELU_SLOPE) * x * s * (T::ONE - s)) * g;
        }
    }
}

pub fn activation_forward<T: Real>(act: Act, out: &mut [T], inp: &[T]) {
    out.par_chunks_mut(CHUNK).zip(inp.par_chunks(CHUNK)).for_each(|(o, x)| match act {
        Act::GeluTanh => gelu_chunk(o, x),
        Act::QuickGelu => quick_gelu_chunk(o, x),
        Act::GeluErf => gelu_erf_chunk(o, x),
        Act::Relu => o.iter_mut().zip(x).for_each(|(o, &x)| *o = relu(x).0),
        Act::Tanh => o.iter_mut().zip(x).for_each(|(o, &x)| *o = tanh(x).0),
    });
}

pub fn activation_backward<T: Real>(act: Act, dinp: &mut [T], inp: &[T], dout: &[T]) {
    dinp.par_chunks_mut(CHUNK).zip(inp.par_chunks(CHUNK)).zip(dout.par_chunks(CHUNK)).for_each(|((d, x), g)| match act {
        Act::GeluTanh => gelu_grad_chunk(d, x, g),
        Act::QuickGelu => quick_gelu_grad_chunk(d, x, g),
        Act::GeluErf => gelu_erf_grad_chunk(d, x, g),
        Act::Relu => d.iter_mut().zip(x).zip(g).for_each(|((d, &x), &g)| *d = relu(x).1 * g),
        Act::Tanh => d.iter_mut().zip(x).zip(g).for_each(|((d, &x), &g)| *d = tanh(x).1 * g),
    });
}
