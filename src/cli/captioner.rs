//! `hhi train-captioner` and `hhi predict`: the method's ClipCap captioner
//! (pipeline/captioner.rs) from the command line. Images that do not decode
//! are named on stderr, skipped and counted; the exit status then says so.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{save_clipcap, ModelDir, TOKENIZER};
use hhi::io::image::ImageProcessor;
use hhi::io::tokenizer::Tokenizer;
use hhi::models::clip::Clip;
use hhi::models::clipcap::{ClipCap, ClipCapConfig};
use hhi::models::ModelType;
use hhi::nn::Parameters;
use hhi::pipeline::captioner::{self as cap, ImageItem, TrainOptions};
use hhi::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Train the ClipCap captioner (CLIP prefix → GPT-2) on pseudo-labelled images.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// CLIP model folder (frozen; its projected image features are the prefix input).
    #[arg(long)]
    clip: PathBuf,
    /// GPT-2 model folder with tokenizer.json (the captioner's language model).
    #[arg(long)]
    gpt2: PathBuf,
    /// Pseudo-labels, JSONL: {"image": PATH, "label": TEXT, "weight": W}.
    #[arg(long)]
    pseudo_labels: PathBuf,
    /// Output folder: config.json, model.safetensors, tokenizer.json.
    #[arg(long)]
    out: PathBuf,
    /// Prefix embeddings per image.
    #[arg(long, default_value_t = 10)]
    prefix_length: usize,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 1e-5)]
    lr: f32,
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f32,
    /// Caption tokens kept per label (EOS included).
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train only the mapping MLP and keep GPT-2 frozen (default: both train, as in the method).
    #[arg(long)]
    only_prefix: bool,
    #[command(flatten)]
    device: DeviceArg,
}

/// Predict interactions for images with a trained captioner.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("inputs").required(true).args(["images", "manifest"]))]
pub struct PredictArgs {
    /// Captioner folder (from train-captioner).
    #[arg(long)]
    captioner: PathBuf,
    /// The CLIP model folder the captioner was trained with.
    #[arg(long)]
    clip: PathBuf,
    /// Image files.
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// JSONL manifest: {"id": ID, "image": PATH}.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Output JSONL: {"id", "image", "predictions": [{"text", "score"}]}. A
    /// rerun keeps the lines already there and predicts only the rest.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 32)]
    beams: usize,
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    /// Predictions kept per image.
    #[arg(long, default_value_t = 8)]
    keep: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn train(a: TrainArgs) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| train_on(be, &a))
}

pub fn predict(a: PredictArgs) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| predict_on(be, &a))
}

fn load_clip<B: Backend>(be: &B, dir: &Path) -> Result<(Clip<B>, ImageProcessor)> {
    let clip_dir = ModelDir::open_kind(dir, &[ModelType::Clip], "--clip")?;
    let mut clip = clip_dir.load_clip(be, None)?;
    clip.drop_master();
    let proc = ImageProcessor::load(dir, clip.cfg.vision_config.image_size)?;
    Ok((clip, proc))
}

/// Embeddings of the images that decode, and how many did not.
fn embed<B: Backend>(be: &B, clip: &Clip<B>, proc: &ImageProcessor, images: &[PathBuf], batch: usize) -> Result<(Vec<Option<Vec<f32>>>, usize)> {
    let mut failed = 0;
    let rows = cap::embed_images(be, clip, proc, images, batch)?
        .into_iter()
        .map(|r| {
            r.map_err(|e| {
                failed += 1;
                eprintln!("error: {e} (skipped)");
            })
            .ok()
        })
        .collect();
    Ok((rows, failed))
}

fn train_on<B: Backend>(be: &B, a: &TrainArgs) -> Result<()> {
    let labelled = cap::read_labelled(&a.pseudo_labels)?;
    let gpt_dir = ModelDir::open_kind(&a.gpt2, &[ModelType::Gpt2], "--gpt2")?;
    let tok = Tokenizer::load(&a.gpt2.join(TOKENIZER))?;
    let gpt = gpt_dir.load_gpt2(&hhi::backend::cpu::Cpu, None)?;
    let eos = gpt.cfg.eos_token_id.ok_or_else(|| Error::config(a.gpt2.join("config.json"), "no eos_token_id (captions end with it)"))?;
    let (clip, proc) = load_clip(be, &a.clip)?;
    eprintln!("embedding {} images with CLIP ({})", labelled.len(), be.name());
    let paths: Vec<PathBuf> = labelled.iter().map(|l| l.image.clone()).collect();
    let (embeddings, failed) = embed(be, &clip, &proc, &paths, a.batch)?;
    let mut examples = Vec::new();
    for (l, e) in labelled.iter().zip(embeddings) {
        if let Some(e) = e {
            let mut tokens = cap::caption_tokens(&tok, &l.label, eos)?;
            tokens.truncate(a.max_tokens);
            examples.push((e, tokens, l.weight));
        }
    }
    let cfg = ClipCapConfig::new(a.prefix_length, clip.cfg.projection_dim, gpt.cfg.clone());
    let gpt_flat = gpt.full_precision().clone();
    let mut model = ClipCap::from_gpt2(be, cfg, &gpt_flat, a.seed)?;
    let opts = TrainOptions { epochs: a.epochs, batch: a.batch, lr: a.lr, weight_decay: a.weight_decay, max_tokens: a.max_tokens, seed: a.seed, only_prefix: a.only_prefix };
    eprintln!("training the captioner: {} examples, {} parameters, {} epochs", examples.len(), model.num_params(), a.epochs);
    let mut log = Vec::new();
    cap::train_captioner(be, &mut model, &examples, &opts, |(epoch, loss)| {
        eprintln!("epoch {:>3}  loss {loss:.4}", epoch + 1);
        log.push(serde_json::json!({"epoch": epoch + 1, "loss": loss}));
    })?;
    save_clipcap(be, &model, &a.out)?;
    std::fs::copy(a.gpt2.join(TOKENIZER), a.out.join(TOKENIZER)).map_err(|e| Error::io(a.out.join(TOKENIZER), e))?;
    super::write_epoch_log(&a.out, &log)?;
    eprintln!("saved {}", a.out.display());
    match failed {
        0 => Ok(()),
        n => Err(Error::Invalid(format!("{n} of {} images could not be read (see above); the captioner was trained on the rest", labelled.len()))),
    }
}

/// Ids already present in an earlier run's output.
fn done_ids(out: &Path) -> Result<(Vec<String>, HashSet<String>)> {
    let Ok(text) = std::fs::read_to_string(out) else { return Ok((Vec::new(), HashSet::new())) };
    let mut lines = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::data(out, format!("line {}: not JSON ({e}); remove the file to start over", i + 1)))?;
        if let Some(id) = v.get("id").and_then(|x| x.as_str()) {
            ids.insert(id.to_string());
            lines.push(line.to_string());
        }
    }
    Ok((lines, ids))
}

fn predict_on<B: Backend>(be: &B, a: &PredictArgs) -> Result<()> {
    let items: Vec<ImageItem> = match &a.manifest {
        Some(m) => cap::read_manifest(m)?,
        None => a.images.iter().map(|p| ImageItem { id: p.display().to_string(), image: p.clone() }).collect(),
    };
    let dir = ModelDir::open_kind(&a.captioner, &[ModelType::ClipCap], "--captioner")?;
    let mut model = dir.load_clipcap(be)?;
    model.drop_master();
    let tok = Tokenizer::load(&a.captioner.join(TOKENIZER))?;
    let (clip, proc) = load_clip(be, &a.clip)?;
    if clip.cfg.projection_dim != model.cfg.prefix_size {
        return Err(Error::config(
            a.clip.join("config.json"),
            format!("projection_dim {} differs from the captioner's prefix_size {}", clip.cfg.projection_dim, model.cfg.prefix_size),
        ));
    }
    let search = cap::predict_config(a.beams, a.max_tokens, a.keep, model.cfg.gpt2.eos_token_id);
    let (mut lines, done) = done_ids(&a.out)?;
    let todo: Vec<&ImageItem> = items.iter().filter(|it| !done.contains(&it.id)).collect();
    if !done.is_empty() {
        eprintln!("{}: {} images already predicted, {} to go", a.out.display(), done.len(), todo.len());
    }
    let mut failed = 0;
    for (n, chunk) in todo.chunks(a.batch.max(1)).enumerate() {
        let paths: Vec<PathBuf> = chunk.iter().map(|it| it.image.clone()).collect();
        let (embeddings, bad) = embed(be, &clip, &proc, &paths, a.batch)?;
        failed += bad;
        let good: Vec<(&ImageItem, Vec<f32>)> = chunk.iter().zip(embeddings).filter_map(|(it, e)| e.map(|e| (*it, e))).collect();
        let flat: Vec<f32> = good.iter().flat_map(|(_, e)| e.iter().copied()).collect();
        let captions = if good.is_empty() { Vec::new() } else { cap::predict(be, &model, &tok, &flat, &search)? };
        for ((it, _), preds) in good.iter().zip(captions) {
            let preds: Vec<serde_json::Value> = preds.iter().map(|(text, score)| serde_json::json!({"text": text, "score": score})).collect();
            lines.push(serde_json::json!({"id": it.id, "image": it.image.display().to_string(), "predictions": preds}).to_string());
        }
        // Everything so far, atomically: a kill loses at most this batch.
        write_atomic(&a.out, (lines.join("\n") + "\n").as_bytes())?;
        eprintln!("predicted {} of {} images", (n * a.batch.max(1) + chunk.len()).min(todo.len()), todo.len());
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::Invalid(format!("{n} of {} images could not be read (see above); the others were predicted", todo.len()))),
    }
}
