//! Multi-head attention, flash-style: the forward keeps only the output and
//! the per-query log-sum-exp, the backward recomputes probabilities from them;
//! no T×T matrix outlives a call. Work is split over (batch, head) pairs and,
//! within a pair, over blocks of `QUERY_BLOCK` queries whose score tile
//! [block, keys] is built with matrix products. Each pair computes into
//! private buffers that are then scattered into place.
//!
//! An additive bias `[heads, q_len, kv_len]` (T5's relative positions) joins
//! the scores after scaling; its gradient is the score gradient dS summed
//! over the batch.

use super::real::{dot, Real};
use super::simd::{max_in_lanes, simd_kernel};
use crate::backend::AttnShape;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

const QUERY_BLOCK: usize = 64;
/// Score tiles up to this many entries skip the GEMM calls (see `scores_small`).
const SMALL_TILE: usize = 64 * 64;

simd_kernel! {
    /// tile[r, j] = Σ_c q[r·q_stride + c] · kt[c·end + j], with K transposed and scaled.
    fn scores_small<T: Real>(tile: &mut [T], q: &[T], q_stride: usize, kt: &[T], n: usize, end: usize, d: usize) {
        for r in 0..n {
            let row = &mut tile[r * end..(r + 1) * end];
            row.fill(T::ZERO);
            for (c, &a) in q[r * q_stride..r * q_stride + d].iter().enumerate() {
                for (x, &k) in row.iter_mut().zip(&kt[c * end..(c + 1) * end]) {
                    *x += a * k;
                }
            }
        }
    }
}

simd_kernel! {
    /// o[r, :] = Σ_j p[r, j] · v[j·v_stride ..][..d] for a zeroed `o`.
    fn probs_times_values_small<T: Real>(o: &mut [T], p: &[T], v: &[T], v_stride: usize, n: usize, end: usize, d: usize) {
        for r in 0..n {
            let orow = &mut o[r * d..(r + 1) * d];
            for (j, &pj) in p[r * end..(r + 1) * end].iter().enumerate() {
                for (x, &vj) in orow.iter_mut().zip(&v[j * v_stride..j * v_stride + d]) {
                    *x += pj * vj;
                }
            }
        }
    }
}

simd_kernel! {
    /// Each row of `tile` [rows, end] ← exp(row − max(row)) (exact zeros
    /// for −∞ scores), its log-sum-exp into `lse` and 1/sum into `inv_sums`;
    /// a row with nothing visible becomes zeros, keeps lse −∞ and gets 1/sum 0.
    fn exp_rows<T: Real>(tile: &mut [T], end: usize, lse: &mut [T], inv_sums: &mut [T]) {
        for ((row, l), inv) in tile.chunks_exact_mut(end).zip(lse.iter_mut()).zip(inv_sums.iter_mut()) {
            let max = max_in_lanes(row);
            if max == T::NEG_INFINITY {
                row.fill(T::ZERO);
                *inv = T::ZERO;
                continue;
            }
            let sum = exp_in_place(row, max);
            *inv = T::ONE / sum;
            *l = max + sum.ln();
        }
    }
}

simd_kernel! {
    /// Row by row over tiles [rows, end]: P = exp(S − lse) in `p` (which
    /// holds S), and dS = P ⊙ (dP − D) (before the scale) in `dp` (which holds dP),
    /// D = rowsum(dO ⊙ O);
    /// rows with lse −∞ (nothing visible) become zeros in both.
    fn probs_and_score_grads<T: Real>(p: &mut [T], dp: &mut [T], end: usize, lse: &[T], big_d: &[T]) {
        for (((prow, dprow), &l), &big_d) in p.chunks_exact_mut(end).zip(dp.chunks_exact_mut(end)).zip(lse).zip(big_d) {
            if l == T::NEG_INFINITY {
                prow.fill(T::ZERO);
                dprow.fill(T::ZERO);
                continue;
            }
            for (x, g) in prow.iter_mut().zip(dprow.iter_mut()) {
                *x = prob(*x, l);
                *g = *x * (*g - big_d);
            }
        }
    }
}

/// Independent accumulators of the row sums (16 f32: two AVX registers).
const LANES: usize = 16;

/// row ← exp(row − shift) (exact zeros for −∞); returns Σ row, summed in
/// `LANES` independent lanes.
#[inline(always)]
fn exp_in_place<T: Real>(row: &mut [T], shift: T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for lane in 0..LANES {
            c[lane] = prob(c[lane], shift);
            acc[lane] += c[lane];
        }
    }
    let mut rest = T::ZERO;
    for x in chunks.into_remainder() {
        *x = prob(*x, shift);
        rest += *x;
    }
    acc.iter().fold(rest, |a, &x| a + x)
}

/// Keys visible to query `i` (before the padding mask): `0..end`.
fn visible_end(s: &AttnShape, i: usize) -> usize {
    if s.causal {
        (s.kv_len - s.q_len + i + 1).min(s.kv_len)
    } else {
        s.kv_len
    }
}

/// The first key a local window lets query `i` see (0 without a window).
fn visible_begin(s: &AttnShape, i: usize) -> usize {
    if s.window > 0 {
        (s.kv_len - s.q_len + i + 1).saturating_sub(s.window)
    } else {
        0
    }
}

/// `rows` rows of `d` floats starting at `data[0]`, `stride` apart.
fn rows<T: Real>(data: &[T], rows: usize, d: usize, stride: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice_with_stride(&data[..(rows - 1) * stride + d], rows, d, stride)
}

fn gemm<T: Real>(dst: MatMut<'_, T>, acc: bool, a: MatRef<'_, T>, b: MatRef<'_, T>, alpha: T) {
    matmul(dst, if acc { Accum::Add } else { Accum::Replace }, a, b, alpha, Par::Seq);
}

/// The geometry of one (batch, head) pair: where its rows start in each buffer.
struct Pair<'s> {
    s: &'s AttnShape,
    b: usize,
    h: usize,
}

impl Pair<'_> {
    fn q_at(&self, i: usize) -> usize {
        (self.b * self.s.q_len + i) * self.s.q_stride + self.h * self.s.head_dim
    }
    fn kv_at(&self, j: usize) -> usize {
        (self.b * self.s.kv_cap + j) * self.s.kv_stride + self.h * self.s.head_dim
    }
    /// Where bias row `i` of this pair's head starts.
    fn bias_at(&self, i: usize) -> usize {
        (self.h * self.s.q_len + i) * self.s.kv_len
    }
    /// Scores of queries `i0..i0+n` against keys `0..end`, scaled, biased and
    /// masked (masked entries are −∞), into `tile` [n, end].
    fn scores<T: Real>(&self, tile: &mut [T], inp: &Inputs<'_, T>, i0: usize, n: usize, end: usize) {
        let (s, d) = (self.s, self.s.head_dim);
        if n * end <= SMALL_TILE {
            // Short sequences (CLIP's 50 tokens, decoding): a GEMM call costs
            // more than the product.
            // K is transposed (and scaled) so the inner loop vectorises.
            let (mut kt, scale) = (vec![T::ZERO; d * end], T::of(s.scale as f64));
            for j in 0..end {
                for (c, &x) in inp.k[self.kv_at(j)..][..d].iter().enumerate() {
                    kt[c * end + j] = x * scale;
                }
            }
            scores_small(&mut tile[..n * end], &inp.q[self.q_at(i0)..], s.q_stride, &kt, n, end, d);
        } else {
            let qm = rows(&inp.q[self.q_at(i0)..], n, d, s.q_stride);
            let km = rows(&inp.k[self.kv_at(0)..], end, d, s.kv_stride);
            gemm(MatMut::from_row_major_slice_mut(&mut tile[..n * end], n, end), false, qm, km.transpose(), T::of(s.scale as f64));
        }
        for (r, row) in tile[..n * end].chunks_exact_mut(end).enumerate() {
            if let Some(bias) = inp.bias {
                let at = self.bias_at(i0 + r);
                row.iter_mut().zip(&bias[at..at + end]).for_each(|(x, &b)| *x += b);
            }
            let vis = visible_end(s, i0 + r);
            row[vis..].fill(T::NEG_INFINITY);
            row[..visible_begin(s, i0 + r).min(vis)].fill(T::NEG_INFINITY);
            if let Some(m) = inp.mask {
                for (j, x) in row[..vis].iter_mut().enumerate() {
                    if m[self.b * s.kv_cap + j] == T::ZERO {
                        *x = T::NEG_INFINITY;
                    }
                }
            }
        }
    }
}

/// The inputs of one call (see [`crate::backend::AttnInputs`]).
pub struct Inputs<'a, T> {
    pub q: &'a [T],
    pub k: &'a [T],
    pub v: &'a [T],
    pub mask: Option<&'a [T]>,
    pub bias: Option<&'a [T]>,
}

/// Where the backward accumulates dQ, dK, dV (see [`crate::backend::AttnGrads`]).
pub enum Grads<'a, T> {
    Fused(&'a mut [T]),
    Split { dq: &'a mut [T], dkv: &'a mut [T] },
}

/// `p = exp(x − shift)`, with exact zeros for −∞ scores.
#[inline(always)]
fn prob<T: Real>(x: T, shift: T) -> T {
    if x == T::NEG_INFINITY {
        T::ZERO
    } else {
        (x - shift).fast_exp()
    }
}

#[allow(clippy::too_many_arguments)]
pub fn attention_forward<T: Real>(out: &mut [T], lse: &mut [T], inp: &Inputs<'_, T>, s: &AttnShape) {
    let (nh, d, tq) = (s.heads, s.head_dim, s.q_len);
    let c = nh * d;
    let per_head: Vec<(Vec<T>, Vec<T>)> = (0..s.batch * nh)
        .into_par_iter()
        .map(|bh| {
            let pair = Pair { s, b: bh / nh, h: bh % nh };
            let mut o = vec![T::ZERO; tq * d];
            let mut l = vec![T::NEG_INFINITY; tq];
            let mut tile = vec![T::ZERO; QUERY_BLOCK.min(tq) * s.kv_len];
            let mut inv_sums = vec![T::ZERO; QUERY_BLOCK.min(tq)];
            for i0 in (0..tq).step_by(QUERY_BLOCK) {
                let n = QUERY_BLOCK.min(tq - i0);
                let end = visible_end(s, i0 + n - 1);
                if end == 0 {
                    continue;
                }
                pair.scores(&mut tile, inp, i0, n, end);
                exp_rows(&mut tile[..n * end], end, &mut l[i0..i0 + n], &mut inv_sums[..n]);
                if n * end <= SMALL_TILE {
                    probs_times_values_small(&mut o[i0 * d..(i0 + n) * d], &tile[..n * end], &inp.v[pair.kv_at(0)..], s.kv_stride, n, end, d);
                } else {
                    let vm = rows(&inp.v[pair.kv_at(0)..], end, d, s.kv_stride);
                    let mut om = MatMut::from_row_major_slice_mut(&mut o[i0 * d..(i0 + n) * d], n, d);
                    gemm(om.as_mut(), false, MatRef::from_row_major_slice(&tile[..n * end], n, end), vm, T::ONE);
                }
                for (r, row) in o[i0 * d..(i0 + n) * d].chunks_exact_mut(d).enumerate() {
                    row.iter_mut().for_each(|x| *x *= inv_sums[r]);
                }
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

/// Backward of attention; see [`crate::backend::Backend::attention_backward`].
/// With P = softmax(S): dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
/// d bias = dS, dQ = scale·dS·K, dK = scale·dSᵀ·Q.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Real>(grads: Grads<'_, T>, dbias: Option<&mut [T]>, dout: &[T], out: &[T], lse: &[T], inp: &Inputs<'_, T>, s: &AttnShape) {
    let (nh, d, tq, tk) = (s.heads, s.head_dim, s.q_len, s.kv_len);
    if tq == 0 {
        return; // as on CUDA: no launch, nothing written
    }
    let c = nh * d;
    let scale = T::of(s.scale as f64);
    let want_dbias = dbias.is_some();
    let per_head: Vec<[Vec<T>; 4]> = (0..s.batch * nh)
        .into_par_iter()
        .map(|bh| {
            let pair = Pair { s, b: bh / nh, h: bh % nh };
            let (mut dq, mut dk, mut dv) = (vec![T::ZERO; tq * d], vec![T::ZERO; tk * d], vec![T::ZERO; tk * d]);
            let mut db = vec![T::ZERO; if want_dbias { tq * tk } else { 0 }];
            let mut p = vec![T::ZERO; QUERY_BLOCK.min(tq) * tk];
            let mut dp = vec![T::ZERO; QUERY_BLOCK.min(tq) * tk];
            let mut big_d = vec![T::ZERO; QUERY_BLOCK.min(tq)]; // rowsum(dO ⊙ O) of a block's queries
            for i0 in (0..tq).step_by(QUERY_BLOCK) {
                let n = QUERY_BLOCK.min(tq - i0);
                let end = visible_end(s, i0 + n - 1);
                if end == 0 {
                    continue;
                }
                pair.scores(&mut p, inp, i0, n, end);
                let o_at = (pair.b * tq + i0) * c + pair.h * d;
                let dom = rows(&dout[o_at..], n, d, c);
                let km = rows(&inp.k[pair.kv_at(0)..], end, d, s.kv_stride);
                let vm = rows(&inp.v[pair.kv_at(0)..], end, d, s.kv_stride);
                let qm = rows(&inp.q[pair.q_at(i0)..], n, d, s.q_stride);
                gemm(MatMut::from_row_major_slice_mut(&mut dp[..n * end], n, end), false, dom, vm.transpose(), T::ONE);
                for (r, x) in big_d[..n].iter_mut().enumerate() {
                    *x = dot(&dout[o_at + r * c..][..d], &out[o_at + r * c..][..d]);
                }
                probs_and_score_grads(&mut p[..n * end], &mut dp[..n * end], end, &lse[bh * tq + i0..][..n], &big_d[..n]);
                if want_dbias {
                    for (r, dprow) in dp[..n * end].chunks_exact(end).enumerate() {
                        db[(i0 + r) * tk..][..end].copy_from_slice(dprow);
                    }
                }
                let (pm, dsm) = (MatRef::from_row_major_slice(&p[..n * end], n, end), MatRef::from_row_major_slice(&dp[..n * end], n, end));
                gemm(MatMut::from_row_major_slice_mut(&mut dq[i0 * d..(i0 + n) * d], n, d), true, dsm, km, scale);
                gemm(MatMut::from_row_major_slice_mut(&mut dk[..end * d], end, d), true, dsm.transpose(), qm, scale);
                gemm(MatMut::from_row_major_slice_mut(&mut dv[..end * d], end, d), true, pm.transpose(), dom, T::ONE);
            }
            [dq, dk, dv, db]
        })
        .collect();
    // dQ, dK, dV written out: (buffer, offset of head h's first row) per part.
    let mut grads = grads;
    for (bh, parts) in per_head.iter().enumerate() {
        let (b, h) = (bh / nh, bh % nh);
        for (part, grad) in parts[..3].iter().enumerate() {
            let (len, stride, row0) = if part == 0 { (tq, s.q_stride, b * tq) } else { (tk, s.kv_stride, b * s.kv_cap) };
            let (dst, base) = match &mut grads {
                Grads::Fused(buf) => (&mut **buf, part * c),
                Grads::Split { dq, .. } if part == 0 => (&mut **dq, 0),
                Grads::Split { dkv, .. } => (&mut **dkv, (part - 1) * c),
            };
            for i in 0..len {
                let row = &mut dst[(row0 + i) * stride + base + h * d..][..d];
                row.copy_from_slice(&grad[i * d..(i + 1) * d]);
            }
        }
    }
    if let Some(dbias) = dbias {
        for (bh, parts) in per_head.iter().enumerate() {
            let h = bh % nh;
            dbias[h * tq * tk..(h + 1) * tq * tk].iter_mut().zip(&parts[3]).for_each(|(a, &g)| *a += g);
        }
    }
}
