//! The ClipCap training graph. Forward: the MLP maps each image embedding
//! to `P` prefix rows, GPT-2's position embeddings are added to them and to
//! the caption's token embeddings, the two are interleaved per sample as
//! [prefix (P rows), caption (T rows)], and GPT-2's trunk runs on that. The
//! row before caption token t (position P − 1 + t) predicts it, so the loss
//! is the official `logits[:, P-1:-1]` against the tokens; each sample's
//! token losses are multiplied by its weight (the method's inverse-frequency
//! sample weights) and the sum is divided by the number of real tokens.

use super::{ClipCap, Weights};
use crate::backend::{Act, Backend};
use crate::models::gpt2::{logits_stride, trunk_backward, trunk_forward, Activations, Mode};
use crate::nn::Linear;
use crate::{invalid, Result};

/// Captions with their image embeddings, on the host.
#[derive(Clone, Debug)]
pub struct CaptionBatch {
    pub b: usize,
    /// Caption tokens per sample (right-padded).
    pub t: usize,
    /// [b, prefix_size] image embeddings.
    pub prefix: Vec<f32>,
    /// [b, t] caption token ids.
    pub tokens: Vec<i32>,
    /// [b, t]: 1 for a caption token, 0 for padding (not predicted).
    pub mask: Vec<f32>,
    /// [b] sample weights (all 1 when absent).
    pub weights: Option<Vec<f32>>,
}

/// Every activation of one (b, t) shape, allocated once and reused.
pub struct ClipCapActs<B: Backend> {
    pub b: usize,
    pub t: usize,
    prefix_in: B::Buf, // [b, prefix_size]
    a1: B::Buf,        // [b, hidden] before tanh
    h: B::Buf,         // [b, hidden]
    proj: B::Buf,      // [b, P·C]: the prefix embeddings
    pos_rows: B::Buf,  // [b·P, C]: position embeddings of the prefix rows
    tok_emb: B::Buf,   // [b·t, C]
    /// GPT-2 over b sequences of P + t rows; its logits are ClipCap's.
    pub gpt: Activations<B>,
    prefix_pos: B::Ids, // [b·P]: r mod P
    tokens: B::Ids,     // [b·t]
    token_pos: B::Ids,  // [b·t]: P + r mod t
    dh: B::Buf,         // [b, hidden]
    da1: B::Buf,        // [b, hidden]
    /// Per-sample loss weights of the current batch (host).
    weights: Vec<f32>,
}

impl<B: Backend> ClipCapActs<B> {
    pub fn new(be: &B, model: &ClipCap<B>, b: usize, t: usize) -> Result<Self> {
        let cfg = &model.cfg;
        let (p, c, hidden) = (cfg.prefix_length, cfg.gpt2.n_embd, cfg.prefix_hidden_size);
        if p + t > cfg.gpt2.n_positions {
            return invalid!("a prefix of {p} and captions of {t} tokens exceed n_positions {}", cfg.gpt2.n_positions);
        }
        Ok(ClipCapActs {
            b,
            t,
            prefix_in: be.zeros(b * cfg.prefix_size)?,
            a1: be.zeros(b * hidden)?,
            h: be.zeros(b * hidden)?,
            proj: be.zeros(b * p * c)?,
            pos_rows: be.zeros(b * p * c)?,
            tok_emb: be.zeros(b * t * c)?,
            gpt: Activations::for_config(be, &cfg.gpt2, b, p + t)?,
            prefix_pos: be.upload_ids(&(0..b * p).map(|r| (r % p) as i32).collect::<Vec<_>>())?,
            tokens: be.upload_ids(&vec![0; b * t])?,
            token_pos: be.upload_ids(&(0..b * t).map(|r| (p + r % t) as i32).collect::<Vec<_>>())?,
            dh: be.zeros(b * hidden)?,
            da1: be.zeros(b * hidden)?,
            weights: vec![1.0; b],
        })
    }
}

impl<B: Backend> ClipCap<B> {
    fn check_batch(&self, batch: &CaptionBatch, acts: &ClipCapActs<B>) -> Result<()> {
        let cfg = &self.cfg;
        let (b, t) = (batch.b, batch.t);
        if (b, t) != (acts.b, acts.t) {
            return invalid!("a batch of {b}×{t} does not fit activations of {}×{}", acts.b, acts.t);
        }
        if batch.prefix.len() != b * cfg.prefix_size || batch.tokens.len() != b * t || batch.mask.len() != b * t {
            return invalid!("a caption batch of {b}×{t} needs {} prefix values and {} tokens and mask values", b * cfg.prefix_size, b * t);
        }
        if let Some(&bad) = batch.tokens.iter().find(|&&x| x < 0 || x as usize >= cfg.gpt2.vocab_size) {
            return invalid!("token id {bad} is outside the vocabulary (size {})", cfg.gpt2.vocab_size);
        }
        match &batch.weights {
            Some(w) if w.len() != b || w.iter().any(|x| !x.is_finite() || *x < 0.0) => invalid!("sample weights must be {b} finite non-negative values"),
            _ => Ok(()),
        }
    }

    /// The forward pass: logits in `acts.gpt.logits` ([b, P + t, V]) and,
    /// when the batch has caption tokens to predict, the weighted loss. In
    /// `Mode::Train` the logits buffer then holds d loss / d logits.
    pub fn forward(&self, be: &B, acts: &mut ClipCapActs<B>, batch: &CaptionBatch, mode: Mode) -> Result<f32> {
        self.check_batch(batch, acts)?;
        let cfg = &self.cfg;
        let (b, t, p, c, v) = (batch.b, batch.t, cfg.prefix_length, cfg.gpt2.n_embd, cfg.gpt2.vocab_size);
        let (rows, hidden) = (p + t, cfg.prefix_hidden_size);
        let w = self.weights();

        // The MLP: image embedding → P prefix rows.
        be.write(B::view_mut(&mut acts.prefix_in), &batch.prefix)?;
        Linear::nn_linear(cfg.prefix_size, hidden).forward(be, B::view_mut(&mut acts.a1), B::view(&acts.prefix_in), w.w1, Some(w.b1), b);
        be.activation_forward(Act::Tanh, B::view_mut(&mut acts.h), B::view(&acts.a1));
        Linear::nn_linear(hidden, p * c).forward(be, B::view_mut(&mut acts.proj), B::view(&acts.h), w.w2, Some(w.b2), b);

        // Embeddings with positions, interleaved per sample: [prefix; caption].
        be.write_ids(&mut acts.tokens, &batch.tokens)?;
        be.embedding_forward(B::view_mut(&mut acts.tok_emb), &acts.tokens, w.gpt.wte, Some((&acts.token_pos, w.gpt.wpe)), c);
        be.embedding_forward(B::view_mut(&mut acts.pos_rows), &acts.prefix_pos, w.gpt.wpe, None, c);
        be.add_assign(B::view_mut(&mut acts.pos_rows), B::view(&acts.proj));
        be.copy_rows(B::view_mut(&mut acts.gpt.emb), rows * c, B::view(&acts.pos_rows), p * c, b, p * c);
        let emb_caption = B::slice_mut(B::view_mut(&mut acts.gpt.emb), p * c, b * rows * c - p * c);
        be.copy_rows(emb_caption, rows * c, B::view(&acts.tok_emb), t * c, b, t * c);
        let mut key_mask = vec![1.0f32; b * rows];
        for i in 0..b {
            key_mask[i * rows + p..(i + 1) * rows].copy_from_slice(&batch.mask[i * t..(i + 1) * t]);
        }
        be.write(B::view_mut(&mut acts.gpt.mask), &key_mask)?;
        acts.gpt.has_mask = true;
        trunk_forward(be, &cfg.gpt2, &w.gpt, &mut acts.gpt);

        // Row P − 1 + j predicts caption token j.
        let mut targets = vec![-1i32; b * rows];
        for i in 0..b {
            for j in 0..t {
                if batch.mask[i * t + j] != 0.0 {
                    targets[i * rows + p - 1 + j] = batch.tokens[i * t + j];
                }
            }
        }
        let n = targets.iter().filter(|&&x| x >= 0).count();
        if n == 0 {
            return if mode == Mode::Train { invalid!("a training batch needs caption tokens") } else { Ok(0.0) };
        }
        be.write_ids(&mut acts.gpt.targets, &targets)?;
        acts.weights = batch.weights.clone().unwrap_or_else(|| vec![1.0; b]);
        let grad_scale = (mode == Mode::Train).then_some(1.0 / n as f32);
        let stride = logits_stride(v);
        be.softmax_cross_entropy(B::view_mut(&mut acts.gpt.losses), B::view_mut(&mut acts.gpt.logits), &acts.gpt.targets, b * rows, v, stride, grad_scale);
        if mode == Mode::Train {
            // (Each sample's rows with their padding, which stays zero.)
            for (i, &wi) in acts.weights.iter().enumerate() {
                if wi != 1.0 {
                    be.scale(B::slice_mut(B::view_mut(&mut acts.gpt.logits), i * rows * stride, rows * stride), wi);
                }
            }
        }
        let losses = be.download(B::view(&acts.gpt.losses))?;
        let total: f64 = losses.chunks(rows).zip(&acts.weights).map(|(l, &wi)| wi as f64 * l.iter().map(|&x| x as f64).sum::<f64>()).sum();
        Ok((total / n as f64) as f32)
    }

    /// Accumulates d loss / d parameters into `grads` (layout of `self.layout`)
    /// after a `forward(.., Mode::Train)`. The image embeddings get no gradient
    /// (CLIP stays frozen).
    pub fn backward(&self, be: &B, acts: &mut ClipCapActs<B>, grads: B::ViewMut<'_>) {
        let cfg = &self.cfg;
        let (b, t, p, c) = (acts.b, acts.t, cfg.prefix_length, cfg.gpt2.n_embd);
        let (rows, hidden) = (p + t, cfg.prefix_hidden_size);
        let w = self.weights();
        let mut g: Weights<B::ViewMut<'_>> = self.grad_views(grads);
        trunk_backward(be, &cfg.gpt2, &w.gpt, &mut g.gpt, &mut acts.gpt);

        // d embeddings, de-interleaved: caption rows into tok_emb, prefix rows into pos_rows.
        let dres = B::view(&acts.gpt.scratch.dres);
        let (d_prefix, d_caption) = (B::slice(dres, 0, b * rows * c), B::slice(dres, p * c, b * rows * c - p * c));
        be.copy_rows(B::view_mut(&mut acts.tok_emb), t * c, d_caption, rows * c, b, t * c);
        be.copy_rows(B::view_mut(&mut acts.pos_rows), p * c, d_prefix, rows * c, b, p * c);
        be.embedding_backward(B::reborrow(&mut g.gpt.wte), Some((&acts.token_pos, B::reborrow(&mut g.gpt.wpe))), B::view(&acts.tok_emb), &acts.tokens, c);
        be.embedding_backward(B::reborrow(&mut g.gpt.wpe), None, B::view(&acts.pos_rows), &acts.prefix_pos, c);

        // The MLP, back to (but not into) the image embeddings.
        let d_proj = B::view(&acts.pos_rows);
        Linear::nn_linear(hidden, p * c).backward(be, Some(B::view_mut(&mut acts.dh)), g.w2, Some(g.b2), d_proj, B::view(&acts.h), w.w2, b, false);
        be.activation_backward(Act::Tanh, B::view_mut(&mut acts.da1), B::view(&acts.a1), B::view(&acts.dh));
        Linear::nn_linear(cfg.prefix_size, hidden).backward(be, None, g.w1, Some(g.b1), B::view(&acts.da1), B::view(&acts.prefix_in), w.w1, b, false);
    }
}
