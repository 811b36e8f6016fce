//! `hhi train-summarizer`: distils the caption → interaction summarizer by
//! fine-tuning a T5 folder on (caption, label) pairs (pipeline/summarizer.rs)
//! and saves it with the base folder's tokenizer and generation config.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::checkpoint::{save_model, ModelDir, TOKENIZER};
use hhi::io::tokenizer::Tokenizer;
use hhi::models::ModelType;
use hhi::pipeline::summarizer::{read_pairs, tokenize, train_summarizer, SummarizerOptions};
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The T5 to start from (config.json, model.safetensors, tokenizer.json);
    /// a folder with only config.json starts from a seeded random initialisation.
    #[arg(long)]
    t5: PathBuf,
    /// tokenizer.json to use instead of the folder's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Training pairs, JSONL, one object per line with the two fields below.
    #[arg(long)]
    pairs: PathBuf,
    /// Output folder: config.json, model.safetensors, tokenizer.json (and generation_config.json if the base has one).
    #[arg(long)]
    out: PathBuf,
    /// The field holding the input text.
    #[arg(long, default_value = "caption")]
    source_field: String,
    /// The field holding the target text.
    #[arg(long, default_value = "label")]
    target_field: String,
    /// Prepended to every input.
    #[arg(long, default_value = "summarize: ")]
    prefix: String,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 5e-5)]
    lr: f32,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Share of the pairs held out for an evaluation loss after each epoch.
    #[arg(long, default_value_t = 0.05)]
    eval_share: f64,
    /// Input tokens kept per caption (EOS included).
    #[arg(long, default_value_t = 128)]
    max_source_tokens: usize,
    /// Target tokens kept per label (EOS included).
    #[arg(long, default_value_t = 32)]
    max_target_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| run_on(be, &a))
}

fn run_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let dir = ModelDir::open_kind(&a.t5, &[ModelType::T5], "--t5")?;
    let tok_path = a.tokenizer.clone().unwrap_or_else(|| a.t5.join(TOKENIZER));
    let tok = Tokenizer::load(&tok_path)?;
    if !dir.has_weights() {
        eprintln!("{}: no model.safetensors, starting from a random initialisation (seed {})", a.t5.display(), a.seed);
    }
    let mut model = dir.load_t5(be, Some(a.seed))?;
    let pairs = tokenize(&tok, &read_pairs(&a.pairs, &a.source_field, &a.target_field)?, &a.prefix, model.cfg.eos_token_id, a.max_source_tokens, a.max_target_tokens)?;
    let opts = SummarizerOptions { epochs: a.epochs, batch: a.batch, lr: a.lr, weight_decay: a.weight_decay, eval_share: a.eval_share, seed: a.seed };
    eprintln!("fine-tuning {} ({} parameters) on {} pairs, {} epochs, {}", a.t5.display(), model.num_params(), pairs.len(), a.epochs, be.name());
    let mut log = Vec::new();
    train_summarizer(be, &mut model, &pairs, &opts, |(epoch, loss, eval)| {
        match eval {
            Some(e) => eprintln!("epoch {:>3}  loss {loss:.4}  held-out loss {e:.4}", epoch + 1),
            None => eprintln!("epoch {:>3}  loss {loss:.4}", epoch + 1),
        }
        log.push(serde_json::json!({"epoch": epoch + 1, "loss": loss, "eval_loss": eval}));
    })?;
    save_model(be, &model, &a.out, &dir.json)?;
    std::fs::copy(&tok_path, a.out.join(TOKENIZER)).map_err(|e| Error::io(a.out.join(TOKENIZER), e))?;
    let generation = a.t5.join("generation_config.json");
    if generation.exists() {
        std::fs::copy(&generation, a.out.join("generation_config.json")).map_err(|e| Error::io(&generation, e))?;
    }
    super::write_epoch_log(&a.out, &log)?;
    eprintln!("saved {}", a.out.display());
    Ok(())
}
