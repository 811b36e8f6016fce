//! The GPT-2 training graph: a forward pass that keeps every activation the
//! backward needs, and the hand-written backward walking the layers in
//! reverse (llm.c style). Gradients accumulate into a flat buffer laid out
//! like the parameters.

use super::{Gpt2, Gpt2Config, Weights};
use crate::backend::{AttnShape, Backend};
use crate::nn::block::{block_backward, stack_forward, BlockActs, BlockScratch, BlockSpec, StackEnd};
use crate::nn::Linear;
use crate::{invalid, Result};

/// A batch on the host. `targets[b,t]` is the token to predict at (b, t)
/// (already shifted); negative targets are ignored.
#[derive(Clone, Debug)]
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub ids: Vec<i32>,
    pub targets: Option<Vec<i32>>,
    /// Key padding mask [b, t]: 1 keep, 0 pad.
    pub mask: Option<Vec<f32>>,
}

impl Batch {
    /// From Hugging Face style `labels` (same positions as the inputs): the
    /// model predicts `labels[t+1]` at t, as GPT2LMHeadModel's loss does.
    pub fn shift_labels(labels: &[i64], b: usize, t: usize) -> Vec<i32> {
        let mut out = vec![-100; b * t];
        for r in 0..b {
            for i in 0..t.saturating_sub(1) {
                out[r * t + i] = labels[r * t + i + 1] as i32;
            }
        }
        out
    }
}

/// Whether the forward prepares the backward (fusing the loss gradient into
/// the logits buffer) or keeps the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Eval,
    Train,
}

/// Every activation of one (B, T) shape, allocated once and reused.
pub struct Activations<B: Backend> {
    pub b: usize,
    pub t: usize,
    /// The input embeddings [BT, C] (written by the caller of [`trunk_forward`]).
    pub(crate) emb: B::Buf,
    layers: Vec<BlockActs<B>>,
    /// `dres` holds d loss / d embeddings after [`trunk_backward`].
    pub(crate) scratch: BlockScratch<B>,
    lnf: B::Buf, // [BT, C]
    lnf_mean: B::Buf,
    lnf_rstd: B::Buf,
    /// [BT, V] in rows [`logits_stride`]`(V)` apart: the logits after an
    /// eval forward, d loss/d logits after a train forward.
    pub logits: B::Buf,
    pub(crate) losses: B::Buf, // [BT]
    ids: B::Ids,
    pos: B::Ids,
    /// Rewritten per batch: targets [BT] and the key mask [BT] (f32); the
    /// flags say whether the current batch has them.
    pub(crate) targets: B::Ids,
    pub(crate) mask: B::Buf,
    has_targets: bool,
    pub(crate) has_mask: bool,
}

impl<B: Backend> Activations<B> {
    pub fn new(be: &B, model: &Gpt2<B>, b: usize, t: usize) -> Result<Self> {
        Self::for_config(be, &model.cfg, b, t)
    }

    /// Activations for a GPT-2 of `cfg` inside another model (ClipCap).
    pub(crate) fn for_config(be: &B, cfg: &Gpt2Config, b: usize, t: usize) -> Result<Self> {
        let (bt, c) = (b * t, cfg.n_embd);
        let spec = cfg.block_spec();
        Ok(Activations {
            b,
            t,
            emb: be.zeros(bt * c)?,
            layers: (0..cfg.n_layer).map(|_| BlockActs::new(be, &spec, bt, cfg.n_head)).collect::<Result<_>>()?,
            scratch: BlockScratch::new(be, &spec, bt)?,
            lnf: be.zeros(bt * c)?,
            lnf_mean: be.zeros_f32(bt)?,
            lnf_rstd: be.zeros_f32(bt)?,
            logits: be.zeros(bt * logits_stride(cfg.vocab_size))?,
            losses: be.zeros_f32(bt)?,
            ids: be.upload_ids(&vec![0; bt])?,
            // Positions are the same for every batch of this shape: 0..t per row.
            pos: be.upload_ids(&(0..bt).map(|r| (r % t) as i32).collect::<Vec<_>>())?,
            targets: be.upload_ids(&vec![-1; bt])?,
            mask: be.zeros_f32(bt)?,
            has_targets: false,
            has_mask: false,
        })
    }

    /// The logits on the host, [BT, V] without the rows' padding.
    pub fn download_logits(&self, be: &B, vocab: usize) -> Result<Vec<f32>> {
        let all = be.download(B::view(&self.logits))?;
        Ok(all.chunks(logits_stride(vocab)).flat_map(|row| row[..vocab].iter().copied()).collect())
    }
}

/// Elements between the starts of two logits rows: the vocabulary rounded up
/// to a multiple of 64 (GPT-2's 50,257 → 50,304, as llm.c pads it). An odd
/// row length leaves every row but the first misaligned, which keeps cuBLAS
/// off its fast kernels for the LM head's three products and the fused
/// classifier off 16-byte loads at row starts. The padding stays zero; no
/// product or classifier reads it.
pub fn logits_stride(vocab: usize) -> usize {
    vocab.next_multiple_of(64)
}

impl Gpt2Config {
    /// The blocks' shape, weight layout and activation.
    fn block_spec(&self) -> BlockSpec {
        BlockSpec { c: self.n_embd, inner: self.inner(), layout: self.weight_layout(), act: self.act(), eps: self.layer_norm_epsilon }
    }

    /// Causal self-attention of layer `l` on a fused QKV buffer.
    fn attn_shape(&self, l: usize, b: usize, t: usize) -> AttnShape {
        AttnShape { window: self.attn_window(l), ..AttnShape::fused_self(b, t, self.n_head, self.head_dim(), self.attn_scale(l)) }
    }
}

/// The transformer on the embeddings in `acts.emb`: the blocks, the final
/// LayerNorm and the LM head, leaving the logits in `acts.logits` (with the
/// key mask in `acts.mask` when `acts.has_mask`).
pub(crate) fn trunk_forward<B: Backend>(be: &B, cfg: &Gpt2Config, w: &Weights<B::View<'_>>, acts: &mut Activations<B>) {
    let (bt, c) = (acts.b * acts.t, cfg.n_embd);
    let mask = acts.has_mask.then(|| B::view(&acts.mask));
    let ln_f = StackEnd::Norm {
        out: B::view_mut(&mut acts.lnf),
        mean: B::view_mut(&mut acts.lnf_mean),
        rstd: B::view_mut(&mut acts.lnf_rstd),
        w: B::shorten(w.ln_f_w),
        b: B::shorten(w.ln_f_b),
    };
    let shape = |l| cfg.attn_shape(l, acts.b, acts.t);
    stack_forward(be, &cfg.block_spec(), &w.blocks, &mut acts.layers, B::view(&acts.emb), mask, shape, &mut acts.scratch, ln_f);
    let head = Linear::nn_linear(c, cfg.vocab_size).with_out_stride(logits_stride(cfg.vocab_size));
    head.forward(be, B::view_mut(&mut acts.logits), B::view(&acts.lnf), *w.head(), None, bt);
}

/// The backward of [`trunk_forward`] from d loss / d logits (in
/// `acts.logits`): parameter gradients into `g`, d loss / d embeddings into
/// `acts.scratch.dres`.
pub(crate) fn trunk_backward<B: Backend>(be: &B, cfg: &Gpt2Config, w: &Weights<B::View<'_>>, g: &mut Weights<B::ViewMut<'_>>, acts: &mut Activations<B>) {
    let (b, t, c, v) = (acts.b, acts.t, cfg.n_embd, cfg.vocab_size);
    let bt = b * t;
    let Activations { emb, layers, scratch, lnf, lnf_mean, lnf_rstd, logits, mask, has_mask, .. } = acts;
    let mask = has_mask.then(|| B::view(mask));

    // LM head and final LayerNorm. The head gradient goes to lm_head, or to wte when tied.
    let dhead = g.lm_head.as_mut().unwrap_or(&mut g.wte);
    let head = Linear::nn_linear(c, v).with_out_stride(logits_stride(v));
    head.backward(be, Some(B::view_mut(&mut scratch.dln)), B::reborrow(dhead), None, B::view(logits), B::view(lnf), *w.head(), bt, false);
    be.fill(B::view_mut(&mut scratch.dres), 0.0);
    let last = B::view(&layers[cfg.n_layer - 1].out);
    let (gw, gb, dln) = (B::reborrow(&mut g.ln_f_w), B::reborrow(&mut g.ln_f_b), B::view(&scratch.dln));
    be.layernorm_backward(B::view_mut(&mut scratch.dres), gw, gb, dln, last, w.ln_f_w, B::view(lnf_mean), B::view(lnf_rstd), bt, c);

    let spec = cfg.block_spec();
    for l in (0..cfg.n_layer).rev() {
        let x = if l == 0 { B::view(emb) } else { B::view(&layers[l - 1].out) };
        block_backward(be, &spec, &w.blocks[l], &mut g.blocks[l], &layers[l], x, mask, &cfg.attn_shape(l, b, t), scratch);
    }
}

impl<B: Backend> Gpt2<B> {
    fn check_batch(&self, batch: &Batch, acts: &Activations<B>) -> Result<()> {
        let cfg = &self.cfg;
        if (batch.b, batch.t) != (acts.b, acts.t) || batch.ids.len() != batch.b * batch.t {
            return invalid!("batch of {}×{} does not fit activations of {}×{}", batch.b, batch.t, acts.b, acts.t);
        }
        if batch.t > cfg.n_positions {
            return invalid!("sequence length {} exceeds n_positions {}", batch.t, cfg.n_positions);
        }
        if let Some(&bad) = batch.ids.iter().find(|&&x| x < 0 || x as usize >= cfg.vocab_size) {
            return invalid!("token id {bad} is outside the vocabulary (size {})", cfg.vocab_size);
        }
        if let Some(&bad) = batch.targets.iter().flatten().find(|&&x| x >= cfg.vocab_size as i32) {
            return invalid!("target id {bad} is outside the vocabulary (size {})", cfg.vocab_size);
        }
        Ok(())
    }

    /// Runs the forward pass, returning the mean cross-entropy over kept
    /// targets (`None` without targets). In `Mode::Train` the logits buffer
    /// then holds d loss / d logits, ready for [`Gpt2::backward`].
    pub fn forward(&self, be: &B, acts: &mut Activations<B>, batch: &Batch, mode: Mode) -> Result<Option<f32>> {
        self.check_batch(batch, acts)?;
        if mode == Mode::Train && batch.targets.is_none() {
            return invalid!("a training forward needs targets");
        }
        let cfg = &self.cfg;
        let (b, t, c, v) = (batch.b, batch.t, cfg.n_embd, cfg.vocab_size);
        let bt = b * t;
        be.write_ids(&mut acts.ids, &batch.ids)?;
        acts.has_mask = batch.mask.is_some();
        if let Some(m) = &batch.mask {
            be.write(B::view_mut(&mut acts.mask), m)?;
        }
        acts.has_targets = batch.targets.is_some();
        if let Some(x) = &batch.targets {
            be.write_ids(&mut acts.targets, x)?;
        }
        let n_targets = batch.targets.iter().flatten().filter(|&&x| x >= 0).count();

        let w = self.weights();
        be.embedding_forward(B::view_mut(&mut acts.emb), &acts.ids, w.wte, Some((&acts.pos, w.wpe)), c);
        trunk_forward(be, cfg, &w, acts);

        if !acts.has_targets {
            return Ok(None);
        }
        let targets = &acts.targets;
        let n = n_targets.max(1);
        let grad_scale = (mode == Mode::Train).then_some(1.0 / n as f32);
        be.softmax_cross_entropy(B::view_mut(&mut acts.losses), B::view_mut(&mut acts.logits), targets, bt, v, logits_stride(v), grad_scale);
        let losses = be.download(B::view(&acts.losses))?;
        Ok(Some(losses.iter().map(|&x| x as f64).sum::<f64>() as f32 / n as f32))
    }

    /// Accumulates d loss / d parameters into `grads` (layout of `self.layout`).
    /// Requires a preceding `forward(.., Mode::Train)` with targets.
    pub fn backward(&self, be: &B, acts: &mut Activations<B>, grads: B::ViewMut<'_>) {
        let c = self.cfg.n_embd;
        let w = self.weights();
        let mut g: Weights<B::ViewMut<'_>> = self.grad_views(grads);
        trunk_backward(be, &self.cfg, &w, &mut g, acts);
        let Activations { scratch, ids, pos, .. } = acts;
        be.embedding_backward(B::reborrow(&mut g.wte), Some((pos, B::reborrow(&mut g.wpe))), B::view(&scratch.dres), ids, c);
    }
}
