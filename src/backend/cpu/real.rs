//! The float types the CPU kernels are generic over: f32 (the backend) and
//! f64 (finite-difference gradient checks run the very same kernels in f64).

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Real:
    faer::traits::ComplexField
    + Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn powi(self, n: i32) -> Self;
    fn max(self, o: Self) -> Self;
    /// Φ(x), the standard normal CDF (f32: a fit that vectorises, see
    /// `simd::normal_cdf_f32`; f64: through libm's `erf`).
    fn normal_cdf(self) -> Self;
    /// exp that vectorises (f32: polynomial, ~1 ulp; f64: libm).
    fn fast_exp(self) -> Self;
    /// tanh through `fast_exp`: sign(u)·(1 − e)/(1 + e), e = exp(−2|u|).
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        let a = if self < Self::ZERO { -self } else { self };
        let e = (Self::of(-2.0) * a).fast_exp();
        let t = (Self::ONE - e) / (Self::ONE + e);
        if self < Self::ZERO {
            -t
        } else {
            t
        }
    }
}

// Rust's std has no stable `erf`; the C math library every Rust program on
// Linux already links has it.
mod libm {
    extern "C" {
        pub fn erf(x: f64) -> f64;
        #[cfg(test)]
        pub fn erfc(x: f64) -> f64;
    }
}

fn erf_f64(x: f64) -> f64 {
    // SAFETY: a pure function of its argument.
    unsafe { libm::erf(x) }
}

/// erfc, keeping its relative accuracy in the tail (for tests).
#[cfg(test)]
pub(super) fn erfc_f64(x: f64) -> f64 {
    // SAFETY: a pure function of its argument.
    unsafe { libm::erfc(x) }
}

fn normal_cdf_f64(x: f64) -> f64 {
    0.5 * (1.0 + erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
}

macro_rules! impl_real {
    ($t:ty, $fast_exp:expr, $normal_cdf:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline]
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            #[inline(always)]
            fn normal_cdf(self) -> Self {
                $normal_cdf(self)
            }
            #[inline(always)]
            fn fast_exp(self) -> Self {
                $fast_exp(self)
            }
        }
    };
}
impl_real!(f32, super::simd::exp_f32, super::simd::normal_cdf_f32);
impl_real!(f64, f64::exp, normal_cdf_f64);

/// Dot product with four independent accumulators (lets the compiler vectorise).
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (mut s0, mut s1, mut s2, mut s3) = (T::ZERO, T::ZERO, T::ZERO, T::ZERO);
    let chunks = n / 4;
    for c in 0..chunks {
        let i = 4 * c;
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for i in 4 * chunks..n {
        s0 += a[i] * b[i];
    }
    (s0 + s1) + (s2 + s3)
}

/// Σ x with four independent accumulators (vectorises; a plain float sum
/// cannot, since reordering changes its rounding).
#[inline]
pub fn sum<T: Real>(x: &[T]) -> T {
    let (mut s0, mut s1, mut s2, mut s3) = (T::ZERO, T::ZERO, T::ZERO, T::ZERO);
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        s0 += c[0];
        s1 += c[1];
        s2 += c[2];
        s3 += c[3];
    }
    for &v in chunks.remainder() {
        s0 += v;
    }
    (s0 + s1) + (s2 + s3)
}

/// Σ (x − m)² with four independent accumulators.
#[inline]
pub fn sum_sq_dev<T: Real>(x: &[T], m: T) -> T {
    let (mut s0, mut s1, mut s2, mut s3) = (T::ZERO, T::ZERO, T::ZERO, T::ZERO);
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        let (a, b, d, e) = (c[0] - m, c[1] - m, c[2] - m, c[3] - m);
        s0 += a * a;
        s1 += b * b;
        s2 += d * d;
        s3 += e * e;
    }
    for &v in chunks.remainder() {
        s0 += (v - m) * (v - m);
    }
    (s0 + s1) + (s2 + s3)
}

/// `y += alpha · x`.
#[inline]
pub fn axpy<T: Real>(y: &mut [T], alpha: T, x: &[T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
