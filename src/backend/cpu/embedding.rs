//! Token + position embedding lookup; its backward scatter-adds rows, so a
//! table used twice (a tied LM head) simply accumulates both gradients.

use super::real::Real;
use rayon::prelude::*;

pub fn embedding_forward<T: Real>(out: &mut [T], ids: &[i32], pos: &[i32], wte: &[T], wpe: &[T], c: usize) {
    out[..ids.len() * c].par_chunks_mut(c).enumerate().for_each(|(r, o)| {
        let t = ids[r] as usize * c;
        let p = pos[r] as usize * c;
        for i in 0..c {
            o[i] = wte[t + i] + wpe[p + i];
        }
    });
}

pub fn embedding_backward<T: Real>(dwte: &mut [T], dwpe: &mut [T], dout: &[T], ids: &[i32], pos: &[i32], c: usize) {
    for (r, d) in dout[..ids.len() * c].chunks_exact(c).enumerate() {
        let t = ids[r] as usize * c;
        let p = pos[r] as usize * c;
        for i in 0..c {
            dwte[t + i] += d[i];
            dwpe[p + i] += d[i];
        }
    }
}
