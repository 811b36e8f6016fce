//! The GPT-2 training graph: a forward pass that keeps every activation the
//! backward needs, and the hand-written backward walking the layers in
//! reverse (llm.c style). Gradients accumulate into a flat buffer laid out
//! like the parameters.

use super::{Gpt2, Weights};
use crate::backend::{AttnGrads, AttnInputs, AttnShape, Backend};
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

struct LayerActs<B: Backend> {
    ln1: B::Buf,      // [BT, C]
    ln1_mean: B::Buf, // [BT]
    ln1_rstd: B::Buf, // [BT]
    qkv: B::Buf,      // [BT, 3C]
    atty: B::Buf,     // [BT, C]
    lse: B::Buf,      // [B, NH, T]
    res2: B::Buf,     // [BT, C] residual after attention
    ln2: B::Buf,      // [BT, C]
    ln2_mean: B::Buf, // [BT]
    ln2_rstd: B::Buf, // [BT]
    fch: B::Buf,      // [BT, I]
    fch_gelu: B::Buf, // [BT, I]
    out: B::Buf,      // [BT, C] residual after the MLP = next layer's input
}

/// Gradient scratch for one layer, reused by every layer.
struct GradScratch<B: Backend> {
    dres: B::Buf,      // [BT, C] gradient of the residual stream
    dln: B::Buf,       // [BT, C]
    dqkv: B::Buf,      // [BT, 3C]
    datty: B::Buf,     // [BT, C]
    dfch: B::Buf,      // [BT, I]
    dfch_gelu: B::Buf, // [BT, I]
}

/// Every activation of one (B, T) shape, allocated once and reused.
pub struct Activations<B: Backend> {
    pub b: usize,
    pub t: usize,
    emb: B::Buf, // [BT, C]
    layers: Vec<LayerActs<B>>,
    proj: B::Buf, // [BT, C] scratch: attention / MLP output projection
    lnf: B::Buf,  // [BT, C]
    lnf_mean: B::Buf,
    lnf_rstd: B::Buf,
    /// [BT, V]: the logits after an eval forward, d loss/d logits after a train forward.
    pub logits: B::Buf,
    losses: B::Buf, // [BT]
    grad: GradScratch<B>,
    ids: B::Ids,
    pos: B::Ids,
    /// Rewritten per batch: targets [BT] and the key mask [BT] (f32); the
    /// flags say whether the current batch has them.
    targets: B::Ids,
    mask: B::Buf,
    has_targets: bool,
    has_mask: bool,
}

impl<B: Backend> Activations<B> {
    pub fn new(be: &B, model: &Gpt2<B>, b: usize, t: usize) -> Result<Self> {
        let cfg = &model.cfg;
        let (bt, c, i) = (b * t, cfg.n_embd, cfg.inner());
        // Activations in the compute type; statistics and losses in f32.
        let (z, z32) = (|n: usize| be.zeros(n), |n: usize| be.zeros_f32(n));
        let layers = (0..cfg.n_layer)
            .map(|_| {
                Ok(LayerActs {
                    ln1: z(bt * c)?,
                    ln1_mean: z32(bt)?,
                    ln1_rstd: z32(bt)?,
                    qkv: z(bt * 3 * c)?,
                    atty: z(bt * c)?,
                    lse: z32(bt * cfg.n_head)?,
                    res2: z(bt * c)?,
                    ln2: z(bt * c)?,
                    ln2_mean: z32(bt)?,
                    ln2_rstd: z32(bt)?,
                    fch: z(bt * i)?,
                    fch_gelu: z(bt * i)?,
                    out: z(bt * c)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let grad = GradScratch { dres: z(bt * c)?, dln: z(bt * c)?, dqkv: z(bt * 3 * c)?, datty: z(bt * c)?, dfch: z(bt * i)?, dfch_gelu: z(bt * i)? };
        Ok(Activations {
            b,
            t,
            emb: z(bt * c)?,
            layers,
            proj: z(bt * c)?,
            lnf: z(bt * c)?,
            lnf_mean: z32(bt)?,
            lnf_rstd: z32(bt)?,
            logits: z(bt * cfg.vocab_size)?,
            losses: z32(bt)?,
            grad,
            ids: be.upload_ids(&vec![0; bt])?,
            // Positions are the same for every batch of this shape: 0..t per row.
            pos: be.upload_ids(&(0..bt).map(|r| (r % t) as i32).collect::<Vec<_>>())?,
            targets: be.upload_ids(&vec![-1; bt])?,
            mask: be.zeros_f32(bt)?,
            has_targets: false,
            has_mask: false,
        })
    }
}

impl<B: Backend> Gpt2<B> {
    /// Causal self-attention of layer `l` on a fused QKV buffer.
    fn attn_shape(&self, l: usize, b: usize, t: usize) -> AttnShape {
        let cfg = &self.cfg;
        AttnShape { window: cfg.attn_window(l), ..AttnShape::fused_self(b, t, cfg.n_head, cfg.head_dim(), cfg.attn_scale(l)) }
    }

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
        let (b, t, c, i, v) = (batch.b, batch.t, cfg.n_embd, cfg.inner(), cfg.vocab_size);
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
        let (qkv_lin, proj_lin, fc_lin, fcp_lin) = (cfg.linear(c, 3 * c), cfg.linear(c, c), cfg.linear(c, i), cfg.linear(i, c));
        for l in 0..cfg.n_layer {
            let (prev, cur) = acts.layers.split_at_mut(l);
            let x = if l == 0 { B::view(&acts.emb) } else { B::view(&prev[l - 1].out) };
            let a = &mut cur[0];
            let bw = &w.blocks[l];
            let eps = cfg.layer_norm_epsilon;
            be.layernorm_forward(B::view_mut(&mut a.ln1), B::view_mut(&mut a.ln1_mean), B::view_mut(&mut a.ln1_rstd), x, bw.ln_1_w, bw.ln_1_b, bt, c, eps);
            qkv_lin.forward(be, B::view_mut(&mut a.qkv), B::view(&a.ln1), bw.c_attn_w, bw.c_attn_b, bt);
            let s = self.attn_shape(l, b, t);
            let inp = AttnInputs::fused(B::view(&a.qkv), c, bt * 3 * c).mask(acts.has_mask.then(|| B::view(&acts.mask)));
            be.attention_forward(B::view_mut(&mut a.atty), B::view_mut(&mut a.lse), &inp, &s);
            proj_lin.forward(be, B::view_mut(&mut acts.proj), B::view(&a.atty), bw.attn_proj_w, Some(bw.attn_proj_b), bt);
            be.add(B::view_mut(&mut a.res2), x, B::view(&acts.proj));
            be.layernorm_forward(B::view_mut(&mut a.ln2), B::view_mut(&mut a.ln2_mean), B::view_mut(&mut a.ln2_rstd), B::view(&a.res2), bw.ln_2_w, bw.ln_2_b, bt, c, eps);
            fc_lin.forward(be, B::view_mut(&mut a.fch), B::view(&a.ln2), bw.c_fc_w, Some(bw.c_fc_b), bt);
            be.activation_forward(cfg.act(), B::view_mut(&mut a.fch_gelu), B::view(&a.fch));
            fcp_lin.forward(be, B::view_mut(&mut acts.proj), B::view(&a.fch_gelu), bw.mlp_proj_w, Some(bw.mlp_proj_b), bt);
            be.add(B::view_mut(&mut a.out), B::view(&a.res2), B::view(&acts.proj));
        }
        let last = B::view(&acts.layers[cfg.n_layer - 1].out);
        be.layernorm_forward(B::view_mut(&mut acts.lnf), B::view_mut(&mut acts.lnf_mean), B::view_mut(&mut acts.lnf_rstd), last, w.ln_f_w, w.ln_f_b, bt, c, cfg.layer_norm_epsilon);
        crate::nn::Linear::nn_linear(c, v).forward(be, B::view_mut(&mut acts.logits), B::view(&acts.lnf), *w.head(), None, bt);

        if !acts.has_targets {
            return Ok(None);
        }
        let targets = &acts.targets;
        let n = n_targets.max(1);
        let grad_scale = (mode == Mode::Train).then_some(1.0 / n as f32);
        be.softmax_cross_entropy(B::view_mut(&mut acts.losses), B::view_mut(&mut acts.logits), targets, bt, v, grad_scale);
        let losses = be.download(B::view(&acts.losses))?;
        Ok(Some(losses.iter().map(|&x| x as f64).sum::<f64>() as f32 / n as f32))
    }

    /// Accumulates d loss / d parameters into `grads` (layout of `self.layout`).
    /// Requires a preceding `forward(.., Mode::Train)` with targets.
    pub fn backward(&self, be: &B, acts: &mut Activations<B>, grads: B::ViewMut<'_>) {
        let cfg = &self.cfg;
        let (b, t, c, i, v) = (acts.b, acts.t, cfg.n_embd, cfg.inner(), cfg.vocab_size);
        let bt = b * t;
        let w = self.weights();
        let mut g: Weights<B::ViewMut<'_>> = self.grad_views(grads);
        let Activations { emb, layers, lnf, lnf_mean, lnf_rstd, logits, grad, ids, pos, mask, has_mask, .. } = acts;
        let mask = has_mask.then(|| B::view(mask));
        let GradScratch { dres, dln, dqkv, datty, dfch, dfch_gelu } = grad;

        // LM head and final LayerNorm. The head gradient goes to lm_head, or to wte when tied.
        let dhead = g.lm_head.as_mut().unwrap_or(&mut g.wte);
        crate::nn::Linear::nn_linear(c, v).backward(be, Some(B::view_mut(dln)), B::reborrow(dhead), None, B::view(logits), B::view(lnf), *w.head(), bt, false);
        be.fill(B::view_mut(dres), 0.0);
        let last = B::view(&layers[cfg.n_layer - 1].out);
        be.layernorm_backward(B::view_mut(dres), B::reborrow(&mut g.ln_f_w), B::reborrow(&mut g.ln_f_b), B::view(dln), last, w.ln_f_w, B::view(lnf_mean), B::view(lnf_rstd), bt, c);

        let (qkv_lin, proj_lin, fc_lin, fcp_lin) = (cfg.linear(c, 3 * c), cfg.linear(c, c), cfg.linear(c, i), cfg.linear(i, c));
        for l in (0..cfg.n_layer).rev() {
            let a = &layers[l];
            let x = if l == 0 { B::view(emb) } else { B::view(&layers[l - 1].out) };
            let (bw, gw) = (&w.blocks[l], &mut g.blocks[l]);
            // MLP: out = res2 + proj(gelu(fc(ln2(res2))))
            fcp_lin.backward(
                be,
                Some(B::view_mut(dfch_gelu)),
                B::reborrow(&mut gw.mlp_proj_w),
                Some(B::reborrow(&mut gw.mlp_proj_b)),
                B::view(dres),
                B::view(&a.fch_gelu),
                bw.mlp_proj_w,
                bt,
                false,
            );
            be.fill(B::view_mut(dfch), 0.0);
            be.activation_backward(cfg.act(), B::view_mut(dfch), B::view(&a.fch), B::view(dfch_gelu));
            fc_lin.backward(be, Some(B::view_mut(dln)), B::reborrow(&mut gw.c_fc_w), Some(B::reborrow(&mut gw.c_fc_b)), B::view(dfch), B::view(&a.ln2), bw.c_fc_w, bt, false);
            be.layernorm_backward(
                B::view_mut(dres),
                B::reborrow(&mut gw.ln_2_w),
                B::reborrow(&mut gw.ln_2_b),
                B::view(dln),
                B::view(&a.res2),
                bw.ln_2_w,
                B::view(&a.ln2_mean),
                B::view(&a.ln2_rstd),
                bt,
                c,
            );
            // Attention: res2 = x + proj(attn(qkv(ln1(x))))
            proj_lin.backward(
                be,
                Some(B::view_mut(datty)),
                B::reborrow(&mut gw.attn_proj_w),
                Some(B::reborrow(&mut gw.attn_proj_b)),
                B::view(dres),
                B::view(&a.atty),
                bw.attn_proj_w,
                bt,
                false,
            );
            be.fill(B::view_mut(dqkv), 0.0);
            let s = self.attn_shape(l, b, t);
            let inp = AttnInputs::fused(B::view(&a.qkv), c, bt * 3 * c).mask(mask);
            be.attention_backward(AttnGrads::Fused(B::view_mut(dqkv)), None, B::view(datty), B::view(&a.atty), B::view(&a.lse), &inp, &s);
            qkv_lin.backward(
                be,
                Some(B::view_mut(dln)),
                B::reborrow(&mut gw.c_attn_w),
                gw.c_attn_b.as_mut().map(|b| B::reborrow(b)),
                B::view(dqkv),
                B::view(&a.ln1),
                bw.c_attn_w,
                bt,
                false,
            );
            be.layernorm_backward(
                B::view_mut(dres),
                B::reborrow(&mut gw.ln_1_w),
                B::reborrow(&mut gw.ln_1_b),
                B::view(dln),
                x,
                bw.ln_1_w,
                B::view(&a.ln1_mean),
                B::view(&a.ln1_rstd),
                bt,
                c,
            );
        }
        be.embedding_backward(B::reborrow(&mut g.wte), Some((pos, B::reborrow(&mut g.wpe))), B::view(dres), ids, c);
    }
}
