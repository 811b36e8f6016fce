//! `hhi embed`: CLIP embeddings of images (preprocessed as
//! CLIPImageProcessor does, from the folder's preprocessor_config.json) or
//! of texts (the folder's tokenizer.json), as JSONL or safetensors. An image
//! that does not decode is reported on stderr and skipped; the others are
//! written, and the exit status says that something was skipped.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::image::ImageProcessor;
use hhi::io::tokenizer::Tokenizer;
use hhi::models::clip::{Clip, TextActs, VisionActs};
use hhi::models::ModelType;
use hhi::tensor::Tensor;
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["image", "text"]))]
pub struct Args {
    /// CLIP model folder (config.json, model.safetensors; tokenizer.json for
    /// texts; preprocessor_config.json, else CLIP's defaults, for images).
    #[arg(long)]
    model: PathBuf,
    /// Image files (JPEG, PNG, WebP).
    #[arg(long, num_args = 1..)]
    image: Vec<PathBuf>,
    /// Texts.
    #[arg(long, num_args = 1..)]
    text: Vec<String>,
    /// L2-normalise (CLIPModel's image_embeds/text_embeds); default: the
    /// projected features (get_image_features / get_text_features).
    #[arg(long)]
    normalize: bool,
    /// Output file: .jsonl, or .safetensors (`embeddings` [N, P] and `index`,
    /// the input position of each row). Default: JSONL on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Inputs per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| embed_on(be, &a))
}

/// One embedded input: its position among the inputs, its name, the vector.
type Row = (usize, String, Vec<f32>);

fn embed_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let dir = ModelDir::open_kind(&a.model, &[ModelType::Clip], "embed")?;
    let mut model = dir.load_clip(be, None)?;
    model.drop_master();
    let (rows, failed) = if a.image.is_empty() { (embed_texts(be, &model, a)?, 0) } else { embed_images(be, &model, a)? };
    let p = model.cfg.projection_dim;
    let rows: Vec<Row> = rows.into_iter().map(|(i, name, v)| (i, name, if a.normalize { normalised(&v) } else { v })).collect();
    let kind = if a.image.is_empty() { "text" } else { "image" };
    match &a.out {
        Some(path) if path.extension().is_some_and(|e| e == "safetensors") => {
            let flat: Vec<f32> = rows.iter().flat_map(|r| r.2.iter().copied()).collect();
            let index: Vec<i64> = rows.iter().map(|r| r.0 as i64).collect();
            let map = [("embeddings".to_string(), Tensor::f32(vec![rows.len(), p], flat)), ("index".to_string(), Tensor::i64(vec![rows.len()], index))].into_iter().collect();
            hhi::io::safetensors::save(path, &map)?;
        }
        out => {
            let lines: Vec<String> = rows.iter().map(|(_, name, v)| serde_json::json!({ kind: name, "embedding": v }).to_string()).collect();
            match out {
                Some(path) => write_atomic(path, (lines.join("\n") + "\n").as_bytes())?,
                None => lines.iter().for_each(|l| say!("{l}")),
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::Invalid(format!("{n} of {} images could not be read (see above); the others were embedded", a.image.len()))),
    }
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / n).collect()
}

/// Embeds every image that decodes; returns the rows and how many failed.
fn embed_images<B: Backend>(be: &B, model: &Clip<B>, a: &Args) -> Result<(Vec<Row>, usize)> {
    let v = &model.cfg.vision_config;
    let proc = ImageProcessor::load(&a.model, v.image_size)?;
    let mut good: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut failed = 0;
    for (i, path) in a.image.iter().enumerate() {
        match proc.preprocess_file(path) {
            Ok(px) if px.len() == v.num_channels * v.image_size * v.image_size => good.push((i, px)),
            Ok(px) => {
                failed += 1;
                eprintln!(
                    "error: {}: preprocessing gives {} values, the model takes {}×{}² (check preprocessor_config.json)",
                    path.display(),
                    px.len(),
                    v.num_channels,
                    v.image_size
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let mut rows = Vec::with_capacity(good.len());
    for chunk in good.chunks(a.batch.max(1)) {
        let mut acts = VisionActs::new(be, model, chunk.len())?;
        let pixels: Vec<f32> = chunk.iter().flat_map(|(_, px)| px.iter().copied()).collect();
        model.vision_forward(be, &mut acts, &pixels)?;
        let embeds = be.download(B::view(&acts.embeds))?;
        for ((i, _), e) in chunk.iter().zip(embeds.chunks(model.cfg.projection_dim)) {
            rows.push((*i, a.image[*i].display().to_string(), e.to_vec()));
        }
    }
    Ok((rows, failed))
}

/// Embeds the texts, padded per batch to the longest (truncated to the
/// model's positions, keeping the final EOS).
fn embed_texts<B: Backend>(be: &B, model: &Clip<B>, a: &Args) -> Result<Vec<Row>> {
    let tok = Tokenizer::load(&a.model.join(TOKENIZER))?;
    let max = model.cfg.text_config.max_position_embeddings;
    let pad = model.cfg.text_config.eos_token_id.unwrap_or(0) as i32;
    let mut rows = Vec::with_capacity(a.text.len());
    for (c, chunk) in a.text.chunks(a.batch.max(1)).enumerate() {
        // As hhi train-clip encodes captions: ending with EOS, where the text
        // tower pools (a byte-level BPE without a post-processor adds none).
        let eos = model.cfg.text_config.eos_token_id;
        let ids: Vec<Vec<u32>> = chunk.iter().map(|t| tok.encode_with_eos(t, eos, max)).collect::<Result<_>>()?;
        let t = ids.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut flat = vec![pad; chunk.len() * t];
        let mut mask = vec![0f32; chunk.len() * t];
        for (r, x) in ids.iter().enumerate() {
            for (j, &id) in x.iter().enumerate() {
                flat[r * t + j] = id as i32;
                mask[r * t + j] = 1.0;
            }
        }
        let mut acts = TextActs::new(be, model, chunk.len(), t)?;
        model.text_forward(be, &mut acts, &flat, Some(&mask))?;
        let embeds = be.download(B::view(&acts.embeds))?;
        for (r, e) in embeds.chunks(model.cfg.projection_dim).enumerate() {
            rows.push((c * a.batch.max(1) + r, chunk[r].clone(), e.to_vec()));
        }
    }
    Ok(rows)
}
