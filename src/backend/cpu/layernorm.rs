//! LayerNorm over the last dimension: forward saves mean and 1/std per row;
//! backward uses them (llm.c's formulation) and accumulates dinp, dw, db.

use super::real::{sum, sum_sq_dev, Real};
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<T: Real>(out: &mut [T], mean: &mut [T], rstd: &mut [T], inp: &[T], w: &[T], b: &[T], rows: usize, c: usize, eps: T) {
    out[..rows * c].par_chunks_mut(c).zip(mean[..rows].par_iter_mut().zip(rstd[..rows].par_iter_mut())).zip(inp[..rows * c].par_chunks(c)).for_each(|((o, (mu, rs)), x)| {
        let n = T::of(c as f64);
        let m = sum(x) / n;
        let var = sum_sq_dev(x, m) / n;
        let r = T::ONE / (var + eps).sqrt();
        for i in 0..c {
            o[i] = (x[i] - m) * r * w[i] + b[i];
        }
        *mu = m;
        *rs = r;
    });
}

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
                let x = &inp[r * c..(r + 1) * c];
                let dy = &dout[r * c..(r + 1) * c];
                let (mu, rs) = (mean[r], rstd[r]);
                let mut dnorm_mean = T::ZERO;
                let mut dnorm_norm_mean = T::ZERO;
                for i in 0..c {
                    let norm = (x[i] - mu) * rs;
                    let dnorm = w[i] * dy[i];
                    dnorm_mean += dnorm;
                    dnorm_norm_mean += dnorm * norm;
                }
                let n = T::of(c as f64);
                dnorm_mean /= n;
                dnorm_norm_mean /= n;
                for i in 0..c {
                    let norm = (x[i] - mu) * rs;
                    let dnorm = w[i] * dy[i];
                    pdb[i] += dy[i];
                    pdw[i] += norm * dy[i];
                    di[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs;
                }
            }
            (pdw, pdb)
        })
        .collect();
    for (pdw, pdb) in partials {
        dw[..c].iter_mut().zip(&pdw).for_each(|(a, &b)| *a += b);
        db[..c].iter_mut().zip(&pdb).for_each(|(a, &b)| *a += b);
    }
}
