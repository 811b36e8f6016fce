//! Vectorisation helpers: a polynomial `exp` that compiles to SIMD (libm's
//! `expf`/`tanhf` are scalar calls), and `simd_kernel!`, which compiles a loop
//! body twice, once for AVX2+FMA and once for the baseline, and picks at run
//! time, so binaries stay portable; and `max_in_lanes`, a row maximum that
//! vectorises inside such kernels.

use super::real::Real;

/// exp(x) for f32 with ~1 ulp error on [-87.3, 88], where inputs are clamped
/// (Cephes' polynomial after a Cody-Waite reduction x = n·ln2 + r); written
/// branch-free to vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.0); // keeps 2^n a normal float
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let bits = (t.to_bits() as i32 - 0x4B40_0000 + 127) << 23;
    y * f32::from_bits(bits as u32)
}

/// Φ(x), the standard normal CDF, for f32: ½·erfc(−x/√2) with
/// erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), z ≥ 0 (the Chebyshev fit of
/// Numerical Recipes, "erfcc": fractional error below 1.2e-7 everywhere, so
/// the lower tail keeps its relative accuracy); branch-free to vectorise.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn normal_cdf_f32(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18 + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let half_erfc = 0.5 * t * exp_f32(p - z * z);
    if x >= 0.0 {
        1.0 - half_erfc
    } else {
        half_erfc
    }
}

/// max(row), kept in 16 independent lanes so that the loop vectorises
/// (a maximum is exact in any order; NaNs are skipped, as `f32::max` does).
#[inline(always)]
pub fn max_in_lanes<T: Real>(row: &[T]) -> T {
    const LANES: usize = 16;
    let pick = |a: T, x: T| if x > a { x } else { a };
    let mut acc = [T::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for lane in 0..LANES {
            acc[lane] = pick(acc[lane], c[lane]);
        }
    }
    let rest = chunks.remainder().iter().fold(T::NEG_INFINITY, |a, &x| pick(a, x));
    acc.iter().fold(rest, |a, &x| pick(a, x))
}

/// Defines `fn NAME<T: Real>(args)` whose body is compiled for AVX2+FMA
/// and for the baseline target, chosen at run time.
macro_rules! simd_kernel {
    ($(#[$m:meta])* fn $name:ident<$T:ident: Real>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        // Kernels take their buffers and shapes as plain arguments.
        #[allow(clippy::too_many_arguments)]
        fn $name<$T: Real>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$T: Real>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide<$T: Real>($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

#[cfg(test)]
mod tests {
    #[test]
    fn normal_cdf_matches_libm_erf() {
        let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
        // Down to Φ(−12) ≈ 2e-33, well inside f32's normal range.
        let mut x = -12.0f32;
        while x <= 12.0 {
            let want = 0.5 * super::super::real::erfc_f64(-x as f64 / std::f64::consts::SQRT_2);
            let got = super::normal_cdf_f32(x) as f64;
            worst_abs = worst_abs.max((got - want).abs());
            worst_rel = worst_rel.max(((got - want) / want).abs());
            x += 0.0031;
        }
        // The fit's 1.2e-7 plus f32 rounding; in the lower tail Φ's condition
        // number is x², so rounding x/√2 to f32 alone moves Φ(−12) by ~144·6e-8.
        assert!(worst_abs < 2e-7 && worst_rel < 3e-5, "abs {worst_abs:e}, rel {worst_rel:e}");
    }

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let rel = ((super::exp_f32(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }
}
