//! The GPT-2 inference graph with a KV cache: a prefill of the prompts, then
//! one token per step. Prompts of different lengths are left-padded; padded
//! keys are masked and positions count real tokens only, so each row decodes
//! as if it were alone.

use super::{Gpt2, Gpt2Config, Weights};
use crate::backend::{AttnInputs, AttnShape, Backend};
use crate::models::CacheGather;
use crate::nn::Linear;
use crate::{invalid, Result};

/// Keys and values of every layer for `batch` sequences of up to `cap` tokens.
pub struct KvCache<B: Backend> {
    pub batch: usize,
    pub cap: usize,
    /// Positions filled so far (the same for every row; padding is masked).
    pub len: usize,
    /// Width of a key or value row (n_embd).
    c: usize,
    k: Vec<B::Buf>, // per layer [batch, cap, C]
    v: Vec<B::Buf>, // per layer [batch, cap, C]
    /// Host copy of the key mask [batch, cap]: 1 for real tokens.
    mask_host: Vec<f32>,
    mask: B::Buf,
    /// Token ids and positions per step length (the prefill's, then 1),
    /// allocated at first use and rewritten every step.
    inputs: Vec<(usize, B::Ids, B::Ids)>,
    scratch: Scratch<B>,
}

/// Per-step buffers sized for `batch · max_q` query rows.
struct Scratch<B: Backend> {
    max_q: usize,
    x: B::Buf,              // [rows, C] residual stream
    ln: B::Buf,             // [rows, C]
    mean: B::Buf,           // [rows]
    rstd: B::Buf,           // [rows]
    qkv: B::Buf,            // [rows, 3C]
    att: B::Buf,            // [rows, C]
    lse: B::Buf,            // [batch, NH, max_q]
    proj: B::Buf,           // [rows, C]
    fch: B::Buf,            // [rows, I]
    gelu: B::Buf,           // [rows, I]
    last: B::Buf,           // [batch, C]
    logits: B::Buf,         // [batch, V]
    gather: CacheGather<B>, // for `reorder`: [batch, cap, C]
}

impl<B: Backend> KvCache<B> {
    pub fn new(be: &B, model: &Gpt2<B>, batch: usize, cap: usize, max_q: usize) -> Result<Self> {
        Self::for_config(be, &model.cfg, batch, cap, max_q)
    }

    /// A cache for a GPT-2 of `cfg` inside another model (ClipCap).
    pub(crate) fn for_config(be: &B, cfg: &Gpt2Config, batch: usize, cap: usize, max_q: usize) -> Result<Self> {
        if cap > cfg.n_positions {
            return invalid!("prompt plus new tokens ({cap}) exceed the model's n_positions ({})", cfg.n_positions);
        }
        let (c, rows) = (cfg.n_embd, batch * max_q);
        let layer = || be.zeros(batch * cap * c);
        let scratch = Scratch {
            max_q,
            x: be.zeros(rows * c)?,
            ln: be.zeros(rows * c)?,
            mean: be.zeros_f32(rows)?,
            rstd: be.zeros_f32(rows)?,
            qkv: be.zeros(rows * 3 * c)?,
            att: be.zeros(rows * c)?,
            lse: be.zeros_f32(rows * cfg.n_head)?,
            proj: be.zeros(rows * c)?,
            fch: be.zeros(rows * cfg.inner())?,
            gelu: be.zeros(rows * cfg.inner())?,
            last: be.zeros(batch * c)?,
            logits: be.zeros(batch * cfg.vocab_size)?,
            gather: CacheGather::new(be, batch, cap * c)?,
        };
        Ok(KvCache {
            batch,
            cap,
            len: 0,
            c: cfg.n_embd,
            k: (0..cfg.n_layer).map(|_| layer()).collect::<Result<_>>()?,
            v: (0..cfg.n_layer).map(|_| layer()).collect::<Result<_>>()?,
            mask_host: vec![0.0; batch * cap],
            mask: be.zeros_f32(batch * cap)?,
            inputs: Vec::new(),
            scratch,
        })
    }
}

impl<B: Backend> Gpt2<B> {
    /// Appends `tq` tokens per row (`ids`, `pos`, `keep` all [batch, tq];
    /// `keep` is 0 for left padding) and returns the logits of each row's last
    /// appended position, [batch, vocab].
    pub fn decode(&self, be: &B, cache: &mut KvCache<B>, ids: &[i32], pos: &[i32], keep: &[f32]) -> Result<Vec<f32>> {
        self.decode_into(be, cache, ids, pos, keep)?;
        be.download(cache.logits())
    }

    /// As [`Gpt2::decode`], leaving the logits on the device ([`KvCache::logits`]).
    pub fn decode_into(&self, be: &B, cache: &mut KvCache<B>, ids: &[i32], pos: &[i32], keep: &[f32]) -> Result<()> {
        decode_tokens(be, &self.cfg, &self.weights(), cache, ids, pos, keep)
    }
}

/// Appends `tq` tokens per row (`ids`, `pos`, `keep` all [batch, tq]) to the
/// cache of a GPT-2 of `cfg` with weights `w` (also inside another model,
/// ClipCap), leaving the next-token logits in [`KvCache::logits`]. The id and
/// position buffers of each step length are kept in the cache and rewritten.
pub(crate) fn decode_tokens<B: Backend>(be: &B, cfg: &Gpt2Config, w: &Weights<B::View<'_>>, cache: &mut KvCache<B>, ids: &[i32], pos: &[i32], keep: &[f32]) -> Result<()> {
    let (nb, c, v) = (cache.batch, cfg.n_embd, cfg.vocab_size);
    let tq = ids.len() / nb.max(1);
    if tq == 0 || tq > cache.scratch.max_q || ids.len() != nb * tq || cache.len + tq > cache.cap {
        return invalid!("decode: {} tokens do not fit the cache ({} rows, {} of {} filled)", ids.len(), nb, cache.len, cache.cap);
    }
    if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= v) {
        return invalid!("token id {bad} is outside the vocabulary (size {v})");
    }
    let rows = nb * tq;
    cache.set_keep(be, keep, tq)?;
    let at = match cache.inputs.iter().position(|(n, _, _)| *n == ids.len()) {
        Some(at) => at,
        None => {
            cache.inputs.push((ids.len(), be.upload_ids(ids)?, be.upload_ids(pos)?));
            cache.inputs.len() - 1
        }
    };
    let (_, ids_d, pos_d) = &mut cache.inputs[at];
    be.write_ids(ids_d, ids)?;
    be.write_ids(pos_d, pos)?;
    let (ids_d, pos_d) = (&*ids_d, &*pos_d);
    be.embedding_forward(B::slice_mut(B::view_mut(&mut cache.scratch.x), 0, rows * c), ids_d, w.wte, Some((pos_d, w.wpe)), c);
    decode_embedded(be, cfg, w, cache, tq);
    Ok(())
}

/// Runs the blocks on `tq` new rows per sequence whose input embeddings are
/// in [`KvCache::input_rows`] (positions included, key mask already
/// written), appends their keys and values, and leaves each sequence's
/// next-token logits in [`KvCache::logits`].
pub(crate) fn decode_embedded<B: Backend>(be: &B, cfg: &Gpt2Config, w: &Weights<B::View<'_>>, cache: &mut KvCache<B>, tq: usize) {
    let (nb, c, i, v) = (cache.batch, cfg.n_embd, cfg.inner(), cfg.vocab_size);
    let rows = nb * tq;
    {
        let s = &mut cache.scratch;
        let eps = cfg.layer_norm_epsilon;
        let kv_len = cache.len + tq;
        // Each residual add is fused with the LayerNorm after it (the next
        // block's first, past the MLP); s.ln holds ln_1(x) as a block starts.
        let first = &w.blocks[0];
        be.layernorm_forward(B::view_mut(&mut s.ln), B::view_mut(&mut s.mean), B::view_mut(&mut s.rstd), sl::<B>(&s.x, rows * c), first.ln_1_w, first.ln_1_b, rows, c, eps);
        for (l, bw) in w.blocks.iter().enumerate() {
            cfg.linear(c, 3 * c).forward(be, B::view_mut(&mut s.qkv), sl::<B>(&s.ln, rows * c), bw.c_attn_w, bw.c_attn_b, rows);
            let qkv = B::view(&s.qkv);
            append_rows(be, &mut cache.k[l], qkv, 1, cache.len, cache.cap, nb, tq, c);
            append_rows(be, &mut cache.v[l], qkv, 2, cache.len, cache.cap, nb, tq, c);
            let shape = AttnShape {
                batch: nb,
                heads: cfg.n_head,
                head_dim: cfg.head_dim(),
                q_len: tq,
                kv_len,
                kv_cap: cache.cap,
                q_stride: 3 * c,
                kv_stride: c,
                causal: true,
                window: cfg.attn_window(l),
                scale: cfg.attn_scale(l),
            };
            let inp = AttnInputs { q: qkv, k: B::view(&cache.k[l]), v: B::view(&cache.v[l]), key_mask: Some(B::view(&cache.mask)), bias: None };
            be.attention_forward(B::view_mut(&mut s.att), B::view_mut(&mut s.lse), &inp, &shape);
            cfg.linear(c, c).forward(be, B::view_mut(&mut s.proj), sl::<B>(&s.att, rows * c), bw.attn_proj_w, Some(bw.attn_proj_b), rows);
            let (x, proj) = (B::slice_mut(B::view_mut(&mut s.x), 0, rows * c), sl::<B>(&s.proj, rows * c));
            be.add_layernorm_forward(x, B::view_mut(&mut s.ln), B::view_mut(&mut s.mean), B::view_mut(&mut s.rstd), None, proj, bw.ln_2_w, bw.ln_2_b, rows, c, eps);
            let (gelu, fch) = (B::slice_mut(B::view_mut(&mut s.gelu), 0, rows * i), B::view_mut(&mut s.fch));
            cfg.linear(c, i).forward_act(be, cfg.act(), gelu, fch, sl::<B>(&s.ln, rows * c), bw.c_fc_w, Some(bw.c_fc_b), rows);
            cfg.linear(i, c).forward(be, B::view_mut(&mut s.proj), sl::<B>(&s.gelu, rows * i), bw.mlp_proj_w, Some(bw.mlp_proj_b), rows);
            let (x, proj) = (B::slice_mut(B::view_mut(&mut s.x), 0, rows * c), sl::<B>(&s.proj, rows * c));
            match w.blocks.get(l + 1) {
                Some(next) => {
                    be.add_layernorm_forward(x, B::view_mut(&mut s.ln), B::view_mut(&mut s.mean), B::view_mut(&mut s.rstd), None, proj, next.ln_1_w, next.ln_1_b, rows, c, eps)
                }
                None => be.add_assign(x, proj),
            }
        }
        cache.len = kv_len;
        // Only each row's last position needs the final norm and the head.
        be.copy_rows(B::view_mut(&mut s.last), c, B::slice(B::view(&s.x), (tq - 1) * c, rows * c - (tq - 1) * c), tq * c, nb, c);
        be.layernorm_forward(B::view_mut(&mut s.ln), B::view_mut(&mut s.mean), B::view_mut(&mut s.rstd), B::view(&s.last), w.ln_f_w, w.ln_f_b, nb, c, eps);
        Linear::nn_linear(c, v).forward(be, B::view_mut(&mut s.logits), sl::<B>(&s.ln, nb * c), *w.head(), None, nb);
    }
}

/// Appends part `part` (1: keys, 2: values) of each sequence's `tq` new rows
/// of the fused `qkv` [nb, tq, 3c] to a cache [nb, cap, c] at position
/// `len`, in as few strided copies as the shape allows: one per position
/// when sequences outnumber positions (a decoding step: a single copy), else
/// one per sequence (a prompt).
#[allow(clippy::too_many_arguments)]
fn append_rows<B: Backend>(be: &B, cache: &mut B::Buf, qkv: B::View<'_>, part: usize, len: usize, cap: usize, nb: usize, tq: usize, c: usize) {
    if tq <= nb {
        for t in 0..tq {
            let (at, span) = ((len + t) * c, (nb - 1) * cap * c + c);
            let from = B::slice(qkv, (t * 3 + part) * c, (nb - 1) * tq * 3 * c + c);
            be.copy_rows(B::slice_mut(B::view_mut(cache), at, span), cap * c, from, tq * 3 * c, nb, c);
        }
    } else {
        for b in 0..nb {
            let from = B::slice(qkv, (b * tq * 3 + part) * c, tq * 3 * c - part * c);
            be.copy_rows(B::slice_mut(B::view_mut(cache), (b * cap + len) * c, tq * c), c, from, 3 * c, tq, c);
        }
    }
}

impl<B: Backend> KvCache<B> {
    /// Where the caller of [`decode_embedded`] writes `rows` input embeddings.
    pub(crate) fn input_rows(&mut self, rows: usize, c: usize) -> B::ViewMut<'_> {
        B::slice_mut(B::view_mut(&mut self.scratch.x), 0, rows * c)
    }

    /// Marks `keep` [batch, tq] (1 real, 0 padding) as the key mask of the
    /// next `tq` positions and writes the mask to the device.
    pub(crate) fn set_keep(&mut self, be: &B, keep: &[f32], tq: usize) -> Result<()> {
        for b in 0..self.batch {
            self.mask_host[b * self.cap + self.len..][..tq].copy_from_slice(&keep[b * tq..(b + 1) * tq]);
        }
        be.write(B::view_mut(&mut self.mask), &self.mask_host)
    }

    /// Row r continues from row `parents[r]` (beam reselection): keys,
    /// values and the key mask are gathered.
    pub fn reorder(&mut self, be: &B, parents: &[usize]) -> Result<()> {
        if parents.len() != self.batch {
            return invalid!("reorder: {} parents for {} rows", parents.len(), self.batch);
        }
        let (k, v, gather) = (&mut self.k, &mut self.v, &mut self.scratch.gather);
        gather.reorder(be, k.iter_mut().chain(v.iter_mut()), parents, self.cap * self.c, self.len * self.c)?;
        let old = self.mask_host.clone();
        for (r, &p) in parents.iter().enumerate() {
            self.mask_host[r * self.cap..(r + 1) * self.cap].copy_from_slice(&old[p * self.cap..(p + 1) * self.cap]);
        }
        Ok(())
    }

    /// The logits of the last decoded position of each row, [batch, vocab].
    pub fn logits(&self) -> B::View<'_> {
        B::view(&self.scratch.logits)
    }
}

/// The first `n` floats of a buffer.
fn sl<B: Backend>(buf: &B::Buf, n: usize) -> B::View<'_> {
    B::slice(B::view(buf), 0, n)
}
