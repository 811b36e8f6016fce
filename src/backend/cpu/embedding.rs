//! Table lookups: token (+ position) embeddings, whose backward scatter-adds
//! rows, so a table used twice (a tied LM head) simply accumulates both
//! gradients; and T5's bucketed relative position bias.

use super::real::Real;
use rayon::prelude::*;

pub fn embedding_forward<T: Real>(out: &mut [T], ids: &[i32], wte: &[T], positions: Option<(&[i32], &[T])>, c: usize) {
    out[..ids.len() * c].par_chunks_mut(c).enumerate().for_each(|(r, o)| {
        let t = ids[r] as usize * c;
        o.copy_from_slice(&wte[t..t + c]);
        if let Some((pos, wpe)) = positions {
            let p = pos[r] as usize * c;
            o.iter_mut().zip(&wpe[p..p + c]).for_each(|(o, &x)| *o += x);
        }
    });
}

pub fn embedding_backward<T: Real>(dwte: &mut [T], mut positions: Option<(&[i32], &mut [T])>, dout: &[T], ids: &[i32], c: usize) {
    for (r, d) in dout[..ids.len() * c].chunks_exact(c).enumerate() {
        let t = ids[r] as usize * c;
        dwte[t..t + c].iter_mut().zip(d).for_each(|(a, &g)| *a += g);
        if let Some((pos, dwpe)) = positions.as_mut() {
            let p = pos[r] as usize * c;
            dwpe[p..p + c].iter_mut().zip(d).for_each(|(a, &g)| *a += g);
        }
    }
}

/// `out[h, r] = table[buckets[r], h]`: `out` is [heads, n], `table` [num_buckets, heads].
pub fn position_bias_forward<T: Real>(out: &mut [T], table: &[T], buckets: &[i32], heads: usize) {
    let n = buckets.len();
    out[..heads * n].par_chunks_mut(n).enumerate().for_each(|(h, row)| {
        for (o, &b) in row.iter_mut().zip(buckets) {
            *o = table[b as usize * heads + h];
        }
    });
}

/// `dtable[buckets[r], h] += dout[h, r]`.
pub fn position_bias_backward<T: Real>(dtable: &mut [T], dout: &[T], buckets: &[i32], heads: usize) {
    let n = buckets.len();
    for h in 0..heads {
        for (r, &b) in buckets.iter().enumerate() {
            dtable[b as usize * heads + h] += dout[h * n + r];
        }
    }
}
