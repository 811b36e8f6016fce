//! LayerNorm over the last dimension: forward saves mean and 1/std per row;
//! backward uses them (llm.c's formulation) and accumulates dinp, dw, db.

use super::real::{sum, sum_sq_dev, Real};
use super::simd::simd_kernel;
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<T: Real>(out: &mut [T], mean: &mut [T], rstd: &mut [T], inp: &[T], w: &[T], b: &[T], rows: usize, c: usize, eps: T) {
    out[..rows * c]
        .par_chunks_mut(c)
        .zip(mean[..rows].par_iter_mut().zip(rstd[..rows].par_iter_mut()))
        .zip(inp[..rows * c].par_chunks(c))
        .for_each(|((o, (mu, rs)), x)| normalize_row(o, mu, rs, x, w, b, eps));
}

/// A residual add and the LayerNorm after it: `res = x + delta` (`x` `None`:
/// `res += delta`), then `layernorm_forward` of `res`, a row at a time (each
/// row normalised while it is still in cache).
#[allow(clippy::too_many_arguments)]
pub fn add_layernorm_forward<T: Real>(res: &mut [T], out: &mut [T], mean: &mut [T], rstd: &mut [T], x: Option<&[T]>, delta: &[T], w: &[T], b: &[T], rows: usize, c: usize, eps: T) {
    res[..rows * c]
        .par_chunks_mut(c)
        .zip(out[..rows * c].par_chunks_mut(c))
        .zip(mean[..rows].par_iter_mut().zip(rstd[..rows].par_iter_mut()))
        .zip(delta[..rows * c].par_chunks(c))
        .enumerate()
        .for_each(|(row, (((r, o), (mu, rs)), d))| {
            add_residual_row(r, x.map(|x| &x[row * c..(row + 1) * c]), d);
            normalize_row(o, mu, rs, r, w, b, eps)
        });
}

/// One row of a residual add: `res = x + delta`, or `res += delta`.
pub(super) fn add_residual_row<T: Real>(res: &mut [T], x: Option<&[T]>, delta: &[T]) {
    match x {
        Some(x) => res.iter_mut().zip(x).zip(delta).for_each(|((r, &x), &d)| *r = x + d),
        None => res.iter_mut().zip(delta).for_each(|(r, &d)| *r += d),
    }
}

simd_kernel! {
    /// One row of the forward: o = (x − mean)·rstd·w + b.
    fn normalize_row<T: Real>(o: &mut [T], mu: &mut T, rs: &mut T, x: &[T], w: &[T], b: &[T], eps: T) {
        let n = T::of(x.len() as f64);
        let m = sum(x) / n;
        let var = sum_sq_dev(x, m) / n;
        let r = T::ONE / (var + eps).sqrt();
        for (((o, &x), &w), &b) in o.iter_mut().zip(x).zip(w).zip(b) {
            *o = (x - m) * r * w + b;
        }
        *mu = m;
        *rs = r;
    }
}

simd_kernel! {
    /// One row of the backward (see `layernorm_backward`), adding to the
    /// block's partial dw and db.
    fn backward_row<T: Real>(di: &mut [T], pdw: &mut [T], pdb: &mut [T], dy: &[T], x: &[T], w: &[T], mu: T, rs: T) {
        let (mut dnorm_mean, mut dnorm_norm_mean) = ([T::ZERO; LANES], [T::ZERO; LANES]);
        let mut add = |lane: usize, x: T, dy: T, w: T| {
            let dnorm = w * dy;
            dnorm_mean[lane] += dnorm;
            dnorm_norm_mean[lane] += dnorm * ((x - mu) * rs);
        };
        let full = x.len() / LANES * LANES;
        for ((x, dy), w) in x[..full].chunks_exact(LANES).zip(dy.chunks_exact(LANES)).zip(w.chunks_exact(LANES)) {
            for lane in 0..LANES {
                add(lane, x[lane], dy[lane], w[lane]);
            }
        }
        for ((&x, &dy), &w) in x[full..].iter().zip(&dy[full..]).zip(&w[full..]) {
            add(0, x, dy, w);
        }
        let n = T::of(x.len() as f64);
        let dnorm_mean = dnorm_mean.iter().copied().sum::<T>() / n;
        let dnorm_norm_mean = dnorm_norm_mean.iter().copied().sum::<T>() / n;
        for (((((di, pdw), pdb), &x), &dy), &w) in di.iter_mut().zip(pdw.iter_mut()).zip(pdb.iter_mut()).zip(x).zip(dy).zip(w) {
            let norm = (x - mu) * rs;
            let dnorm = w * dy;
            *pdb += dy;
            *pdw += norm * dy;
            *di += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs;
        }
    }
}

/// Independent accumulators of the row sums in `backward_row` (one vector register).
const LANES: usize = 8;

/// dnorm = w·dout;  dinp += rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<T: Real>(dinp: &mut [T], dw: &mut [T], db: &mut [T], dout: &[T], inp: &[T], w: &[T], mean: &[T], rstd: &[T], rows: usize, c: usize) {
    // Rows are split into blocks; each block sums its own dw/db, then the
    // partial sums are added in a fixed order (deterministic results).
    let block = rows.div_ceil(4 * rayon::current_num_threads()).max(1);
    let partials: Vec<(Vec<T>, Vec<T>)> = dinp[..rows * c]
        .par_chunks_mut(block * c)
        .enumerate()
        .map(|(bi, dinp_block)| {
            let mut pdw = vec![T::ZERO; c];
            let mut pdb = vec![T::ZERO; c];
            for (ri, di) in dinp_block.chunks_exact_mut(c).enumerate() {
                let r = bi * block + ri;
                let rows = r * c..(r + 1) * c;
                backward_row(di, &mut pdw, &mut pdb, &dout[rows.clone()], &inp[rows], w, mean[r], rstd[r]);
            }
            (pdw, pdb)
        })
        .collect();
    for (pdw, pdb) in partials {
        dw[..c].iter_mut().zip(&pdw).for_each(|(a, &b)| *a += b);
        db[..c].iter_mut().zip(&pdb).for_each(|(a, &b)| *a += b);
    }
}
