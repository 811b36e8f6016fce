//! Contrastive CLIP training on image–caption pairs: the stand-in for the
//! pretrained CLIP that the embedded default cannot download (and
//! fine-tuning for real checkpoints). CLIP's recipe: symmetric contrastive
//! loss over each batch (a last batch smaller than `batch` is dropped, as
//! CLIP's training does), AdamW, linear warmup and cosine decay, clipping.

use crate::backend::{AdamW, Backend};
use crate::io::image::ImageProcessor;
use crate::models::clip::{Clip, TextActs, VisionActs};
use crate::nn::Parameters;
use crate::rng::Rng;
use crate::train::optimizer::{clip_grad_norm, default_decay, lr_at, Optimizer};
use crate::{Error, Result};
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct ClipOptions {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub warmup: u64,
    pub seed: u64,
}

/// Trains `model` on (image, caption ids) pairs; `on_epoch(epoch, mean loss)`.
pub fn train_clip<B: Backend>(
    be: &B,
    model: &mut Clip<B>,
    proc: &ImageProcessor,
    pairs: &[(PathBuf, Vec<u32>)],
    opts: &ClipOptions,
    mut on_epoch: impl FnMut(usize, f32),
) -> Result<()> {
    let b = opts.batch.min(pairs.len());
    if b < 2 {
        return Err(Error::Invalid(format!("contrastive training needs batches of at least 2 pairs ({} pairs, --batch {})", pairs.len(), opts.batch)));
    }
    let t = pairs.iter().map(|p| p.1.len()).max().unwrap_or(1).max(1);
    let pad = model.cfg.text_config.eos_token_id.unwrap_or(0) as i32;
    let hyper = AdamW { lr: opts.lr, beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: opts.weight_decay };
    let layout = model.param_layout().clone();
    let mut opt = Optimizer::new(be, &layout, hyper, default_decay)?;
    let mut grads = be.zeros_f32(layout.total)?;
    let (mut vision, mut text) = (VisionActs::new(be, model, b)?, TextActs::new(be, model, b, t)?);
    let mut rng = Rng::new(opts.seed);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    let steps_per_epoch = pairs.len() / b;
    let total = (opts.epochs * steps_per_epoch) as u64;
    for epoch in 0..opts.epochs {
        rng.shuffle(&mut order);
        let mut sum = 0.0f64;
        for chunk in order.chunks_exact(b) {
            let mut pixels = Vec::new();
            for &i in chunk {
                pixels.extend(proc.preprocess_file(&pairs[i].0)?);
            }
            let (mut ids, mut mask) = (vec![pad; b * t], vec![0.0f32; b * t]);
            for (r, &i) in chunk.iter().enumerate() {
                for (j, &id) in pairs[i].1.iter().enumerate() {
                    ids[r * t + j] = id as i32;
                    mask[r * t + j] = 1.0;
                }
            }
            be.fill(B::view_mut(&mut grads), 0.0);
            let head = model.contrastive_step(be, &mut vision, &mut text, &pixels, &ids, Some(&mask), Some(B::view_mut(&mut grads)))?;
            sum += head.loss as f64;
            let (_, factor) = clip_grad_norm(be, &grads, 1.0);
            let lr = lr_at(opt.step, total, opts.warmup, opts.lr);
            let (params, master) = model.params_mut();
            opt.update(be, params, master, &grads, lr, factor);
        }
        on_epoch(epoch, (sum / steps_per_epoch.max(1) as f64) as f32);
    }
    Ok(())
}
