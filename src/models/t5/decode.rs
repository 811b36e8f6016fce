//! The T5 decoder with a KV cache, for generation: the encoder runs once;
//! each decoder layer's cross-attention keys and values are computed once
//! from its output and repeated for every beam of a batch item; self-
//! attention keys and values grow by one row per step. The position bias of
//! step p is row p of the causal bias grid, computed once.

use super::buckets;
use super::T5;
use crate::backend::{AttnInputs, AttnShape, Backend};
use crate::models::CacheGather;
use crate::nn::Linear;
use crate::{invalid, Result};

/// Decoder state for `rows` = batch · beams sequences of up to `cap` tokens.
pub struct T5Cache<B: Backend> {
    pub rows: usize,
    pub beams: usize,
    pub src: usize,
    pub cap: usize,
    /// Decoder positions filled so far.
    pub len: usize,
    /// Floats per cached position: keys and values, 2 · inner.
    kv_width: usize,
    enc_mask: Option<B::Buf>, // [rows, src] f32
    cross_kv: Vec<B::Buf>,    // per layer [rows·src, 2I]
    self_kv: Vec<B::Buf>,     // per layer [rows·cap, 2I]
    gather: CacheGather<B>,   // for reordering: [rows·cap, 2I]
    bias_grid: B::Buf,        // [H, cap, cap] f32, causal position bias
    step_bias: B::Buf,        // [H, cap] f32, the current step's rows
    ids: B::Ids,              // [rows]
    s: Scratch<B>,
}

struct Scratch<B: Backend> {
    x: B::Buf,      // [rows, D]
    ln: B::Buf,     // [rows, D]
    rstd: B::Buf,   // [rows]
    qkv: B::Buf,    // [rows, 3I]
    q: B::Buf,      // [rows, I]
    att: B::Buf,    // [rows, I]
    lse: B::Buf,    // [rows, H]
    proj: B::Buf,   // [rows, D]
    h: B::Buf,      // [rows, F]
    a: B::Buf,      // [rows, F]
    g: B::Buf,      // [rows, F] (gated)
    logits: B::Buf, // [rows, V]
}

impl<B: Backend> T5Cache<B> {
    /// Encodes `inputs` ([batch, src] ids, `mask` [batch, src] 1 keep / 0 pad)
    /// and prepares `beams` decoder rows per batch item for `cap` positions.
    pub fn new(be: &B, model: &T5<B>, inputs: &[i32], mask: Option<&[f32]>, batch: usize, beams: usize, cap: usize) -> Result<Self> {
        let cfg = &model.cfg;
        let src = inputs.len() / batch.max(1);
        if batch == 0 || src == 0 || inputs.len() != batch * src {
            return invalid!("T5 generation needs a non-empty [batch, src] input, got {} ids for {batch} rows", inputs.len());
        }
        let (d, i, f, h, v) = (cfg.d_model, cfg.inner(), cfg.d_ff, cfg.num_heads, cfg.vocab_size);
        let rows = batch * beams;
        let mask_b = mask.map(|m| be.upload_f32(m)).transpose()?;
        let enc = model.encode(be, inputs, mask_b.as_ref(), batch, src)?;
        let w = model.weights();
        // Cross-attention keys and values: computed per batch item, repeated per beam.
        let mut kv_once = be.zeros(batch * src * 2 * i)?;
        let mut cross_kv = Vec::with_capacity(w.decoder.blocks.len());
        for bw in &w.decoder.blocks {
            let cw = bw.cross.as_ref().expect("decoder blocks have cross-attention");
            Linear::nn_linear(d, 2 * i).forward(be, B::view_mut(&mut kv_once), B::view(&enc), cw.kv, None, batch * src);
            let mut kv = be.zeros(rows * src * 2 * i)?;
            repeat_per_beam(be, &mut kv, &kv_once, batch, beams, src * 2 * i);
            cross_kv.push(kv);
        }
        let enc_mask = match &mask_b {
            Some(m) => {
                let mut rep = be.zeros_f32(rows * src)?;
                repeat_per_beam(be, &mut rep, m, batch, beams, src);
                Some(rep)
            }
            None => None,
        };
        let grid = buckets::grid(0, cap, cap, false, cfg.num_buckets, cfg.max_distance);
        let mut bias_grid = be.zeros_f32(h * cap * cap)?;
        be.position_bias_forward(B::view_mut(&mut bias_grid), w.decoder.rel_bias, &be.upload_ids(&grid)?, h);
        let s = Scratch {
            x: be.zeros(rows * d)?,
            ln: be.zeros(rows * d)?,
            rstd: be.zeros_f32(rows)?,
            qkv: be.zeros(rows * 3 * i)?,
            q: be.zeros(rows * i)?,
            att: be.zeros(rows * i)?,
            lse: be.zeros_f32(rows * h)?,
            proj: be.zeros(rows * d)?,
            h: be.zeros(rows * f)?,
            a: be.zeros(rows * f)?,
            g: be.zeros(if cfg.gated { rows * f } else { 0 })?,
            logits: be.zeros(rows * v)?,
        };
        Ok(T5Cache {
            rows,
            beams,
            src,
            cap,
            len: 0,
            kv_width: 2 * i,
            enc_mask,
            cross_kv,
            self_kv: (0..cfg.num_decoder_layers).map(|_| be.zeros(rows * cap * 2 * i)).collect::<Result<_>>()?,
            gather: CacheGather::new(be, rows, cap * 2 * i)?,
            bias_grid,
            step_bias: be.zeros_f32(h * cap)?,
            ids: be.upload_ids(&vec![0; rows])?,
            s,
        })
    }

    /// The logits of the last step, [rows, vocab].
    pub fn logits(&self) -> B::View<'_> {
        B::view(&self.s.logits)
    }

    /// Row r continues from row `parents[r]` (beam reselection).
    pub fn reorder(&mut self, be: &B, parents: &[usize]) -> Result<()> {
        if parents.len() != self.rows {
            return invalid!("reorder: {} parents for {} rows", parents.len(), self.rows);
        }
        self.gather.reorder(be, self.self_kv.iter_mut(), parents, self.cap * self.kv_width, self.len * self.kv_width)?;
        Ok(())
    }
}

/// `dst[b·beams + k] = src[b]` for blocks of `width` floats.
fn repeat_per_beam<B: Backend>(be: &B, dst: &mut B::Buf, src: &B::Buf, batch: usize, beams: usize, width: usize) {
    for b in 0..batch {
        let rows = B::slice_mut(B::view_mut(dst), b * beams * width, beams * width);
        be.copy_rows(rows, width, B::slice(B::view(src), b * width, width), 0, beams, width);
    }
}

impl<B: Backend> T5<B> {
    /// Appends one token per row and leaves the next-token logits in the
    /// cache ([`T5Cache::logits`]).
    pub fn decode_step(&self, be: &B, cache: &mut T5Cache<B>, tokens: &[i32]) -> Result<()> {
        let cfg = &self.cfg;
        let (rows, d, i, f, h, v) = (cache.rows, cfg.d_model, cfg.inner(), cfg.d_ff, cfg.num_heads, cfg.vocab_size);
        if tokens.len() != rows || cache.len >= cache.cap {
            return invalid!("decode_step: {} tokens for {rows} rows at position {} of {}", tokens.len(), cache.len, cache.cap);
        }
        if let Some(&bad) = tokens.iter().find(|&&x| x < 0 || x as usize >= v) {
            return invalid!("token id {bad} is outside the vocabulary (size {v})");
        }
        be.write_ids(&mut cache.ids, tokens)?;
        let (p, cap, src, eps) = (cache.len, cache.cap, cache.src, cfg.eps);
        let kv_len = p + 1;
        // This step's bias rows: [H, 1, p+1] from row p of each head's grid.
        be.copy_rows(
            B::slice_mut(B::view_mut(&mut cache.step_bias), 0, h * kv_len),
            kv_len,
            B::slice(B::view(&cache.bias_grid), p * cap, h * cap * cap - p * cap),
            cap * cap,
            h,
            kv_len,
        );
        let w = self.weights();
        let s = &mut cache.s;
        be.embedding_forward(B::view_mut(&mut s.x), &cache.ids, w.shared, None, d);
        let self_shape =
            AttnShape { batch: rows, heads: h, head_dim: cfg.d_kv, q_len: 1, kv_len, kv_cap: cap, q_stride: 3 * i, kv_stride: 2 * i, causal: true, window: 0, scale: 1.0 };
        let cross_shape =
            AttnShape { batch: rows, heads: h, head_dim: cfg.d_kv, q_len: 1, kv_len: src, kv_cap: src, q_stride: i, kv_stride: 2 * i, causal: false, window: 0, scale: 1.0 };
        // Each residual add is fused with the norm after it (past the
        // feed-forward, the next block's first or the final one); s.ln holds
        // the attention's norm of x as a block starts.
        let blocks = &w.decoder.blocks;
        be.rmsnorm_forward(B::view_mut(&mut s.ln), B::view_mut(&mut s.rstd), B::view(&s.x), blocks[0].attn.ln, rows, d, eps);
        for (l, bw) in blocks.iter().enumerate() {
            Linear::nn_linear(d, 3 * i).forward(be, B::view_mut(&mut s.qkv), B::view(&s.ln), bw.attn.qkv, None, rows);
            let kv = &mut cache.self_kv[l];
            be.copy_rows(B::slice_mut(B::view_mut(kv), p * 2 * i, rows * cap * 2 * i - p * 2 * i), cap * 2 * i, B::slice(B::view(&s.qkv), i, rows * 3 * i - i), 3 * i, rows, 2 * i);
            let inp = AttnInputs::with_kv(B::view(&s.qkv), B::view(kv), i, rows * cap * 2 * i).bias(Some(B::slice(B::view(&cache.step_bias), 0, h * kv_len)));
            be.attention_forward(B::view_mut(&mut s.att), B::view_mut(&mut s.lse), &inp, &self_shape);
            Linear::nn_linear(i, d).forward(be, B::view_mut(&mut s.proj), B::view(&s.att), bw.attn.o, None, rows);
            let cw = bw.cross.as_ref().expect("decoder blocks have cross-attention");
            be.add_rmsnorm_forward(B::view_mut(&mut s.x), B::view_mut(&mut s.ln), B::view_mut(&mut s.rstd), None, B::view(&s.proj), cw.ln, rows, d, eps);
            Linear::nn_linear(d, i).forward(be, B::view_mut(&mut s.q), B::view(&s.ln), cw.q, None, rows);
            let inp = AttnInputs::with_kv(B::view(&s.q), B::view(&cache.cross_kv[l]), i, rows * src * 2 * i).mask(cache.enc_mask.as_ref().map(|m| B::view(m)));
            be.attention_forward(B::view_mut(&mut s.att), B::view_mut(&mut s.lse), &inp, &cross_shape);
            Linear::nn_linear(i, d).forward(be, B::view_mut(&mut s.proj), B::view(&s.att), cw.o, None, rows);
            be.add_rmsnorm_forward(B::view_mut(&mut s.x), B::view_mut(&mut s.ln), B::view_mut(&mut s.rstd), None, B::view(&s.proj), bw.ff.ln, rows, d, eps);
            Linear::nn_linear(d, f).forward_act(be, cfg.act, B::view_mut(&mut s.a), B::view_mut(&mut s.h), B::view(&s.ln), bw.ff.wi, None, rows);
            if let Some(wi_1) = bw.ff.wi_1 {
                Linear::nn_linear(d, f).forward(be, B::view_mut(&mut s.g), B::view(&s.ln), wi_1, None, rows);
                be.mul(B::view_mut(&mut s.h), B::view(&s.a), B::view(&s.g));
                std::mem::swap(&mut s.h, &mut s.a);
            }
            Linear::nn_linear(f, d).forward(be, B::view_mut(&mut s.proj), B::view(&s.a), bw.ff.wo, None, rows);
            let next_ln = blocks.get(l + 1).map_or(w.decoder.final_ln, |next| next.attn.ln);
            be.add_rmsnorm_forward(B::view_mut(&mut s.x), B::view_mut(&mut s.ln), B::view_mut(&mut s.rstd), None, B::view(&s.proj), next_ln, rows, d, eps);
        }
        if cfg.scale_decoder_outputs {
            be.scale(B::view_mut(&mut s.ln), (d as f32).powf(-0.5));
        }
        Linear::nn_linear(d, v).forward(be, B::view_mut(&mut s.logits), B::view(&s.ln), *w.head(), None, rows);
        cache.len += 1;
        Ok(())
    }
}
