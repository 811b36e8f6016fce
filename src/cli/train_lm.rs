//! `hhi train-lm`: train a GPT-2 from a config (random init) or fine-tune a
//! model folder on text/JSONL, with a progress bar, a JSONL loss log and
//! atomic checkpoints; `--resume` continues a run exactly where its last
//! checkpoint left it.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::checkpoint::{ModelDir, CONFIG, TOKENIZER};
use hhi::io::dataset::read_documents;
use hhi::io::tokenizer::{Tokenizer, END_OF_TEXT};
use hhi::models::gpt2::Gpt2;
use hhi::models::read_model_type;
use hhi::train::data::TokenData;
use hhi::train::lm::{train, TrainConfig, Trainer};
use hhi::train::state::{TrainState, TRAIN_STATE};
use hhi::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("init").required(true).args(["model", "config", "resume"]))]
pub struct Args {
    /// Model folder to fine-tune (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A GPT-2 config.json to train from random initialisation.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training text: plain UTF-8 (one document per line) or JSONL with a `text` field.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: config.json, model.safetensors, tokenizer.json, train_state.safetensors, log.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// tokenizer.json to use; by default the model folder's, or a byte-level BPE trained on --data.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Continue the run saved in --out (same data order and optimizer state).
    #[arg(long)]
    resume: bool,
    /// Optimisation steps in the whole run.
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    /// Sequences per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per training window.
    #[arg(long, default_value_t = 64)]
    seq: usize,
    /// Peak learning rate (linear warmup, then cosine decay to 10%).
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// AdamW decoupled weight decay, on 2-D weights only.
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f32,
    /// Global gradient-norm clip (0 disables).
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Held-out loss and checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 100)]
    eval_every: u64,
    /// Seed of the initialisation and the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// End this invocation after N more steps, checkpointed; `--resume` goes on
    /// (for time-boxed or preemptible runs).
    #[arg(long)]
    stop_after: Option<u64>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    if a.batch == 0 || a.seq == 0 {
        return Err(Error::Invalid("--batch and --seq must be positive".into()));
    }
    hhi::on_device!(a.device.device, a.device.dtype(), |be| train_on(be, &a))
}

fn train_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let source = if a.resume { a.out.clone() } else { a.model.clone().unwrap_or_default() };
    let (model, tokenizer, original) = if a.resume || a.model.is_some() {
        let dir = ModelDir::open(&source)?;
        let tok = Tokenizer::load(&a.tokenizer.clone().unwrap_or(source.join(TOKENIZER)))?;
        let model = dir.load_gpt2(be, None)?;
        (model, tok, Some(dir.json))
    } else {
        let path = a.config.clone().unwrap_or_default();
        let (json, mt) = read_model_type(&path)?;
        if !mt.is_causal_lm() {
            return Err(Error::config(&path, "train-lm trains GPT-2 and GPT-Neo models"));
        }
        let mut cfg = hhi::models::causal_lm_config(&path, &json, mt)?;
        let tok = match &a.tokenizer {
            Some(p) => Tokenizer::load(p)?,
            None => {
                eprintln!("training a byte-level BPE tokenizer ({} tokens) on {}", cfg.vocab_size, a.data.display());
                let tok = Tokenizer::train_bpe(std::slice::from_ref(&a.data), cfg.vocab_size)?;
                let eot = tok.token_id(END_OF_TEXT);
                (cfg.bos_token_id, cfg.eos_token_id) = (eot, eot);
                cfg.vocab_size = tok.vocab_size();
                tok
            }
        };
        (Gpt2::init_random(be, cfg, a.seed)?, tok, Some(json))
    };
    if tokenizer.vocab_size() > model.cfg.vocab_size {
        return Err(Error::Invalid(format!("the tokenizer has {} tokens but the model's vocab_size is {}", tokenizer.vocab_size(), model.cfg.vocab_size)));
    }
    let eot = tokenizer.token_id(END_OF_TEXT).or(model.cfg.eos_token_id).unwrap_or(0);
    let docs = read_documents(&a.data)?;
    let docs = docs.iter().map(|d| tokenizer.encode(d)).collect::<Result<Vec<_>>>()?;
    let data = TokenData::new(docs, eot, 0.05, a.seq).map_err(|e| Error::data(&a.data, e.to_string()))?;
    eprintln!("{} parameters, {} training tokens, {} held out, on {}", model.num_params(), data.train.len(), data.eval.len(), be.name());

    let cfg = TrainConfig {
        steps: a.steps,
        batch: a.batch,
        seq: a.seq,
        lr: a.lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        clip: a.clip,
        eval_every: a.eval_every,
        eval_batches: 4,
        seed: a.seed,
        stop_at: None,
    };
    let mut trainer = Trainer::new(be, model, cfg)?;
    if a.resume {
        let state = TrainState::load(&a.out.join(TRAIN_STATE), trainer.model.num_params())?;
        eprintln!("resuming at step {}", state.step);
        truncate_log(&a.out.join("log.jsonl"), state.step)?;
        trainer.restore(state)?;
    } else {
        tokenizer.save(&a.out.join(TOKENIZER))?;
    }
    trainer.set_stop_at(a.stop_after.map(|n| trainer.opt.step + n));
    let bar = ProgressBar::new(a.steps).with_position(trainer.opt.step);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}").expect("valid template"));
    train(&mut trainer, &data, &a.out, original.as_ref(), |s| {
        let eval = s.eval_loss.map(|e| format!(" eval {e:.4}")).unwrap_or_default();
        bar.set_message(format!("loss {:.4}{eval} lr {:.2e} {:.0} tok/s", s.loss, s.lr, s.tokens_per_s));
        if s.eval_loss.is_some() {
            let line = format!("step {:>6}  loss {:.4}{eval}", s.step, s.loss);
            // Without a terminal the bar is hidden, and so is its println.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
        bar.set_position(s.step);
    })?;
    bar.finish();
    if let Some(memory) = be.memory() {
        eprintln!("{memory}");
    }
    eprintln!("saved {} (and {})", a.out.join(CONFIG).display(), TRAIN_STATE);
    Ok(())
}

/// Drops log entries past `step` (they are about to be recomputed).
fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String =
        text.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= step)).map(|l| format!("{l}\n")).collect();
    hhi::io::atomic::write_atomic(path, kept.as_bytes())
}
