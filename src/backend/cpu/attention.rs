//! Multi-head attention, flash-style: the forward keeps only the output and
//! the per-query log-sum-exp, the backward recomputes probabilities from them.
//! No T×T matrix is stored. Work is split over (batch, head) pairs; each pair
//! computes into private buffers that are then scattered into place.

use super::real::{axpy, dot, Real};
use crate::backend::AttnShape;
use rayon::prelude::*;

/// Keys visible to query `i`: `0..end`, minus masked ones.
fn visible_end(s: &AttnShape, i: usize) -> usize {
    if s.causal {
        (s.kv_len - s.q_len + i + 1).min(s.kv_len)
    } else {
        s.kv_len
    }
}

fn key_kept<T: Real>(mask: Option<&[T]>, s: &AttnShape, b: usize, j: usize) -> bool {
    mask.is_none_or(|m| m[b * s.kv_cap + j] != T::ZERO)
}

#[allow(clippy::too_many_arguments)]
pub fn attention_forward<T: Real>(out: &mut [T], lse: &mut [T], q: &[T], k: &[T], v: &[T], mask: Option<&[T]>, s: &AttnShape) {
    let (nh, d, tq) = (s.heads, s.head_dim, s.q_len);
    let c = nh * d;
    let scale = T::of(s.scale as f64);
    let per_head: Vec<(Vec<T>, Vec<T>)> = (0..s.batch * nh)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / nh, bh % nh);
            let mut o = vec![T::ZERO; tq * d];
            let mut l = vec![T::NEG_INFINITY; tq];
            let mut scores = vec![T::NEG_INFINITY; s.kv_len];
            let key = |j: usize| &k[(b * s.kv_cap + j) * s.kv_stride + h * d..][..d];
            let val = |j: usize| &v[(b * s.kv_cap + j) * s.kv_stride + h * d..][..d];
            for i in 0..tq {
                let qi = &q[(b * tq + i) * s.q_stride + h * d..][..d];
                let end = visible_end(s, i);
                let mut max = T::NEG_INFINITY;
                for (j, sj) in scores[..end].iter_mut().enumerate() {
                    *sj = if key_kept(mask, s, b, j) { scale * dot(qi, key(j)) } else { T::NEG_INFINITY };
                    max = max.max(*sj);
                }
                if max == T::NEG_INFINITY {
                    continue; // nothing visible: zero output, lse = -inf
                }
                let oi = &mut o[i * d..(i + 1) * d];
                let mut sum = T::ZERO;
                for (j, &sj) in scores[..end].iter().enumerate() {
                    if sj != T::NEG_INFINITY {
                        let p = (sj - max).exp();
                        sum += p;
                        axpy(oi, p, val(j));
                    }
                }
                let inv = T::ONE / sum;
                oi.iter_mut().for_each(|x| *x *= inv);
                l[i] = max + sum.ln();
            }
            (o, l)
        })
        .collect();
    for (bh, (o, l)) in per_head.into_iter().enumerate() {
        let (b, h) = (bh / nh, bh % nh);
        for i in 0..tq {
            out[(b * tq + i) * c + h * d..][..d].copy_from_slice(&o[i * d..(i + 1) * d]);
        }
        lse[bh * tq..(bh + 1) * tq].copy_from_slice(&l);
    }
}

/// Backward of fused self-attention; see [`crate::backend::Backend::attention_backward`].
/// With P = softmax(S): dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
/// dQ = scale·dS·K, dK = scale·dSᵀ·Q.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Real>(dqkv: &mut [T], dout: &[T], qkv: &[T], out: &[T], lse: &[T], mask: Option<&[T]>, s: &AttnShape) {
    assert!(s.q_len == s.kv_len && s.kv_len == s.kv_cap, "attention_backward expects fused self-attention");
    let (nh, d, t) = (s.heads, s.head_dim, s.q_len);
    let c = nh * d;
    let stride = s.q_stride;
    let scale = T::of(s.scale as f64);
    let per_head: Vec<[Vec<T>; 3]> = (0..s.batch * nh)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / nh, bh % nh);
            let (mut dq, mut dk, mut dv) = (vec![T::ZERO; t * d], vec![T::ZERO; t * d], vec![T::ZERO; t * d]);
            let row = |i: usize, part: usize| &qkv[(b * t + i) * stride + part * c + h * d..][..d];
            for i in 0..t {
                let l = lse[bh * t + i];
                if l == T::NEG_INFINITY {
                    continue;
                }
                let doi = &dout[(b * t + i) * c + h * d..][..d];
                let oi = &out[(b * t + i) * c + h * d..][..d];
                let big_d = dot(doi, oi);
                let qi = row(i, 0);
                for j in 0..visible_end(s, i) {
                    if !key_kept(mask, s, b, j) {
                        continue;
                    }
                    let kj = row(j, 1);
                    let p = (scale * dot(qi, kj) - l).exp();
                    let dp = dot(doi, row(j, 2));
                    let ds = p * (dp - big_d) * scale;
                    axpy(&mut dq[i * d..(i + 1) * d], ds, kj);
                    axpy(&mut dk[j * d..(j + 1) * d], ds, qi);
                    axpy(&mut dv[j * d..(j + 1) * d], p, doi);
                }
            }
            [dq, dk, dv]
        })
        .collect();
    for (bh, parts) in per_head.into_iter().enumerate() {
        let (b, h) = (bh / nh, bh % nh);
        for (part, grad) in parts.iter().enumerate() {
            for i in 0..t {
                let dst = &mut dqkv[(b * t + i) * stride + part * c + h * d..][..d];
                dst.iter_mut().zip(&grad[i * d..(i + 1) * d]).for_each(|(a, &g)| *a += g);
            }
        }
    }
}
