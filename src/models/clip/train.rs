//! Both CLIP towers, forward (keeping what the backward needs) and backward,
//! from pixels and token ids to the projected (unnormalised) embeddings and
//! back. The contrastive head between them runs on the host
//! (contrastive.rs).

use super::Clip;
use crate::backend::{AttnShape, Backend};
use crate::nn::block::{block_backward, stack_forward, BlockActs, BlockScratch, StackEnd};
use crate::nn::Linear;
use crate::{invalid, Result};

/// Vision activations for `b` images.
pub struct VisionActs<B: Backend> {
    pub b: usize,
    patches: B::Buf, // [b·N, C·P·P] unfolded pixels
    pe: B::Buf,      // [b·N, Dv] patch embeddings
    emb: B::Buf,     // [R, Dv], R = b·(N+1): class token, patches, + positions
    pre: B::Buf,     // [R, Dv] pre_layrnorm output
    pre_mean: B::Buf,
    pre_rstd: B::Buf,
    blocks: Vec<BlockActs<B>>,
    scratch: BlockScratch<B>,
    pooled: B::Buf, // [b, Dv] class tokens
    post: B::Buf,   // [b, Dv] post_layernorm output
    post_mean: B::Buf,
    post_rstd: B::Buf,
    /// [b, Pd] projected image embeddings (what `get_image_features` returns).
    pub embeds: B::Buf,
    d_embeds: B::Buf, // [b, Pd]
    dpost: B::Buf,    // [b, Dv]
    dpooled: B::Buf,  // [b, Dv]
    demb: B::Buf,     // [R, Dv]
    dpe: B::Buf,      // [b·N, Dv]
    /// [1] f32: d loss / d logit_scale from the host head, kept between steps.
    d_logit_scale: B::Buf,
}

/// Text activations for `b` texts of `t` tokens.
pub struct TextActs<B: Backend> {
    pub b: usize,
    pub t: usize,
    ids: B::Ids,
    pos: B::Ids,
    mask: B::Buf, // [b·t] f32
    has_mask: bool,
    /// The pooled position of each text.
    pool_at: Vec<usize>,
    emb: B::Buf, // [R, Dt]
    blocks: Vec<BlockActs<B>>,
    scratch: BlockScratch<B>,
    pooled: B::Buf, // [b, Dt]
    fin: B::Buf,    // [b, Dt] final_layer_norm output
    fin_mean: B::Buf,
    fin_rstd: B::Buf,
    /// [b, Pd] projected text embeddings (`get_text_features`).
    pub embeds: B::Buf,
    d_embeds: B::Buf, // [b, Pd]
    dfin: B::Buf,     // [b, Dt]
    dpooled: B::Buf,  // [b, Dt]
}

impl<B: Backend> VisionActs<B> {
    pub fn new(be: &B, model: &Clip<B>, b: usize) -> Result<Self> {
        let (cfg, spec) = (&model.cfg, model.vision_spec());
        let (n, dv, pd) = (cfg.patches(), cfg.vision_config.hidden_size, cfg.projection_dim);
        let r = b * (n + 1);
        let (z, z32) = (|k: usize| be.zeros(k), |k: usize| be.zeros_f32(k));
        Ok(VisionActs {
            b,
            patches: z(b * n * cfg.patch_values())?,
            pe: z(b * n * dv)?,
            emb: z(r * dv)?,
            pre: z(r * dv)?,
            pre_mean: z32(r)?,
            pre_rstd: z32(r)?,
            blocks: (0..cfg.vision_config.num_hidden_layers).map(|_| BlockActs::new(be, &spec, r, cfg.vision_config.num_attention_heads)).collect::<Result<_>>()?,
            scratch: BlockScratch::new(be, &spec, r)?,
            pooled: z(b * dv)?,
            post: z(b * dv)?,
            post_mean: z32(b)?,
            post_rstd: z32(b)?,
            embeds: z(b * pd)?,
            d_embeds: z(b * pd)?,
            dpost: z(b * dv)?,
            dpooled: z(b * dv)?,
            demb: z(r * dv)?,
            dpe: z(b * n * dv)?,
            d_logit_scale: be.zeros_f32(1)?,
        })
    }
}

impl<B: Backend> TextActs<B> {
    pub fn new(be: &B, model: &Clip<B>, b: usize, t: usize) -> Result<Self> {
        let (cfg, spec) = (&model.cfg, model.text_spec());
        let (dt, pd) = (cfg.text_config.hidden_size, cfg.projection_dim);
        let r = b * t;
        let (z, z32) = (|k: usize| be.zeros(k), |k: usize| be.zeros_f32(k));
        Ok(TextActs {
            b,
            t,
            ids: be.upload_ids(&vec![0; r])?,
            pos: be.upload_ids(&(0..r).map(|i| (i % t) as i32).collect::<Vec<_>>())?,
            mask: z32(r)?,
            has_mask: false,
            pool_at: vec![0; b],
            emb: z(r * dt)?,
            blocks: (0..cfg.text_config.num_hidden_layers).map(|_| BlockActs::new(be, &spec, r, cfg.text_config.num_attention_heads)).collect::<Result<_>>()?,
            scratch: BlockScratch::new(be, &spec, r)?,
            pooled: z(b * dt)?,
            fin: z(b * dt)?,
            fin_mean: z32(b)?,
            fin_rstd: z32(b)?,
            embeds: z(b * pd)?,
            d_embeds: z(b * pd)?,
            dfin: z(b * dt)?,
            dpooled: z(b * dt)?,
        })
    }
}

/// Unfolds [b, C, H, W] pixels into patch rows [b·N, C·P·P], each row in the
/// (channel, row, column) order of the Conv2d weight.
fn unfold(pixels: &[f32], b: usize, channels: usize, image: usize, patch: usize) -> Vec<f32> {
    let side = image / patch;
    let mut out = Vec::with_capacity(pixels.len());
    for img in 0..b {
        for py in 0..side {
            for px in 0..side {
                for c in 0..channels {
                    for ky in 0..patch {
                        let at = ((img * channels + c) * image + py * patch + ky) * image + px * patch;
                        out.extend_from_slice(&pixels[at..at + patch]);
                    }
                }
            }
        }
    }
    out
}

impl<B: Backend> Clip<B> {
    fn vision_shape(&self, b: usize) -> AttnShape {
        let v = &self.cfg.vision_config;
        let d = v.hidden_size / v.num_attention_heads;
        AttnShape { causal: false, ..AttnShape::fused_self(b, self.cfg.patches() + 1, v.num_attention_heads, d, (d as f32).powf(-0.5)) }
    }

    fn text_shape(&self, b: usize, t: usize) -> AttnShape {
        let c = &self.cfg.text_config;
        let d = c.hidden_size / c.num_attention_heads;
        AttnShape::fused_self(b, t, c.num_attention_heads, d, (d as f32).powf(-0.5))
    }

    /// Vision tower: `pixels` [b, C, H, W] (preprocessed) → `a.embeds` [b, Pd].
    pub fn vision_forward(&self, be: &B, a: &mut VisionActs<B>, pixels: &[f32]) -> Result<()> {
        self.load_pixels(be, a, pixels)?;
        self.vision_forward_loaded(be, a);
        Ok(())
    }

    /// Writes `pixels` [b, channels, size, size] to the device as patches
    /// (the input of [`Self::vision_forward_loaded`]).
    pub fn load_pixels(&self, be: &B, a: &mut VisionActs<B>, pixels: &[f32]) -> Result<()> {
        let v = &self.cfg.vision_config;
        let b = a.b;
        if pixels.len() != b * v.num_channels * v.image_size * v.image_size {
            return invalid!("pixel_values hold {} values, expected {b}×{}×{}×{}", pixels.len(), v.num_channels, v.image_size, v.image_size);
        }
        be.write(B::view_mut(&mut a.patches), &unfold(pixels, b, v.num_channels, v.image_size, v.patch_size))
    }

    /// Vision tower on the patches [`Self::load_pixels`] wrote → `a.embeds` [b, Pd].
    pub fn vision_forward_loaded(&self, be: &B, a: &mut VisionActs<B>) {
        let v = &self.cfg.vision_config;
        let (b, n, dv) = (a.b, self.cfg.patches(), v.hidden_size);
        let w = self.weights();
        let vw = &w.vision;
        Linear::nn_linear(self.cfg.patch_values(), dv).forward(be, B::view_mut(&mut a.pe), B::view(&a.patches), vw.patch_embedding, None, b * n);
        // [class, patches…] per image (one strided copy for all patches), plus position embeddings.
        let row = (n + 1) * dv;
        be.copy_rows(B::view_mut(&mut a.emb), row, vw.class_embedding, 0, b, dv);
        be.copy_rows(B::slice_mut(B::view_mut(&mut a.emb), dv, b * row - dv), row, B::view(&a.pe), n * dv, b, n * dv);
        be.broadcast_add(B::view_mut(&mut a.emb), vw.position_embedding, b, row);
        let r = b * (n + 1);
        be.layernorm_forward(
            B::view_mut(&mut a.pre),
            B::view_mut(&mut a.pre_mean),
            B::view_mut(&mut a.pre_rstd),
            B::view(&a.emb),
            vw.pre_ln_w,
            vw.pre_ln_b,
            r,
            dv,
            v.layer_norm_eps,
        );
        let (spec, shape) = (self.vision_spec(), self.vision_shape(b));
        stack_forward(be, &spec, &vw.blocks, &mut a.blocks, B::view(&a.pre), None, |_| shape, &mut a.scratch, StackEnd::Plain);
        let last = B::view(&a.blocks[vw.blocks.len() - 1].out);
        be.copy_rows(B::view_mut(&mut a.pooled), dv, last, row, b, dv);
        be.layernorm_forward(
            B::view_mut(&mut a.post),
            B::view_mut(&mut a.post_mean),
            B::view_mut(&mut a.post_rstd),
            B::view(&a.pooled),
            vw.post_ln_w,
            vw.post_ln_b,
            b,
            dv,
            v.layer_norm_eps,
        );
        Linear::nn_linear(dv, self.cfg.projection_dim).forward(be, B::view_mut(&mut a.embeds), B::view(&a.post), w.visual_projection, None, b);
    }

    /// Text tower: `ids` [b, t] with an optional padding `mask` → `a.embeds` [b, Pd].
    pub fn text_forward(&self, be: &B, a: &mut TextActs<B>, ids: &[i32], mask: Option<&[f32]>) -> Result<()> {
        let c = &self.cfg.text_config;
        let (b, t, dt) = (a.b, a.t, c.hidden_size);
        if ids.len() != b * t || t > c.max_position_embeddings {
            return invalid!("{} text ids for {b} texts of {t} tokens (at most {})", ids.len(), c.max_position_embeddings);
        }
        if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= c.vocab_size) {
            return invalid!("token id {bad} is outside the vocabulary (size {})", c.vocab_size);
        }
        be.write_ids(&mut a.ids, ids)?;
        a.has_mask = mask.is_some();
        if let Some(m) = mask {
            be.write(B::view_mut(&mut a.mask), m)?;
        }
        a.pool_at = ids.chunks(t).map(|row| self.pool_position(row)).collect();
        let w = self.weights();
        let tw = &w.text;
        be.embedding_forward(B::view_mut(&mut a.emb), &a.ids, tw.token_embedding, Some((&a.pos, tw.position_embedding)), dt);
        let (spec, shape) = (self.text_spec(), self.text_shape(b, t));
        let mask = a.has_mask.then(|| B::view(&a.mask));
        // The final LayerNorm is on the pooled rows only (below): the last block's output stays plain.
        stack_forward(be, &spec, &tw.blocks, &mut a.blocks, B::view(&a.emb), mask, |_| shape, &mut a.scratch, StackEnd::Plain);
        let last = B::view(&a.blocks[tw.blocks.len() - 1].out);
        for (row, &at) in a.pool_at.iter().enumerate() {
            be.copy_rows(B::slice_mut(B::view_mut(&mut a.pooled), row * dt, dt), dt, B::slice(last, (row * t + at) * dt, dt), dt, 1, dt);
        }
        // The final LayerNorm is per row: on the pooled rows only.
        be.layernorm_forward(
            B::view_mut(&mut a.fin),
            B::view_mut(&mut a.fin_mean),
            B::view_mut(&mut a.fin_rstd),
            B::view(&a.pooled),
            tw.final_ln_w,
            tw.final_ln_b,
            b,
            dt,
            c.layer_norm_eps,
        );
        Linear::nn_linear(dt, self.cfg.projection_dim).forward(be, B::view_mut(&mut a.embeds), B::view(&a.fin), w.text_projection, None, b);
        Ok(())
    }

    /// Where a text is pooled: argmax(ids) for legacy configs (eos id 2),
    /// else the first EOS (0 when there is none, as transformers' argmax).
    fn pool_position(&self, row: &[i32]) -> usize {
        if self.cfg.legacy_eos_pooling() {
            let max = row.iter().copied().max().unwrap_or(0);
            row.iter().position(|&x| x == max).unwrap_or(0)
        } else {
            let eos = self.cfg.text_config.eos_token_id.map(|e| e as i32);
            row.iter().position(|&x| Some(x) == eos).unwrap_or(0)
        }
    }

    /// Backward of the vision tower from d loss / d `a.embeds` (host, [b, Pd]).
    pub fn vision_backward(&self, be: &B, a: &mut VisionActs<B>, d_embeds: &[f32], g: &mut super::Weights<B::ViewMut<'_>>) -> Result<()> {
        let v = &self.cfg.vision_config;
        let (b, n, dv) = (a.b, self.cfg.patches(), v.hidden_size);
        let (row, r) = ((n + 1) * dv, b * (n + 1));
        be.write(B::view_mut(&mut a.d_embeds), d_embeds)?;
        let w = self.weights();
        let (vw, gv) = (&w.vision, &mut g.vision);
        Linear::nn_linear(dv, self.cfg.projection_dim).backward(
            be,
            Some(B::view_mut(&mut a.dpost)),
            B::reborrow(&mut g.visual_projection),
            None,
            B::view(&a.d_embeds),
            B::view(&a.post),
            w.visual_projection,
            b,
            false,
        );
        be.fill(B::view_mut(&mut a.dpooled), 0.0);
        let (gw, gb) = (B::reborrow(&mut gv.post_ln_w), B::reborrow(&mut gv.post_ln_b));
        be.layernorm_backward(B::view_mut(&mut a.dpooled), gw, gb, B::view(&a.dpost), B::view(&a.pooled), vw.post_ln_w, B::view(&a.post_mean), B::view(&a.post_rstd), b, dv);
        be.fill(B::view_mut(&mut a.scratch.dres), 0.0);
        be.copy_rows(B::view_mut(&mut a.scratch.dres), row, B::view(&a.dpooled), dv, b, dv);
        let (spec, shape) = (self.vision_spec(), self.vision_shape(b));
        for l in (0..vw.blocks.len()).rev() {
            let x = if l == 0 { B::view(&a.pre) } else { B::view(&a.blocks[l - 1].out) };
            block_backward(be, &spec, &vw.blocks[l], &mut gv.blocks[l], &a.blocks[l], x, None, &shape, &mut a.scratch);
        }
        be.fill(B::view_mut(&mut a.demb), 0.0);
        let (gw, gb) = (B::reborrow(&mut gv.pre_ln_w), B::reborrow(&mut gv.pre_ln_b));
        be.layernorm_backward(B::view_mut(&mut a.demb), gw, gb, B::view(&a.scratch.dres), B::view(&a.emb), vw.pre_ln_w, B::view(&a.pre_mean), B::view(&a.pre_rstd), r, dv);
        // Position embeddings: summed over images; class embedding: over class rows.
        be.bias_backward(B::reborrow(&mut gv.position_embedding), B::view(&a.demb), b, row);
        be.copy_rows(B::view_mut(&mut a.dpooled), dv, B::view(&a.demb), row, b, dv);
        be.bias_backward(B::reborrow(&mut gv.class_embedding), B::view(&a.dpooled), b, dv);
        // Each image's patch rows (all but its class row) as one strided row.
        be.copy_rows(B::view_mut(&mut a.dpe), n * dv, B::slice(B::view(&a.demb), dv, b * row - dv), row, b, n * dv);
        Linear::nn_linear(self.cfg.patch_values(), dv).backward(
            be,
            None,
            B::reborrow(&mut gv.patch_embedding),
            None,
            B::view(&a.dpe),
            B::view(&a.patches),
            vw.patch_embedding,
            b * n,
            false,
        );
        Ok(())
    }

    /// Backward of the text tower from d loss / d `a.embeds` (host, [b, Pd]).
    pub fn text_backward(&self, be: &B, a: &mut TextActs<B>, d_embeds: &[f32], g: &mut super::Weights<B::ViewMut<'_>>) -> Result<()> {
        let c = &self.cfg.text_config;
        let (b, t, dt) = (a.b, a.t, c.hidden_size);
        be.write(B::view_mut(&mut a.d_embeds), d_embeds)?;
        let w = self.weights();
        let (tw, gt) = (&w.text, &mut g.text);
        Linear::nn_linear(dt, self.cfg.projection_dim).backward(
            be,
            Some(B::view_mut(&mut a.dfin)),
            B::reborrow(&mut g.text_projection),
            None,
            B::view(&a.d_embeds),
            B::view(&a.fin),
            w.text_projection,
            b,
            false,
        );
        be.fill(B::view_mut(&mut a.dpooled), 0.0);
        let (gw, gb) = (B::reborrow(&mut gt.final_ln_w), B::reborrow(&mut gt.final_ln_b));
        be.layernorm_backward(B::view_mut(&mut a.dpooled), gw, gb, B::view(&a.dfin), B::view(&a.pooled), tw.final_ln_w, B::view(&a.fin_mean), B::view(&a.fin_rstd), b, dt);
        be.fill(B::view_mut(&mut a.scratch.dres), 0.0);
        for (row, &at) in a.pool_at.iter().enumerate() {
            be.copy_rows(B::slice_mut(B::view_mut(&mut a.scratch.dres), (row * t + at) * dt, dt), dt, B::slice(B::view(&a.dpooled), row * dt, dt), dt, 1, dt);
        }
        let (spec, shape) = (self.text_spec(), self.text_shape(b, t));
        for l in (0..tw.blocks.len()).rev() {
            let x = if l == 0 { B::view(&a.emb) } else { B::view(&a.blocks[l - 1].out) };
            let mask = a.has_mask.then(|| B::view(&a.mask));
            block_backward(be, &spec, &tw.blocks[l], &mut gt.blocks[l], &a.blocks[l], x, mask, &shape, &mut a.scratch);
        }
        be.embedding_backward(B::reborrow(&mut gt.token_embedding), Some((&a.pos, B::reborrow(&mut gt.position_embedding))), B::view(&a.scratch.dres), &a.ids, dt);
        Ok(())
    }
}

impl<B: Backend> Clip<B> {
    /// Both towers and the contrastive head on `b` image-text pairs; with
    /// `grads`, also the backward, accumulating every parameter's gradient
    /// (layout of `self.layout`).
    #[allow(clippy::too_many_arguments)]
    pub fn contrastive_step(
        &self,
        be: &B,
        vision: &mut VisionActs<B>,
        text: &mut TextActs<B>,
        pixels: &[f32],
        ids: &[i32],
        mask: Option<&[f32]>,
        grads: Option<B::ViewMut<'_>>,
    ) -> Result<super::contrastive::Contrastive> {
        if vision.b != text.b {
            return invalid!("{} images but {} texts: the contrastive loss pairs them", vision.b, text.b);
        }
        self.vision_forward(be, vision, pixels)?;
        self.text_forward(be, text, ids, mask)?;
        let w = self.weights();
        let logit_scale = be.download(w.logit_scale)?[0];
        let (img, txt) = (be.download(B::view(&vision.embeds))?, be.download(B::view(&text.embeds))?);
        let head = super::contrastive::contrastive(&txt, &img, logit_scale, vision.b, self.cfg.projection_dim);
        if let Some(grads) = grads {
            let mut g = self.grad_views(grads);
            self.vision_backward(be, vision, &head.d_image, &mut g)?;
            self.text_backward(be, text, &head.d_text, &mut g)?;
            be.write(B::view_mut(&mut vision.d_logit_scale), &[head.d_logit_scale])?;
            be.add_assign(B::reborrow(&mut g.logit_scale), B::view(&vision.d_logit_scale));
        }
        Ok(head)
    }
}
