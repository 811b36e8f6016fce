//! The T5 training graph: a forward pass through encoder and decoder that
//! keeps every activation the backward needs, and the hand-written backward
//! walking both stacks in reverse. Gradients accumulate into a flat buffer
//! laid out like the parameters.
//!
//! One `StackActs` serves the encoder and one the decoder; a block is
//!   x → x + o(attn(rms(x)))  [→ + o(cross(rms(·), encoder))]  → + ff(rms(·)).

use super::buckets;
use super::weights::{Block, Stack, Weights};
use super::T5;
use crate::backend::{AttnGrads, AttnInputs, AttnShape, Backend};
use crate::nn::Linear;
use crate::{invalid, Result};

/// A batch on the host: encoder inputs [b, s] with their padding mask, and
/// decoder inputs and labels [b, t] (labels are not shifted; negative ones
/// are ignored).
#[derive(Clone, Debug)]
pub struct Seq2SeqBatch {
    pub b: usize,
    pub s: usize,
    pub t: usize,
    pub input_ids: Vec<i32>,
    pub mask: Option<Vec<f32>>,
    pub decoder_ids: Vec<i32>,
    pub labels: Option<Vec<i32>>,
}

struct CrossActs<B: Backend> {
    ln: B::Buf,   // [R, D]
    rstd: B::Buf, // [R]
    q: B::Buf,    // [R, I]
    kv: B::Buf,   // [B·S, 2I] keys and values of the encoder output
    att: B::Buf,  // [R, I]
    lse: B::Buf,  // [B, H, L]
    res: B::Buf,  // [R, D] residual after cross-attention
}

struct BlockActs<B: Backend> {
    ln: B::Buf,   // [R, D]
    rstd: B::Buf, // [R]
    qkv: B::Buf,  // [R, 3I]
    att: B::Buf,  // [R, I]
    lse: B::Buf,  // [B, H, L]
    res: B::Buf,  // [R, D] residual after self-attention
    cross: Option<CrossActs<B>>,
    ff_ln: B::Buf,     // [R, D]
    ff_rstd: B::Buf,   // [R]
    h: B::Buf,         // [R, F] wi (or wi_0) output
    a: B::Buf,         // [R, F] act(h)
    g: Option<B::Buf>, // [R, F] wi_1 output (gated)
    m: Option<B::Buf>, // [R, F] a ⊙ g (gated)
    out: B::Buf,       // [R, D] the block's output
}

/// A block's feed-forward input (the residual stream before its last add):
/// past the cross-attention in the decoder, past the self-attention in the encoder.
fn ff_input<'a, B: Backend>(res: &'a B::Buf, cross: &'a Option<CrossActs<B>>) -> B::View<'a> {
    cross.as_ref().map_or(B::view(res), |c| B::view(&c.res))
}

/// Gradient scratch of one stack, reused by every block.
struct GradScratch<B: Backend> {
    dres: B::Buf,    // [R, D] gradient of the residual stream
    dln: B::Buf,     // [R, D] gradient of a norm's output (first: the stack output's)
    dqkv: B::Buf,    // [R, 3I]
    datt: B::Buf,    // [R, I]
    dq: B::Buf,      // [R, I] (decoder)
    dkv: B::Buf,     // [B·S, 2I] (decoder)
    dhidden: B::Buf, // [R, F] gradient of wo's input
    dact: B::Buf,    // [R, F] gradient of act(h) (gated)
    dg: B::Buf,      // [R, F] gradient of wi_1's output (gated)
    dh: B::Buf,      // [R, F] gradient of h
    dbias: B::Buf,   // [H, L, L] f32
}

/// Activations of the encoder (L = s) or the decoder (L = t).
struct StackActs<B: Backend> {
    len: usize,
    emb: B::Buf, // [R, D]
    blocks: Vec<BlockActs<B>>,
    final_ln: B::Buf, // [R, D] (decoder: scaled for the head when configured)
    final_rstd: B::Buf,
    proj: B::Buf,    // [R, D] scratch for o / wo outputs
    bias: B::Buf,    // [H, L, L] f32 position bias
    buckets: B::Ids, // [L·L]
    ids: B::Ids,     // [R]
    grad: GradScratch<B>,
}

/// Every activation of one (b, s, t) shape, allocated once and reused.
pub struct Activations<B: Backend> {
    pub b: usize,
    pub s: usize,
    pub t: usize,
    enc: StackActs<B>,
    dec: StackActs<B>,
    /// [B·T, V]: logits after an eval forward, d loss/d logits after a train forward.
    pub logits: B::Buf,
    losses: B::Buf,  // [B·T] f32
    targets: B::Ids, // [B·T]
    mask: B::Buf,    // [B·S] f32 encoder padding mask
    has_mask: bool,
    has_targets: bool,
}

impl<B: Backend> StackActs<B> {
    /// Activations of `b` sequences of `len` tokens; a decoder's
    /// cross-attention holds keys and values for `src_rows` (= b · s) encoder rows.
    fn new(be: &B, model: &T5<B>, b: usize, len: usize, src_rows: usize, decoder: bool) -> Result<Self> {
        let cfg = &model.cfg;
        let (r, d, i, f, h) = (b * len, cfg.d_model, cfg.inner(), cfg.d_ff, cfg.num_heads);
        let (z, z32) = (|n: usize| be.zeros(n), |n: usize| be.zeros_f32(n));
        let layers = if decoder { cfg.num_decoder_layers } else { cfg.num_layers };
        let blocks = (0..layers)
            .map(|_| {
                let cross = match decoder {
                    true => Some(CrossActs { ln: z(r * d)?, rstd: z32(r)?, q: z(r * i)?, kv: z(src_rows * 2 * i)?, att: z(r * i)?, lse: z32(r * h)?, res: z(r * d)? }),
                    false => None,
                };
                let gated = |n: usize| if cfg.gated { z(n).map(Some) } else { Ok(None) };
                Ok(BlockActs {
                    ln: z(r * d)?,
                    rstd: z32(r)?,
                    qkv: z(r * 3 * i)?,
                    att: z(r * i)?,
                    lse: z32(r * h)?,
                    res: z(r * d)?,
                    cross,
                    ff_ln: z(r * d)?,
                    ff_rstd: z32(r)?,
                    h: z(r * f)?,
                    a: z(r * f)?,
                    g: gated(r * f)?,
                    m: gated(r * f)?,
                    out: z(r * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let grad = GradScratch {
            dres: z(r * d)?,
            dln: z(r * d)?,
            dqkv: z(r * 3 * i)?,
            datt: z(r * i)?,
            dq: z(if decoder { r * i } else { 0 })?,
            dkv: z(if decoder { src_rows * 2 * i } else { 0 })?,
            dhidden: z(r * f)?,
            dact: z(if cfg.gated { r * f } else { 0 })?,
            dg: z(if cfg.gated { r * f } else { 0 })?,
            dh: z(r * f)?,
            dbias: z32(h * len * len)?,
        };
        let grid = buckets::grid(0, len, len, !decoder, cfg.num_buckets, cfg.max_distance);
        Ok(StackActs {
            len,
            emb: z(r * d)?,
            blocks,
            final_ln: z(r * d)?,
            final_rstd: z32(r)?,
            proj: z(r * d)?,
            bias: z32(h * len * len)?,
            buckets: be.upload_ids(&grid)?,
            ids: be.upload_ids(&vec![0; r])?,
            grad,
        })
    }
}

impl<B: Backend> Activations<B> {
    pub fn new(be: &B, model: &T5<B>, b: usize, s: usize, t: usize) -> Result<Self> {
        Ok(Activations {
            b,
            s,
            t,
            enc: StackActs::new(be, model, b, s, 0, false)?,
            dec: StackActs::new(be, model, b, t, b * s, true)?,
            logits: be.zeros(b * t * model.cfg.vocab_size)?,
            losses: be.zeros_f32(b * t)?,
            targets: be.upload_ids(&vec![-1; b * t])?,
            mask: be.zeros_f32(b * s)?,
            has_mask: false,
            has_targets: false,
        })
    }

    /// The encoder output [b·s, d_model] after a forward.
    pub fn encoder_output(&self) -> B::View<'_> {
        B::view(&self.enc.final_ln)
    }
}

impl<B: Backend> T5<B> {
    fn check_batch(&self, batch: &Seq2SeqBatch, acts: &Activations<B>) -> Result<()> {
        let v = self.cfg.vocab_size;
        if (batch.b, batch.s, batch.t) != (acts.b, acts.s, acts.t) || batch.input_ids.len() != batch.b * batch.s || batch.decoder_ids.len() != batch.b * batch.t {
            return invalid!("batch of {}×{}→{} does not fit activations of {}×{}→{}", batch.b, batch.s, batch.t, acts.b, acts.s, acts.t);
        }
        if let Some(&bad) = batch.input_ids.iter().chain(&batch.decoder_ids).find(|&&x| x < 0 || x as usize >= v) {
            return invalid!("token id {bad} is outside the vocabulary (size {v})");
        }
        if let Some(&bad) = batch.labels.iter().flatten().find(|&&x| x >= v as i32) {
            return invalid!("label {bad} is outside the vocabulary (size {v})");
        }
        Ok(())
    }

    /// The encoder alone (inference): ids [b, s] with an optional padding
    /// mask [b, s] → hidden states [b·s, d_model].
    pub fn encode(&self, be: &B, ids: &[i32], mask: Option<&B::Buf>, b: usize, s: usize) -> Result<B::Buf> {
        let v = self.cfg.vocab_size;
        if ids.len() != b * s {
            return invalid!("encode: {} ids for a batch of {b}×{s}", ids.len());
        }
        if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= v) {
            return invalid!("token id {bad} is outside the vocabulary (size {v})");
        }
        let mut acts = StackActs::new(be, self, b, s, 0, false)?;
        be.write_ids(&mut acts.ids, ids)?;
        let w = self.weights();
        self.stack_forward(be, &w.encoder, &w.shared, &mut acts, b, mask.map(|m| B::view(m)), None);
        Ok(acts.final_ln)
    }

    /// Encoder and decoder forward; returns the mean cross-entropy over kept
    /// labels (`None` without labels). In `train` mode the logits buffer then
    /// holds d loss / d logits, ready for [`T5::backward`].
    pub fn forward(&self, be: &B, acts: &mut Activations<B>, batch: &Seq2SeqBatch, train: bool) -> Result<Option<f32>> {
        self.check_batch(batch, acts)?;
        if train && batch.labels.is_none() {
            return invalid!("a training forward needs labels");
        }
        let cfg = &self.cfg;
        let w = self.weights();
        acts.has_mask = batch.mask.is_some();
        if let Some(m) = &batch.mask {
            be.write(B::view_mut(&mut acts.mask), m)?;
        }
        acts.has_targets = batch.labels.is_some();
        if let Some(l) = &batch.labels {
            be.write_ids(&mut acts.targets, l)?;
        }
        be.write_ids(&mut acts.enc.ids, &batch.input_ids)?;
        be.write_ids(&mut acts.dec.ids, &batch.decoder_ids)?;

        let mask = acts.has_mask.then(|| B::view(&acts.mask));
        self.stack_forward(be, &w.encoder, &w.shared, &mut acts.enc, batch.b, mask, None);
        let enc_out = Some((B::view(&acts.enc.final_ln), batch.s));
        self.stack_forward(be, &w.decoder, &w.shared, &mut acts.dec, batch.b, mask, enc_out);

        let (rows, d, v) = (batch.b * batch.t, cfg.d_model, cfg.vocab_size);
        if cfg.scale_decoder_outputs {
            be.scale(B::view_mut(&mut acts.dec.final_ln), (d as f32).powf(-0.5));
        }
        Linear::nn_linear(d, v).forward(be, B::view_mut(&mut acts.logits), B::view(&acts.dec.final_ln), *w.head(), None, rows);
        if !acts.has_targets {
            return Ok(None);
        }
        let n = batch.labels.iter().flatten().filter(|&&x| x >= 0).count().max(1);
        be.softmax_cross_entropy(B::view_mut(&mut acts.losses), B::view_mut(&mut acts.logits), &acts.targets, rows, v, v, train.then_some(1.0 / n as f32));
        let losses = be.download(B::view(&acts.losses))?;
        Ok(Some(losses.iter().map(|&x| x as f64).sum::<f64>() as f32 / n as f32))
    }

    /// One stack: embeddings, blocks, final norm into `acts.final_ln`. Every
    /// residual add is written in the same pass as the norm after it; a
    /// block's last, its `out`, with the next block's first norm or the
    /// stack's final norm.
    /// `enc_out` (decoder only) is the encoder output and its length; `mask`
    /// the encoder's padding mask (encoder self-attention, decoder
    /// cross-attention).
    #[allow(clippy::too_many_arguments)]
    fn stack_forward(
        &self,
        be: &B,
        w: &Stack<B::View<'_>>,
        shared: &B::View<'_>,
        acts: &mut StackActs<B>,
        b: usize,
        mask: Option<B::View<'_>>,
        enc_out: Option<(B::View<'_>, usize)>,
    ) {
        let cfg = &self.cfg;
        let (len, d, i, f, h) = (acts.len, cfg.d_model, cfg.inner(), cfg.d_ff, cfg.num_heads);
        let (rows, decoder) = (b * len, enc_out.is_some());
        let eps = cfg.eps;
        be.embedding_forward(B::view_mut(&mut acts.emb), &acts.ids, *shared, None, d);
        be.position_bias_forward(B::view_mut(&mut acts.bias), w.rel_bias, &acts.buckets, h);
        let self_shape = self_attention(cfg, b, len, decoder);
        for (l, bw) in w.blocks.iter().enumerate() {
            let (prev, cur) = acts.blocks.split_at_mut(l);
            let a = &mut cur[0];
            let (ln, rstd) = (B::view_mut(&mut a.ln), B::view_mut(&mut a.rstd));
            // The input: the embeddings, or the previous block's output as it
            // is summed (its feed-forward's input and output, still in acts.proj).
            let x = match prev.last_mut() {
                None => {
                    be.rmsnorm_forward(ln, rstd, B::view(&acts.emb), bw.attn.ln, rows, d, eps);
                    B::view(&acts.emb)
                }
                Some(p) => {
                    be.add_rmsnorm_forward(B::view_mut(&mut p.out), ln, rstd, Some(ff_input(&p.res, &p.cross)), B::view(&acts.proj), bw.attn.ln, rows, d, eps);
                    B::view(&p.out)
                }
            };
            Linear::nn_linear(d, 3 * i).forward(be, B::view_mut(&mut a.qkv), B::view(&a.ln), bw.attn.qkv, None, rows);
            let self_mask = if decoder { None } else { mask.map(B::shorten) };
            let inp = AttnInputs::fused(B::view(&a.qkv), i, rows * 3 * i).mask(self_mask).bias(Some(B::view(&acts.bias)));
            be.attention_forward(B::view_mut(&mut a.att), B::view_mut(&mut a.lse), &inp, &self_shape);
            Linear::nn_linear(i, d).forward(be, B::view_mut(&mut acts.proj), B::view(&a.att), bw.attn.o, None, rows);
            // res = x + o(…) with the cross-attention's norm (decoder) or the feed-forward's.
            let (ff_ln, ff_rstd) = (B::view_mut(&mut a.ff_ln), B::view_mut(&mut a.ff_rstd));
            match (&bw.cross, &mut a.cross, enc_out) {
                (Some(cw), Some(c), Some((enc, src))) => {
                    be.add_rmsnorm_forward(B::view_mut(&mut a.res), B::view_mut(&mut c.ln), B::view_mut(&mut c.rstd), Some(x), B::view(&acts.proj), cw.ln, rows, d, eps);
                    Linear::nn_linear(d, i).forward(be, B::view_mut(&mut c.q), B::view(&c.ln), cw.q, None, rows);
                    Linear::nn_linear(d, 2 * i).forward(be, B::view_mut(&mut c.kv), enc, cw.kv, None, b * src);
                    let inp = AttnInputs::with_kv(B::view(&c.q), B::view(&c.kv), i, b * src * 2 * i).mask(mask.map(B::shorten));
                    be.attention_forward(B::view_mut(&mut c.att), B::view_mut(&mut c.lse), &inp, &cross_attention(cfg, b, len, src));
                    Linear::nn_linear(i, d).forward(be, B::view_mut(&mut acts.proj), B::view(&c.att), cw.o, None, rows);
                    be.add_rmsnorm_forward(B::view_mut(&mut c.res), ff_ln, ff_rstd, Some(B::view(&a.res)), B::view(&acts.proj), bw.ff.ln, rows, d, eps);
                }
                _ => be.add_rmsnorm_forward(B::view_mut(&mut a.res), ff_ln, ff_rstd, Some(x), B::view(&acts.proj), bw.ff.ln, rows, d, eps),
            }
            Linear::nn_linear(d, f).forward_act(be, cfg.act, B::view_mut(&mut a.a), B::view_mut(&mut a.h), B::view(&a.ff_ln), bw.ff.wi, None, rows);
            let hidden = match (bw.ff.wi_1, &mut a.g, &mut a.m) {
                (Some(wi_1), Some(g), Some(m)) => {
                    Linear::nn_linear(d, f).forward(be, B::view_mut(g), B::view(&a.ff_ln), wi_1, None, rows);
                    be.mul(B::view_mut(m), B::view(&a.a), B::view(g));
                    B::view(m)
                }
                _ => B::view(&a.a),
            };
            Linear::nn_linear(f, d).forward(be, B::view_mut(&mut acts.proj), hidden, bw.ff.wo, None, rows);
        }
        let last = acts.blocks.last_mut().expect("a stack has blocks");
        let (final_ln, final_rstd) = (B::view_mut(&mut acts.final_ln), B::view_mut(&mut acts.final_rstd));
        let ff_in = Some(ff_input(&last.res, &last.cross));
        be.add_rmsnorm_forward(B::view_mut(&mut last.out), final_ln, final_rstd, ff_in, B::view(&acts.proj), w.final_ln, rows, d, eps);
    }

    /// Accumulates d loss / d parameters into `grads` (layout of `self.layout`).
    /// Requires a preceding training forward.
    pub fn backward(&self, be: &B, acts: &mut Activations<B>, grads: B::ViewMut<'_>) {
        let cfg = &self.cfg;
        let (b, d, v) = (acts.b, cfg.d_model, cfg.vocab_size);
        let w = self.weights();
        let mut g: Weights<B::ViewMut<'_>> = self.grad_views(grads);
        let Activations { enc, dec, logits, mask, has_mask, .. } = acts;
        let mask = has_mask.then(|| B::view(mask));

        // Head: logits = final · headᵀ, `final` scaled when configured.
        let dhead = g.lm_head.as_mut().unwrap_or(&mut g.shared);
        Linear::nn_linear(d, v).backward(
            be,
            Some(B::view_mut(&mut dec.grad.dln)),
            B::reborrow(dhead),
            None,
            B::view(logits),
            B::view(&dec.final_ln),
            *w.head(),
            b * dec.len,
            false,
        );
        if cfg.scale_decoder_outputs {
            be.scale(B::view_mut(&mut dec.grad.dln), (d as f32).powf(-0.5));
        }
        // The decoder's cross-attentions gather the encoder output's gradient
        // where the encoder backward starts.
        be.fill(B::view_mut(&mut enc.grad.dln), 0.0);
        let enc_side = Some((B::view(&enc.final_ln), enc.len, B::view_mut(&mut enc.grad.dln)));
        self.stack_backward(be, &w.decoder, &mut g.decoder, &mut g.shared, dec, b, mask, enc_side);
        self.stack_backward(be, &w.encoder, &mut g.encoder, &mut g.shared, enc, b, mask, None);
    }

    /// Backward of one stack from `grad.dln` (d loss / d its final norm's
    /// output); accumulates parameter gradients, the shared embedding's, and
    /// (decoder) the gradient of the encoder output into `enc.2`.
    #[allow(clippy::too_many_arguments)]
    fn stack_backward(
        &self,
        be: &B,
        w: &Stack<B::View<'_>>,
        g: &mut Stack<B::ViewMut<'_>>,
        dshared: &mut B::ViewMut<'_>,
        acts: &mut StackActs<B>,
        b: usize,
        mask: Option<B::View<'_>>,
        mut enc: Option<(B::View<'_>, usize, B::ViewMut<'_>)>,
    ) {
        let cfg = &self.cfg;
        let (len, d, i, f, h) = (acts.len, cfg.d_model, cfg.inner(), cfg.d_ff, cfg.num_heads);
        let (rows, decoder) = (b * len, enc.is_some());
        let StackActs { emb, blocks, final_rstd, bias, buckets, ids, grad, .. } = acts;
        let GradScratch { dres, dln, dqkv, datt, dq, dkv, dhidden, dact, dg, dh, dbias } = grad;
        be.fill(B::view_mut(dres), 0.0);
        be.fill(B::view_mut(dbias), 0.0);
        let n = blocks.len();
        be.rmsnorm_backward(B::view_mut(dres), B::reborrow(&mut g.final_ln), B::view(dln), B::view(&blocks[n - 1].out), w.final_ln, B::view(final_rstd), rows, d);
        let self_shape = self_attention(cfg, b, len, decoder);
        for l in (0..n).rev() {
            let a = &blocks[l];
            let x = if l == 0 { B::view(emb) } else { B::view(&blocks[l - 1].out) };
            let (bw, gw): (&Block<B::View<'_>>, &mut Block<B::ViewMut<'_>>) = (&w.blocks[l], &mut g.blocks[l]);
            let ff_in = ff_input(&a.res, &a.cross);

            // Feed-forward: out = ff_in + wo(hidden), hidden = act(h) [⊙ g].
            let hidden = a.m.as_ref().map_or(B::view(&a.a), |m| B::view(m));
            let (wi, wo) = (Linear::nn_linear(d, f), Linear::nn_linear(f, d));
            match (bw.ff.wi_1, gw.ff.wi_1.as_mut(), a.g.as_ref()) {
                (Some(wi_1), Some(gwi_1), Some(gate)) => {
                    wo.backward(be, Some(B::view_mut(dhidden)), B::reborrow(&mut gw.ff.wo), None, B::view(dres), hidden, bw.ff.wo, rows, false);
                    be.mul(B::view_mut(dact), B::view(dhidden), B::view(gate));
                    be.mul(B::view_mut(dg), B::view(dhidden), B::view(&a.a));
                    be.activation_backward(cfg.act, B::view_mut(dh), B::view(&a.h), B::view(dact));
                    wi.backward(be, Some(B::view_mut(dln)), B::reborrow(gwi_1), None, B::view(dg), B::view(&a.ff_ln), wi_1, rows, false);
                    wi.backward(be, Some(B::view_mut(dln)), B::reborrow(&mut gw.ff.wi), None, B::view(dh), B::view(&a.ff_ln), bw.ff.wi, rows, true);
                }
                _ => {
                    wo.backward(be, None, B::reborrow(&mut gw.ff.wo), None, B::view(dres), hidden, bw.ff.wo, rows, false);
                    wo.input_grad_through_act(be, cfg.act, B::view_mut(dh), B::view(&a.h), B::view_mut(dhidden), B::view(dres), bw.ff.wo, rows);
                    wi.backward(be, Some(B::view_mut(dln)), B::reborrow(&mut gw.ff.wi), None, B::view(dh), B::view(&a.ff_ln), bw.ff.wi, rows, false);
                }
            }
            be.rmsnorm_backward(B::view_mut(dres), B::reborrow(&mut gw.ff.ln), B::view(dln), ff_in, bw.ff.ln, B::view(&a.ff_rstd), rows, d);

            // Cross-attention (decoder): c.res = a.res + o(cross(q(rms(a.res)), kv(enc))).
            if let (Some(cw), Some(gc), Some(c), Some((enc_out, src, denc))) = (&bw.cross, gw.cross.as_mut(), a.cross.as_ref(), enc.as_mut()) {
                let src = *src;
                Linear::nn_linear(i, d).backward(be, Some(B::view_mut(datt)), B::reborrow(&mut gc.o), None, B::view(dres), B::view(&c.att), cw.o, rows, false);
                let inp = AttnInputs::with_kv(B::view(&c.q), B::view(&c.kv), i, b * src * 2 * i).mask(mask.map(B::shorten));
                let grads = AttnGrads::Split { dq: B::view_mut(dq), dkv: B::view_mut(dkv) };
                be.attention_backward(grads, None, B::view(datt), B::view(&c.att), B::view(&c.lse), &inp, &cross_attention(cfg, b, len, src));
                Linear::nn_linear(d, i).backward(be, Some(B::view_mut(dln)), B::reborrow(&mut gc.q), None, B::view(dq), B::view(&c.ln), cw.q, rows, false);
                Linear::nn_linear(d, 2 * i).backward(be, Some(B::reborrow(denc)), B::reborrow(&mut gc.kv), None, B::view(dkv), *enc_out, cw.kv, b * src, true);
                be.rmsnorm_backward(B::view_mut(dres), B::reborrow(&mut gc.ln), B::view(dln), B::view(&a.res), cw.ln, B::view(&c.rstd), rows, d);
            }

            // Self-attention: a.res = x + o(attn(qkv(rms(x)))), with the position bias.
            Linear::nn_linear(i, d).backward(be, Some(B::view_mut(datt)), B::reborrow(&mut gw.attn.o), None, B::view(dres), B::view(&a.att), bw.attn.o, rows, false);
            let self_mask = if decoder { None } else { mask.map(B::shorten) };
            let inp = AttnInputs::fused(B::view(&a.qkv), i, rows * 3 * i).mask(self_mask).bias(Some(B::view(bias)));
            be.attention_backward(AttnGrads::Fused(B::view_mut(dqkv)), Some(B::view_mut(dbias)), B::view(datt), B::view(&a.att), B::view(&a.lse), &inp, &self_shape);
            Linear::nn_linear(d, 3 * i).backward(be, Some(B::view_mut(dln)), B::reborrow(&mut gw.attn.qkv), None, B::view(dqkv), B::view(&a.ln), bw.attn.qkv, rows, false);
            be.rmsnorm_backward(B::view_mut(dres), B::reborrow(&mut gw.attn.ln), B::view(dln), x, bw.attn.ln, B::view(&a.rstd), rows, d);
        }
        be.position_bias_backward(B::reborrow(&mut g.rel_bias), B::view(dbias), buckets, h);
        be.embedding_backward(B::reborrow(dshared), None, B::view(dres), ids, d);
    }
}

/// Self-attention of a stack over a fused QKV buffer: unscaled, causal in the decoder.
fn self_attention(cfg: &super::T5Config, b: usize, len: usize, decoder: bool) -> AttnShape {
    AttnShape { causal: decoder, ..AttnShape::fused_self(b, len, cfg.num_heads, cfg.d_kv, 1.0) }
}

/// Decoder queries [b, t, I] against the encoder's fused KV [b, s, 2I].
fn cross_attention(cfg: &super::T5Config, b: usize, t: usize, s: usize) -> AttnShape {
    let i = cfg.inner();
    AttnShape { batch: b, heads: cfg.num_heads, head_dim: cfg.d_kv, q_len: t, kv_len: s, kv_cap: s, q_stride: i, kv_stride: 2 * i, causal: false, window: 0, scale: 1.0 }
}
