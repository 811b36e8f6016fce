//! T5's RMS norm (`T5LayerNorm`): `y = w · x · r`, r = 1/√(mean(x²) + eps),
//! with no mean subtraction and no bias; the forward saves r per row.

use super::layernorm::add_residual_row;
use super::real::Real;
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_forward<T: Real>(out: &mut [T], rstd: &mut [T], inp: &[T], w: &[T], rows: usize, c: usize, eps: T) {
    out[..rows * c].par_chunks_mut(c).zip(rstd[..rows].par_iter_mut()).zip(inp[..rows * c].par_chunks(c)).for_each(|((o, rs), x)| normalize_row(o, rs, x, w, eps));
}

/// A residual add and the RMS norm after it: `res = x + delta` (`x` `None`:
/// `res += delta`), then `rmsnorm_forward` of `res`, a row at a time.
#[allow(clippy::too_many_arguments)]
pub fn add_rmsnorm_forward<T: Real>(res: &mut [T], out: &mut [T], rstd: &mut [T], x: Option<&[T]>, delta: &[T], w: &[T], rows: usize, c: usize, eps: T) {
    res[..rows * c].par_chunks_mut(c).zip(out[..rows * c].par_chunks_mut(c)).zip(rstd[..rows].par_iter_mut()).zip(delta[..rows * c].par_chunks(c)).enumerate().for_each(
        |(row, (((r, o), rs), d))| {
            add_residual_row(r, x.map(|x| &x[row * c..(row + 1) * c]), d);
            normalize_row(o, rs, r, w, eps)
        },
    );
}

/// One row: o = w · x · r, r = 1/sqrt(mean(x²) + eps).
fn normalize_row<T: Real>(o: &mut [T], rs: &mut T, x: &[T], w: &[T], eps: T) {
    let r = T::ONE / (x.iter().map(|&xi| xi * xi).sum::<T>() / T::of(x.len() as f64) + eps).sqrt();
    for i in 0..x.len() {
        o[i] = w[i] * (x[i] * r);
    }
    *rs = r;
}

/// With g = w ⊙ dy: dx += r·g − x·r³·(g·x)/c;  dw += Σ_rows dy ⊙ x·r.
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_backward<T: Real>(dinp: &mut [T], dw: &mut [T], dout: &[T], inp: &[T], w: &[T], rstd: &[T], rows: usize, c: usize) {
    // Row blocks sum their own dw, added in a fixed order (deterministic).
    let block = rows.div_ceil(4 * rayon::current_num_threads()).max(1);
    let partials: Vec<Vec<T>> = dinp[..rows * c]
        .par_chunks_mut(block * c)
        .enumerate()
        .map(|(bi, dinp_block)| {
            let mut pdw = vec![T::ZERO; c];
            for (ri, di) in dinp_block.chunks_exact_mut(c).enumerate() {
                let r = bi * block + ri;
                let (x, dy, rs) = (&inp[r * c..(r + 1) * c], &dout[r * c..(r + 1) * c], rstd[r]);
                let gx: T = (0..c).map(|i| w[i] * dy[i] * x[i]).sum();
                let k = gx * rs * rs * rs / T::of(c as f64);
                for i in 0..c {
                    pdw[i] += dy[i] * x[i] * rs;
                    di[i] += w[i] * dy[i] * rs - x[i] * k;
                }
            }
            pdw
        })
        .collect();
    for pdw in partials {
        dw[..c].iter_mut().zip(&pdw).for_each(|(a, &b)| *a += b);
    }
}
