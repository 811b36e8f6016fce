//! BERT (`BertModel`), following transformers' models/bert/modeling_bert.py:
//! word + position + token-type embeddings and a LayerNorm, then post-LN
//! encoder layers
//!
//!   a   = LayerNorm(x + dense(attention(query, key, value of x)))
//!   out = LayerNorm(a + dense(gelu(intermediate(a))))
//!
//! with scores scaled by 1/√d and padded keys hidden. Forward only: what
//! sentence embeddings (sentence.rs) and the metric models built on BERT
//! need. The bare encoder has no pooler (sentence-transformers does not use
//! it; its tensors in a checkpoint are ignored). BLEURT (bleurt-pytorch's
//! modeling_bleurt.py, `BleurtForSequenceClassification`) is the same
//! encoder with narrower embeddings projected to the width, and scores with
//! classifier(tanh(pooler(h[CLS]))): [`Bert::scores`].

pub mod bleurt;
mod config;
pub mod sentence;
mod weights;

pub use config::{BertConfig, Variant};
pub use weights::{declare, Weights};

use crate::backend::{Act, AttnInputs, AttnShape, Backend};
use crate::nn::Linear;
use crate::{invalid, Result};

crate::flat_model!(Bert, BertConfig, declare, Weights, "BERT");

/// Buffers of one forward over `b` sequences of `t` tokens (R = b·t rows).
pub struct BertActs<B: Backend> {
    pub b: usize,
    pub t: usize,
    ids: B::Ids,
    types: B::Ids,
    positions: B::Ids,
    mask: B::Buf,     // [R] f32: 1 token, 0 padding
    emb: B::Buf,      // [R, E] word + position embeddings (+ token types, in place)
    type_emb: B::Buf, // [R, E]
    emb_ln: B::Buf,   // [R, E] its LayerNorm, where a projection follows
    mean: B::Buf,     // [R] f32
    rstd: B::Buf,     // [R] f32
    /// [R, C] each layer's output; after [`Bert::forward`], `last_hidden_state`.
    pub hidden: B::Buf,
    qkv: B::Buf,        // [R, 3C]
    att: B::Buf,        // [R, C]
    lse: B::Buf,        // [R·H] f32
    proj: B::Buf,       // [R, C]
    attn_ln: B::Buf,    // [R, C]
    inter: B::Buf,      // [R, I]
    inter_act: B::Buf,  // [R, I]
    cls: B::Buf,        // [b, C] each sequence's first row
    pooled: B::Buf,     // [b, C]
    pooled_act: B::Buf, // [b, C]
    /// [b, labels] after [`Bert::scores`].
    pub logits: B::Buf,
}

impl<B: Backend> BertActs<B> {
    pub fn new(be: &B, cfg: &BertConfig, b: usize, t: usize) -> Result<Self> {
        let (r, c, i, e) = (b * t, cfg.hidden_size, cfg.intermediate_size, cfg.embedding_width());
        let (z, z32) = (|k: usize| be.zeros(k), |k: usize| be.zeros_f32(k));
        Ok(BertActs {
            b,
            t,
            ids: be.upload_ids(&vec![0; r])?,
            types: be.upload_ids(&vec![0; r])?,
            positions: be.upload_ids(&(0..r).map(|k| (k % t.max(1)) as i32).collect::<Vec<_>>())?,
            mask: z32(r)?,
            emb: z(r * e)?,
            type_emb: z(r * e)?,
            emb_ln: z(if cfg.embedding_size.is_some() { r * e } else { 1 })?, // unused without a projection
            mean: z32(r)?,
            rstd: z32(r)?,
            hidden: z(r * c)?,
            qkv: z(r * 3 * c)?,
            att: z(r * c)?,
            lse: z32(r * cfg.num_attention_heads)?,
            proj: z(r * c)?,
            attn_ln: z(r * c)?,
            inter: z(r * i)?,
            inter_act: z(r * i)?,
            cls: z(b * c)?,
            pooled: z(b * c)?,
            pooled_act: z(b * c)?,
            logits: z(b * cfg.num_labels)?,
        })
    }
}

impl<B: Backend> Bert<B> {
    /// `last_hidden_state` of `ids` [b, t] (token types `types`, padding
    /// `mask`: 1 keeps a token) into `a.hidden`.
    pub fn forward(&self, be: &B, a: &mut BertActs<B>, ids: &[i32], types: &[i32], mask: &[f32]) -> Result<()> {
        let cfg = &self.cfg;
        let (b, t, c) = (a.b, a.t, cfg.hidden_size);
        let r = b * t;
        if ids.len() != r || types.len() != r || mask.len() != r || t > cfg.max_position_embeddings {
            return invalid!("BERT input of {} ids for {b} sequences of {t} tokens (at most {})", ids.len(), cfg.max_position_embeddings);
        }
        if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= cfg.vocab_size) {
            return invalid!("token id {bad} is outside the vocabulary (size {})", cfg.vocab_size);
        }
        if let Some(&bad) = types.iter().find(|&&x| x < 0 || x as usize >= cfg.type_vocab_size) {
            return invalid!("token type {bad} is outside type_vocab_size {}", cfg.type_vocab_size);
        }
        be.write_ids(&mut a.ids, ids)?;
        be.write_ids(&mut a.types, types)?;
        be.write(B::view_mut(&mut a.mask), mask)?;
        let w = self.weights();
        let (eps, e) = (cfg.layer_norm_eps, cfg.embedding_width());
        be.embedding_forward(B::view_mut(&mut a.emb), &a.ids, w.word_embeddings, Some((&a.positions, w.position_embeddings)), e);
        be.embedding_forward(B::view_mut(&mut a.type_emb), &a.types, w.token_type_embeddings, None, e);
        // The sums before each LayerNorm go in place, into emb and proj.
        let (mean, rstd, emb, types) = (B::view_mut(&mut a.mean), B::view_mut(&mut a.rstd), B::view_mut(&mut a.emb), B::view(&a.type_emb));
        match w.projection {
            None => be.add_layernorm_forward(emb, B::view_mut(&mut a.hidden), mean, rstd, None, types, w.emb_ln_w, w.emb_ln_b, r, e, eps),
            Some((pw, pb)) => {
                be.add_layernorm_forward(emb, B::view_mut(&mut a.emb_ln), mean, rstd, None, types, w.emb_ln_w, w.emb_ln_b, r, e, eps);
                Linear::nn_linear(e, c).forward(be, B::view_mut(&mut a.hidden), B::view(&a.emb_ln), pw, Some(pb), r);
            }
        }
        let heads = cfg.num_attention_heads;
        let head_dim = c / heads;
        let shape = AttnShape { causal: false, ..AttnShape::fused_self(b, t, heads, head_dim, (head_dim as f32).powf(-0.5)) };
        let i = cfg.intermediate_size;
        for l in &w.layers {
            Linear::nn_linear(c, 3 * c).forward(be, B::view_mut(&mut a.qkv), B::view(&a.hidden), l.qkv_w, Some(l.qkv_b), r);
            let inp = AttnInputs::fused(B::view(&a.qkv), c, r * 3 * c).mask(Some(B::view(&a.mask)));
            be.attention_forward(B::view_mut(&mut a.att), B::view_mut(&mut a.lse), &inp, &shape);
            Linear::nn_linear(c, c).forward(be, B::view_mut(&mut a.proj), B::view(&a.att), l.attn_out_w, Some(l.attn_out_b), r);
            // Post-LN: attn_ln = LayerNorm(proj + hidden), the add fused in.
            let (mean, rstd) = (B::view_mut(&mut a.mean), B::view_mut(&mut a.rstd));
            be.add_layernorm_forward(B::view_mut(&mut a.proj), B::view_mut(&mut a.attn_ln), mean, rstd, None, B::view(&a.hidden), l.attn_ln_w, l.attn_ln_b, r, c, eps);
            Linear::nn_linear(c, i).forward(be, B::view_mut(&mut a.inter), B::view(&a.attn_ln), l.inter_w, Some(l.inter_b), r);
            be.activation_forward(cfg.act(), B::view_mut(&mut a.inter_act), B::view(&a.inter));
            Linear::nn_linear(i, c).forward(be, B::view_mut(&mut a.proj), B::view(&a.inter_act), l.out_w, Some(l.out_b), r);
            // hidden = LayerNorm(proj + attn_ln).
            let (mean, rstd) = (B::view_mut(&mut a.mean), B::view_mut(&mut a.rstd));
            be.add_layernorm_forward(B::view_mut(&mut a.proj), B::view_mut(&mut a.hidden), mean, rstd, None, B::view(&a.attn_ln), l.out_ln_w, l.out_ln_b, r, c, eps);
        }
        Ok(())
    }

    /// BLEURT's head after [`Bert::forward`]: `a.logits` [b, labels] =
    /// classifier(tanh(pooler(first row of each sequence))), returned.
    pub fn scores(&self, be: &B, a: &mut BertActs<B>) -> Result<Vec<f32>> {
        let w = self.weights();
        let Some(head) = w.head else { return invalid!("this BERT has no scoring head (model_type bleurt has one)") };
        let (b, t, c) = (a.b, a.t, self.cfg.hidden_size);
        be.copy_rows(B::view_mut(&mut a.cls), c, B::view(&a.hidden), t * c, b, c);
        Linear::nn_linear(c, c).forward(be, B::view_mut(&mut a.pooled), B::view(&a.cls), head.pooler_w, Some(head.pooler_b), b);
        be.activation_forward(Act::Tanh, B::view_mut(&mut a.pooled_act), B::view(&a.pooled));
        Linear::nn_linear(c, self.cfg.num_labels).forward(be, B::view_mut(&mut a.logits), B::view(&a.pooled_act), head.classifier_w, Some(head.classifier_b), b);
        be.download(B::view(&a.logits))
    }
}
