//! `hhi train-clip`: contrastive CLIP training on image–caption JSONL
//! (pipeline/clip_train.rs), from a model folder or from a config with a
//! tokenizer (random initialisation). Images that do not decode are named,
//! skipped and counted.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::checkpoint::{save_model, ModelDir, TOKENIZER};
use hhi::io::image::ImageProcessor;
use hhi::io::tokenizer::Tokenizer;
use hhi::models::clip::{Clip, ClipConfig};
use hhi::models::ModelType;
use hhi::pipeline::captioner::read_image_texts;
use hhi::pipeline::clip_train::{train_clip, ClipOptions};
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("start").required(true).args(["model", "config"]))]
pub struct Args {
    /// CLIP folder to fine-tune (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A CLIP config.json to train from random initialisation (needs --tokenizer).
    #[arg(long, requires = "tokenizer")]
    config: Option<PathBuf>,
    /// tokenizer.json for --config (special tokens added as the tokenizer defines them).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Image–caption pairs, JSONL: {"image": PATH, "caption": TEXT}.
    #[arg(long)]
    pairs: PathBuf,
    /// Output folder: config.json, model.safetensors, tokenizer.json.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f32,
    #[arg(long, default_value_t = 0.2)]
    weight_decay: f32,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| run_on(be, &a))
}

fn run_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let (mut model, json, tok_path, proc) = match (&a.model, &a.config) {
        (Some(dir), _) => {
            let md = ModelDir::open_kind(dir, &[ModelType::Clip], "--model")?;
            let model = md.load_clip(be, None)?;
            let proc = ImageProcessor::load(dir, model.cfg.vision_config.image_size)?;
            (model, md.json.clone(), dir.join(TOKENIZER), proc)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::config(path, format!("malformed JSON: {e}")))?;
            let model = Clip::init_random(be, ClipConfig::from_json(path, &json)?, a.seed)?;
            let proc = ImageProcessor::clip_default(model.cfg.vision_config.image_size);
            (model, json, a.tokenizer.clone().expect("clap requires it"), proc)
        }
        (None, None) => unreachable!("clap requires --model or --config"),
    };
    let tok = Tokenizer::load(&tok_path)?;
    let (max, eos) = (model.cfg.text_config.max_position_embeddings, model.cfg.text_config.eos_token_id);
    let mut pairs = Vec::new();
    let mut failed = 0;
    let records = read_image_texts(&a.pairs, "caption")?;
    for (image, caption) in &records {
        match proc.preprocess_file(image) {
            Ok(_) => pairs.push((image.clone(), tok.encode_with_eos(caption, eos, max)?)),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e} (skipped)");
            }
        }
    }
    let opts = ClipOptions { epochs: a.epochs, batch: a.batch, lr: a.lr, weight_decay: a.weight_decay, warmup: a.warmup, seed: a.seed };
    let longest = pairs.iter().map(|p| p.1.len()).max().unwrap_or(0);
    eprintln!("training CLIP ({} parameters) on {} pairs (texts padded to {longest} tokens), {} epochs, {}", model.num_params(), pairs.len(), a.epochs, be.name());
    let mut log = Vec::new();
    train_clip(be, &mut model, &proc, &pairs, &opts, |epoch, loss| {
        eprintln!("epoch {:>3}  loss {loss:.4}", epoch + 1);
        log.push(serde_json::json!({"epoch": epoch + 1, "loss": loss}));
    })?;
    save_model(be, &model, &a.out, &json)?;
    std::fs::copy(&tok_path, a.out.join(TOKENIZER)).map_err(|e| Error::io(a.out.join(TOKENIZER), e))?;
    if let Some(dir) = &a.model {
        let pre = dir.join("preprocessor_config.json");
        if pre.exists() {
            std::fs::copy(&pre, a.out.join("preprocessor_config.json")).map_err(|e| Error::io(&pre, e))?;
        }
    }
    super::write_epoch_log(&a.out, &log)?;
    eprintln!("saved {}", a.out.display());
    match failed {
        0 => Ok(()),
        n => Err(Error::Invalid(format!("{n} of {} images could not be read (see above); CLIP was trained on the rest", records.len()))),
    }
}
