//! Stages 6 and 7 of the method: training the ClipCap captioner on
//! pseudo-labelled images, and predicting interactions for new images.
//! Images are embedded once by a frozen CLIP (its projected image features,
//! as `get_image_features`); captions are the label followed by GPT-2's EOS.
//!
//! Pseudo-label JSONL, one object per line: `{"image": PATH, "label": TEXT,
//! "weight": W}` (`weight` optional, default 1; relative paths are relative
//! to the JSONL file's folder). Manifest JSONL for prediction: `{"id": ID,
//! "image": PATH}` (`id` optional: the path then).

use crate::backend::{AdamW, Backend};
use crate::generate::beam::{BeamConfig, EarlyStopping, Hypothesis};
use crate::io::image::ImageProcessor;
use crate::io::jsonl::{read_objects, string_field};
use crate::io::tokenizer::Tokenizer;
use crate::models::clip::{Clip, VisionActs};
use crate::models::clipcap::{caption_beams, CaptionBatch, ClipCap, ClipCapActs};
use crate::models::gpt2::Mode;
use crate::nn::Parameters;
use crate::rng::Rng;
use crate::train::optimizer::{clip_grad_norm, default_decay, Optimizer};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// One training example: an image, its (pseudo-)label and its sample weight.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub image: PathBuf,
    pub label: String,
    pub weight: f32,
}

/// One image to caption.
#[derive(Clone, Debug)]
pub struct ImageItem {
    pub id: String,
    pub image: PathBuf,
}

fn resolve(path: &Path, image: &str) -> PathBuf {
    let p = PathBuf::from(image);
    if p.is_absolute() {
        p
    } else {
        path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// (image, text) pairs of a JSONL file: `{"image": PATH, FIELD: TEXT}` per line.
pub fn read_image_texts(path: &Path, field: &str) -> Result<Vec<(PathBuf, String)>> {
    read_objects(path)?.into_iter().map(|(line, o)| Ok((resolve(path, &string_field(path, line, &o, "image")?), string_field(path, line, &o, field)?))).collect()
}

/// Reads pseudo-labels (see the module header).
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>> {
    read_objects(path)?
        .into_iter()
        .map(|(line, o)| {
            let weight = match o.get("weight") {
                None => 1.0,
                Some(w) => {
                    w.as_f64().filter(|w| w.is_finite() && *w >= 0.0).ok_or_else(|| Error::data(path, format!("line {line}: `weight` must be a non-negative number")))? as f32
                }
            };
            Ok(Labelled { image: resolve(path, &string_field(path, line, &o, "image")?), label: string_field(path, line, &o, "label")?, weight })
        })
        .collect()
}

/// Reads a prediction manifest (see the module header).
pub fn read_manifest(path: &Path) -> Result<Vec<ImageItem>> {
    read_objects(path)?
        .into_iter()
        .map(|(line, o)| {
            let image = string_field(path, line, &o, "image")?;
            let id = o.get("id").map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_else(|| image.clone());
            Ok(ImageItem { id, image: resolve(path, &image) })
        })
        .collect()
}

/// CLIP image features of every image, `batch` at a time (only one batch of
/// pixels in memory); an image that does not decode gets its error (naming
/// the file) instead.
pub fn embed_images<B: Backend>(be: &B, clip: &Clip<B>, proc: &ImageProcessor, images: &[PathBuf], batch: usize) -> Result<Vec<Result<Vec<f32>>>> {
    let v = &clip.cfg.vision_config;
    let want = v.num_channels * v.image_size * v.image_size;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let mut pixels = Vec::new();
        let mut slots = Vec::new(); // per image: Ok(position among the decoded) or its error
        for path in chunk {
            match proc.preprocess_file(path) {
                Ok(px) if px.len() == want => {
                    slots.push(Ok(pixels.len() / want));
                    pixels.extend(px);
                }
                Ok(px) => slots.push(Err(Error::data(path, format!("preprocessing gives {} values, the CLIP model takes {want}", px.len())))),
                Err(e) => slots.push(Err(e)),
            }
        }
        let decoded = pixels.len() / want;
        let embeds = if decoded == 0 {
            Vec::new()
        } else {
            let mut acts = VisionActs::new(be, clip, decoded)?;
            clip.vision_forward(be, &mut acts, &pixels)?;
            be.download(B::view(&acts.embeds))?
        };
        let p = clip.cfg.projection_dim;
        out.extend(slots.into_iter().map(|slot| slot.map(|k| embeds[k * p..(k + 1) * p].to_vec())));
    }
    Ok(out)
}

/// Captioner training settings (defaults: the official code's).
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub max_tokens: usize,
    pub seed: u64,
    /// Train only the mapping MLP, GPT-2 frozen (ClipCap's `--only_prefix`).
    pub only_prefix: bool,
}

/// Per-epoch progress: (epoch, mean weighted loss).
pub type EpochLog = (usize, f32);

/// Trains `model` on (image embedding, caption tokens, weight) examples:
/// AdamW (weight decay on matrices) over every parameter, or over the MLP
/// alone with `only_prefix` (GPT-2's gradients are zeroed and it gets no
/// decay, so it stays exactly as it was), gradients clipped to norm 1,
/// shuffled batches of `opts.batch`.
pub fn train_captioner<B: Backend>(be: &B, model: &mut ClipCap<B>, examples: &[(Vec<f32>, Vec<u32>, f32)], opts: &TrainOptions, mut on_epoch: impl FnMut(EpochLog)) -> Result<()> {
    if examples.is_empty() {
        return Err(Error::Invalid("no training examples".into()));
    }
    let (b, t) = (opts.batch.max(1), opts.max_tokens.max(1));
    let hyper = AdamW { lr: opts.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: opts.weight_decay };
    let layout = model.param_layout().clone();
    // The MLP's four tensors come first in the layout; GPT-2 follows from here.
    let gpt_start = layout.specs.iter().find(|s| s.name.starts_with("gpt.")).map_or(layout.total, |s| s.offset);
    let frozen = |offset: usize| opts.only_prefix && offset >= gpt_start;
    let mut opt = Optimizer::new(be, &layout, hyper, |spec| default_decay(spec) && !frozen(spec.offset))?;
    let mut grads = be.zeros_f32(layout.total)?;
    let mut acts = ClipCapActs::new(be, model, b, t)?;
    let mut rng = Rng::new(opts.seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let size = model.cfg.prefix_size;
    for epoch in 0..opts.epochs {
        rng.shuffle(&mut order);
        let (mut total, mut batches) = (0.0f64, 0usize);
        for chunk in order.chunks(b) {
            // A short last batch is padded with rows that predict nothing.
            let mut batch = CaptionBatch { b, t, prefix: vec![0.0; b * size], tokens: vec![0; b * t], mask: vec![0.0; b * t], weights: Some(vec![0.0; b]) };
            for (r, &i) in chunk.iter().enumerate() {
                let (emb, tokens, weight) = &examples[i];
                batch.prefix[r * size..(r + 1) * size].copy_from_slice(emb);
                for (j, &tok) in tokens.iter().take(t).enumerate() {
                    batch.tokens[r * t + j] = tok as i32;
                    batch.mask[r * t + j] = 1.0;
                }
                if let Some(w) = batch.weights.as_mut() {
                    w[r] = *weight;
                }
            }
            be.fill(B::view_mut(&mut grads), 0.0);
            total += model.forward(be, &mut acts, &batch, Mode::Train)? as f64;
            batches += 1;
            model.backward(be, &mut acts, B::view_mut(&mut grads));
            if opts.only_prefix {
                be.fill(B::slice_mut(B::view_mut(&mut grads), gpt_start, layout.total - gpt_start), 0.0);
            }
            let (_, factor) = clip_grad_norm(be, &grads, 1.0);
            let (params, master) = model.params_mut();
            opt.update(be, params, master, &grads, opts.lr, factor);
        }
        on_epoch((epoch, (total / batches.max(1) as f64) as f32));
    }
    Ok(())
}

/// Caption tokens of a label: its tokens, then EOS.
pub fn caption_tokens(tok: &Tokenizer, label: &str, eos: u32) -> Result<Vec<u32>> {
    let mut ids = tok.encode(label)?;
    ids.push(eos);
    Ok(ids)
}

/// The method's prediction search: `beams` beams, at most `max_tokens`
/// tokens, summed log-probabilities (no length penalty), the best `keep`.
pub fn predict_config(beams: usize, max_tokens: usize, keep: usize, eos: Option<u32>) -> BeamConfig {
    BeamConfig {
        num_beams: beams,
        max_new_tokens: max_tokens,
        length_penalty: 0.0,
        early_stopping: EarlyStopping::True,
        no_repeat_ngram_size: 0,
        min_length: 0,
        min_new_tokens: 1,
        eos_token_id: eos,
        num_return: keep.min(beams),
    }
}

/// Captions of image embeddings, decoded: (text, summed log-probability), best first.
pub fn predict<B: Backend>(be: &B, model: &ClipCap<B>, tok: &Tokenizer, embeddings: &[f32], cfg: &BeamConfig) -> Result<Vec<Vec<(String, f32)>>> {
    let beams = caption_beams(be, model, embeddings, cfg)?;
    beams
        .into_iter()
        .map(|hyps| {
            hyps.into_iter()
                .map(|Hypothesis { tokens, score, .. }| {
                    let text: Vec<u32> = tokens.into_iter().take_while(|&x| Some(x) != cfg.eos_token_id).collect();
                    Ok((tok.decode(&text)?.trim().to_string(), score))
                })
                .collect()
        })
        .collect()
}
