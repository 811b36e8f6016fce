//! BART for sequence classification (`BartForSequenceClassification`, as
//! `facebook/bart-large-mnli` uses it for NLI), following transformers'
//! models/bart/modeling_bart.py, forward only: token embeddings (× √D when
//! `scale_embedding`) plus learned positions offset by 2, `layernorm_embedding`;
//! post-LN encoder layers (self-attention over the padded input, FFN); the
//! decoder on the input shifted right behind `decoder_start_token_id`
//! (causal self-attention, cross-attention to the encoder, FFN, each
//! followed by residual + LayerNorm); then the decoder state at each row's
//! last EOS → dense → tanh → out_proj: the class logits.

mod config;
pub mod nli;
mod weights;

pub use config::BartConfig;
pub use weights::{declare, Weights};

use crate::backend::{Act, AttnInputs, AttnShape, Backend};
use crate::nn::Linear;
use crate::{invalid, Result};
use weights::{Attention, Layer};

crate::flat_model!(Bart, BartConfig, declare, Weights, "BART");

/// Buffers of one forward over `b` sequences of `t` tokens (R = b·t rows).
pub struct BartActs<B: Backend> {
    pub b: usize,
    pub t: usize,
    ids: B::Ids,
    positions: B::Ids,
    mask: B::Buf,      // [R] f32: 1 token, 0 padding (encoder keys)
    tok: B::Buf,       // [R, D]
    pos: B::Buf,       // [R, D]
    sum: B::Buf,       // [R, D] the embeddings' sum, or the spare buffer a residual's norm goes into
    mean: B::Buf,      // [R] f32
    rstd: B::Buf,      // [R] f32
    enc: B::Buf,       // [R, D] encoder states
    dec: B::Buf,       // [R, D] decoder states
    qkv: B::Buf,       // [R, 3D]
    q: B::Buf,         // [R, D] cross-attention queries
    kv: B::Buf,        // [R, 2D] cross-attention keys and values
    att: B::Buf,       // [R, D]
    lse: B::Buf,       // [R·H] f32
    proj: B::Buf,      // [R, D]
    ffn: B::Buf,       // [R, F]
    ffn_act: B::Buf,   // [R, F]
    eos: B::Buf,       // [b, D] each row's last-EOS decoder state
    dense: B::Buf,     // [b, D]
    dense_act: B::Buf, // [b, D]
    logits: B::Buf,    // [b, labels]
}

impl<B: Backend> BartActs<B> {
    pub fn new(be: &B, cfg: &BartConfig, b: usize, t: usize) -> Result<Self> {
        let (r, d) = (b * t, cfg.d_model);
        let (f, h) = (cfg.encoder_ffn_dim.max(cfg.decoder_ffn_dim), cfg.encoder_attention_heads.max(cfg.decoder_attention_heads));
        let (z, z32) = (|k: usize| be.zeros(k), |k: usize| be.zeros_f32(k));
        Ok(BartActs {
            b,
            t,
            ids: be.upload_ids(&vec![0; r])?,
            positions: be.upload_ids(&(0..r).map(|k| (k % t.max(1) + 2) as i32).collect::<Vec<_>>())?,
            mask: z32(r)?,
            tok: z(r * d)?,
            pos: z(r * d)?,
            sum: z(r * d)?,
            mean: z32(r)?,
            rstd: z32(r)?,
            enc: z(r * d)?,
            dec: z(r * d)?,
            qkv: z(r * 3 * d)?,
            q: z(r * d)?,
            kv: z(r * 2 * d)?,
            att: z(r * d)?,
            lse: z32(r * h)?,
            proj: z(r * d)?,
            ffn: z(r * f)?,
            ffn_act: z(r * f)?,
            eos: z(b * d)?,
            dense: z(b * d)?,
            dense_act: z(b * d)?,
            logits: z(b * cfg.labels.len())?,
        })
    }
}

impl<B: Backend> Bart<B> {
    /// Class logits [b, labels] of `ids` [b, t] (right-padded, `mask` 1 on tokens).
    pub fn classify(&self, be: &B, a: &mut BartActs<B>, ids: &[i32], mask: &[f32]) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (b, t, d) = (a.b, a.t, cfg.d_model);
        let r = b * t;
        if ids.len() != r || mask.len() != r || t > cfg.max_position_embeddings {
            return invalid!("BART input of {} ids for {b} sequences of {t} tokens (at most {})", ids.len(), cfg.max_position_embeddings);
        }
        if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= cfg.vocab_size) {
            return invalid!("token id {bad} is outside the vocabulary (size {})", cfg.vocab_size);
        }
        // Each row's last EOS: where the head reads the decoder.
        let eos = cfg.eos_token_id as i32;
        let last_eos = ids.chunks(t).enumerate().map(|(row, r)| r.iter().rposition(|&x| x == eos).ok_or(row)).collect::<std::result::Result<Vec<_>, _>>();
        let Ok(last_eos) = last_eos else { return invalid!("a BART classification input without an EOS token (id {eos})") };
        let w = self.weights();
        be.write(B::view_mut(&mut a.mask), mask)?;
        // Encoder.
        be.write_ids(&mut a.ids, ids)?;
        self.embed(be, a, w.encoder.positions, w.encoder.emb_ln_w, w.encoder.emb_ln_b, true)?;
        let enc_shape = AttnShape { causal: false, ..AttnShape::fused_self(b, t, cfg.encoder_attention_heads, d / cfg.encoder_attention_heads, 0.0) };
        for l in &w.encoder.layers {
            self.layer(be, a, l, &enc_shape, cfg.encoder_attention_heads, true);
        }
        // Decoder on the input shifted right.
        let shifted: Vec<i32> = ids.chunks(t).flat_map(|row| std::iter::once(cfg.decoder_start_token_id as i32).chain(row[..t - 1].iter().copied())).collect();
        be.write_ids(&mut a.ids, &shifted)?;
        self.embed(be, a, w.decoder.positions, w.decoder.emb_ln_w, w.decoder.emb_ln_b, false)?;
        let dec_shape = AttnShape::fused_self(b, t, cfg.decoder_attention_heads, d / cfg.decoder_attention_heads, 0.0);
        for l in &w.decoder.layers {
            self.layer(be, a, l, &dec_shape, cfg.decoder_attention_heads, false);
        }
        // Head.
        for (row, &j) in last_eos.iter().enumerate() {
            be.copy_rows(B::slice_mut(B::view_mut(&mut a.eos), row * d, d), d, B::slice(B::view(&a.dec), (row * t + j) * d, d), d, 1, d);
        }
        Linear::nn_linear(d, d).forward(be, B::view_mut(&mut a.dense), B::view(&a.eos), w.head_dense_w, Some(w.head_dense_b), b);
        be.activation_forward(Act::Tanh, B::view_mut(&mut a.dense_act), B::view(&a.dense));
        Linear::nn_linear(d, cfg.labels.len()).forward(be, B::view_mut(&mut a.logits), B::view(&a.dense_act), w.head_out_w, Some(w.head_out_b), b);
        be.download(B::view(&a.logits))
    }

    /// Token embeddings (scaled by √D where configured) + positions, then
    /// `layernorm_embedding`, into the encoder's or the decoder's states.
    fn embed(&self, be: &B, a: &mut BartActs<B>, positions: B::View<'_>, ln_w: B::View<'_>, ln_b: B::View<'_>, encoder: bool) -> Result<()> {
        let (d, r) = (self.cfg.d_model, a.b * a.t);
        let w = self.weights();
        be.embedding_forward(B::view_mut(&mut a.tok), &a.ids, w.shared, None, d);
        if self.cfg.scale_embedding {
            be.scale(B::view_mut(&mut a.tok), (d as f32).sqrt());
        }
        be.embedding_forward(B::view_mut(&mut a.pos), &a.positions, positions, None, d);
        let out = if encoder { &mut a.enc } else { &mut a.dec };
        let (sum, out) = (B::view_mut(&mut a.sum), B::view_mut(out));
        be.add_layernorm_forward(sum, out, B::view_mut(&mut a.mean), B::view_mut(&mut a.rstd), Some(B::view(&a.tok)), B::view(&a.pos), ln_w, ln_b, r, d, 1e-5);
        Ok(())
    }

    /// One post-LN layer on the encoder's (`encoder`) or the decoder's states, in place.
    fn layer(&self, be: &B, a: &mut BartActs<B>, l: &Layer<B::View<'_>>, shape: &AttnShape, heads: usize, encoder: bool) {
        let d = self.cfg.d_model;
        let r = a.b * a.t;
        let scale = ((d / heads) as f32).powf(-0.5);
        let self_shape = AttnShape { scale, ..*shape };
        // Self-attention: the encoder hides padded keys; the decoder is causal (transformers passes it no padding mask).
        {
            let BartActs { enc, dec, qkv, att, lse, mask, .. } = a;
            let h = if encoder { &*enc } else { &*dec };
            Linear::nn_linear(d, 3 * d).forward(be, B::view_mut(qkv), B::view(h), l.self_attn.qkv_w, Some(l.self_attn.qkv_b), r);
            let inp = AttnInputs::fused(B::view(qkv), d, r * 3 * d).mask(encoder.then(|| B::view(mask)));
            be.attention_forward(B::view_mut(att), B::view_mut(lse), &inp, &self_shape);
        }
        self.residual_norm(be, a, &l.self_attn, encoder);
        if let Some((cross, (kv_w, kv_b))) = &l.cross_attn {
            let (kv_w, kv_b) = (*kv_w, *kv_b);
            let BartActs { enc, dec, q, kv, att, lse, mask, .. } = a;
            Linear::nn_linear(d, d).forward(be, B::view_mut(q), B::view(dec), cross.qkv_w, Some(cross.qkv_b), r);
            Linear::nn_linear(d, 2 * d).forward(be, B::view_mut(kv), B::view(enc), kv_w, Some(kv_b), r);
            let cross_shape = AttnShape { q_stride: d, kv_stride: 2 * d, causal: false, ..self_shape };
            let inp = AttnInputs::with_kv(B::view(q), B::view(kv), d, r * 2 * d).mask(Some(B::view(mask)));
            be.attention_forward(B::view_mut(att), B::view_mut(lse), &inp, &cross_shape);
            self.residual_norm(be, a, cross, false);
        }
        // FFN: h = LN(h + fc2(act(fc1(h)))).
        let f = if encoder { self.cfg.encoder_ffn_dim } else { self.cfg.decoder_ffn_dim };
        let BartActs { enc, dec, ffn, ffn_act, proj, sum, mean, rstd, .. } = a;
        let h = if encoder { enc } else { dec };
        Linear::nn_linear(d, f).forward(be, B::view_mut(ffn), B::view(h), l.fc1_w, Some(l.fc1_b), r);
        be.activation_forward(self.cfg.act(), B::slice_mut(B::view_mut(ffn_act), 0, r * f), B::slice(B::view(ffn), 0, r * f));
        Linear::nn_linear(f, d).forward(be, B::view_mut(proj), B::view(ffn_act), l.fc2_w, Some(l.fc2_b), r);
        residual_layernorm(be, h, proj, sum, mean, rstd, l.ln_w, l.ln_b, r, d);
    }

    /// h = LayerNorm(h + out_proj(attention output in `a.att`)).
    fn residual_norm(&self, be: &B, a: &mut BartActs<B>, attn: &Attention<B::View<'_>>, encoder: bool) {
        let (d, r) = (self.cfg.d_model, a.b * a.t);
        let BartActs { enc, dec, att, proj, sum, mean, rstd, .. } = a;
        let h = if encoder { enc } else { dec };
        Linear::nn_linear(d, d).forward(be, B::view_mut(proj), B::view(att), attn.out_w, Some(attn.out_b), r);
        residual_layernorm(be, h, proj, sum, mean, rstd, attn.ln_w, attn.ln_b, r, d);
    }
}

/// Post-LN's `h = LayerNorm(h + proj)` in one pass: the sum goes into `proj`
/// (in place), its norm into the spare `sum` buffer, which then becomes `h`
/// (the norm cannot be written over `h` while `h` is read).
#[allow(clippy::too_many_arguments)]
fn residual_layernorm<B: Backend>(
    be: &B,
    h: &mut B::Buf,
    proj: &mut B::Buf,
    sum: &mut B::Buf,
    mean: &mut B::Buf,
    rstd: &mut B::Buf,
    w: B::View<'_>,
    b: B::View<'_>,
    r: usize,
    d: usize,
) {
    be.add_layernorm_forward(B::view_mut(proj), B::view_mut(sum), B::view_mut(mean), B::view_mut(rstd), None, B::view(h), w, b, r, d, 1e-5);
    std::mem::swap(h, sum);
}
