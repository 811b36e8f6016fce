//! Stage 4 of the method: distilling the caption → interaction summarizer.
//! A T5 is fine-tuned on synthetic (caption, label) pairs with the input
//! `summarize: {caption}`: AdamW (lr 5e-5 by default, no weight decay, as the
//! Hugging Face Trainer), linear decay to zero, gradients clipped to norm 1,
//! and a mean loss on a held-out share after every epoch.
//!
//! Pairs JSONL, one object per line with the two fields named by the
//! caller (default `caption` and `label`).

use crate::backend::{AdamW, Backend};
use crate::io::jsonl::{read_objects, string_field};
use crate::io::tokenizer::Tokenizer;
use crate::models::t5::{Activations, Seq2SeqBatch, T5};
use crate::nn::Parameters;
use crate::rng::Rng;
use crate::train::optimizer::{clip_grad_norm, default_decay, Optimizer};
use crate::Result;
use std::path::Path;

/// One tokenized pair: encoder ids (with EOS) and target ids (with EOS).
pub type Pair = (Vec<u32>, Vec<u32>);

/// Reads (source, target) text pairs from `path`.
pub fn read_pairs(path: &Path, source: &str, target: &str) -> Result<Vec<(String, String)>> {
    read_objects(path)?.into_iter().map(|(line, o)| Ok((string_field(path, line, &o, source)?, string_field(path, line, &o, target)?))).collect()
}

/// Tokenizes pairs, the source after `prefix`, each side ending with `eos`
/// (appended where the tokenizer adds none) and cut to its limit (keeping the EOS).
pub fn tokenize(tok: &Tokenizer, pairs: &[(String, String)], prefix: &str, eos: Option<u32>, max_source: usize, max_target: usize) -> Result<Vec<Pair>> {
    pairs.iter().map(|(s, t)| Ok((tok.encode_with_eos(&format!("{prefix}{s}"), eos, max_source)?, tok.encode_with_eos(t, eos, max_target)?))).collect()
}

#[derive(Clone, Debug)]
pub struct SummarizerOptions {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    /// Share of the pairs held out for the evaluation loss.
    pub eval_share: f64,
    pub seed: u64,
}

/// Per-epoch progress: (epoch, mean training loss, held-out loss if any).
pub type EpochLog = (usize, f32, Option<f32>);

/// A padded batch of `b` rows (rows past `pairs` predict nothing) in
/// shapes [b, s] and [b, t].
fn batch_of(model_pad: u32, start: u32, pairs: &[&Pair], b: usize, s: usize, t: usize) -> Seq2SeqBatch {
    let (mut input_ids, mut mask) = (vec![model_pad as i32; b * s], vec![0.0; b * s]);
    let (mut decoder_ids, mut labels) = (vec![model_pad as i32; b * t], vec![-100; b * t]);
    for (r, (src, tgt)) in pairs.iter().enumerate() {
        for (j, &id) in src.iter().enumerate() {
            input_ids[r * s + j] = id as i32;
            mask[r * s + j] = 1.0;
        }
        // Teacher forcing: the decoder sees [start, y0, y1, …] and predicts [y0, y1, …].
        for (j, &id) in tgt.iter().enumerate() {
            decoder_ids[r * t + j] = if j == 0 { start as i32 } else { tgt[j - 1] as i32 };
            labels[r * t + j] = id as i32;
        }
    }
    Seq2SeqBatch { b, s, t, input_ids, mask: Some(mask), decoder_ids, labels: Some(labels) }
}

/// Fine-tunes `model` on `pairs`; calls `on_epoch` after every epoch.
pub fn train_summarizer<B: Backend>(be: &B, model: &mut T5<B>, pairs: &[Pair], opts: &SummarizerOptions, mut on_epoch: impl FnMut(EpochLog)) -> Result<()> {
    let mut rng = Rng::new(opts.seed);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    rng.shuffle(&mut order);
    let held = ((pairs.len() as f64 * opts.eval_share).round() as usize).min(pairs.len().saturating_sub(1));
    let (eval_idx, train_idx) = order.split_at(held);
    let (mut train_idx, eval_idx) = (train_idx.to_vec(), eval_idx.to_vec());
    let b = opts.batch.max(1);
    let s = pairs.iter().map(|p| p.0.len()).max().unwrap_or(1).max(1);
    let t = pairs.iter().map(|p| p.1.len()).max().unwrap_or(1).max(1);
    let (pad, start) = (model.cfg.pad_token_id, model.cfg.decoder_start_token_id);
    let hyper = AdamW { lr: opts.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: opts.weight_decay };
    let layout = model.param_layout().clone();
    let mut opt = Optimizer::new(be, &layout, hyper, default_decay)?;
    let mut grads = be.zeros_f32(layout.total)?;
    let mut acts = Activations::new(be, model, b, s, t)?;
    let total_steps = (opts.epochs * train_idx.len().div_ceil(b)).max(1);
    for epoch in 0..opts.epochs {
        rng.shuffle(&mut train_idx);
        let (mut sum, mut n) = (0.0f64, 0usize);
        for chunk in train_idx.chunks(b) {
            let rows: Vec<&Pair> = chunk.iter().map(|&i| &pairs[i]).collect();
            let batch = batch_of(pad, start, &rows, b, s, t);
            be.fill(B::view_mut(&mut grads), 0.0);
            sum += model.forward(be, &mut acts, &batch, true)?.unwrap_or(0.0) as f64;
            n += 1;
            model.backward(be, &mut acts, B::view_mut(&mut grads));
            let (_, factor) = clip_grad_norm(be, &grads, 1.0);
            // Linear decay from lr to 0 over all steps (the Trainer's default schedule).
            let lr = opts.lr * (1.0 - opt.step as f32 / total_steps as f32);
            let (params, master) = model.params_mut();
            opt.update(be, params, master, &grads, lr, factor);
        }
        let eval = if eval_idx.is_empty() {
            None
        } else {
            let (mut sum, mut n) = (0.0f64, 0usize);
            for chunk in eval_idx.chunks(b) {
                let rows: Vec<&Pair> = chunk.iter().map(|&i| &pairs[i]).collect();
                sum += model.forward(be, &mut acts, &batch_of(pad, start, &rows, b, s, t), false)?.unwrap_or(0.0) as f64;
                n += 1;
            }
            Some((sum / n as f64) as f32)
        };
        on_epoch((epoch, (sum / n.max(1) as f64) as f32, eval));
    }
    Ok(())
}
