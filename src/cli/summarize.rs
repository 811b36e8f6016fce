//! `hhi summarize`: T5 beam search (or greedy decoding) from texts, as
//! transformers' `generate` runs it with the folder's generation_config.json
//! unless flags override it; prints or writes JSONL, one line per input with
//! its top beams and their scores.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::generate::beam::EarlyStopping;
use hhi::generate::seq2seq::beam_search_t5;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::generation_config::GenerationDefaults;
use hhi::io::tokenizer::Tokenizer;
use hhi::models::ModelType;
use hhi::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["input", "file"]))]
pub struct Args {
    /// T5 model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// A text to summarize; repeat for several.
    #[arg(long)]
    input: Vec<String>,
    /// JSONL file: one object per line with the text under `--field`.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The JSONL field that holds the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Prepended to every text (default: the config's summarization prefix,
    /// e.g. `summarize: `, or none).
    #[arg(long)]
    prefix: Option<String>,
    /// Beam width (default: generation_config.json's num_beams, else 4).
    #[arg(long)]
    num_beams: Option<usize>,
    /// Scores are divided by length^penalty (default: generation_config.json, else 1.0).
    #[arg(long)]
    length_penalty: Option<f32>,
    /// Never repeat an n-gram of this size (default: generation_config.json, else 0).
    #[arg(long)]
    no_repeat_ngram: Option<usize>,
    /// New tokens at most (default: generation_config.json's max_new_tokens or max_length − 1).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Beams to print per input, best first.
    #[arg(long, default_value_t = 1)]
    top_k_beams: usize,
    /// Inputs per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Write JSONL here (atomically) instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| summarize_on(be, &a))
}

/// The texts to summarize: `--input`s, or the `--field` of each JSONL line.
fn read_inputs(a: &Args) -> Result<Vec<String>> {
    let Some(path) = &a.file else { return Ok(a.input.clone()) };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let json: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::data(path, format!("line {}: {e}", n + 1)))?;
        let field = json.get(&a.field).and_then(|v| v.as_str()).ok_or_else(|| Error::data(path, format!("line {}: no string field `{}`", n + 1, a.field)))?;
        out.push(field.to_string());
    }
    Ok(out)
}

fn summarize_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let dir = ModelDir::open_kind(&a.model, &[ModelType::T5], "summarize")?;
    let mut model = dir.load_t5(be, None)?;
    model.drop_master();
    let tok = Tokenizer::load(&a.model.join(TOKENIZER))?;
    let defaults = GenerationDefaults::load(&a.model)?;
    let prefix = a.prefix.clone().unwrap_or_else(|| dir.json.pointer("/task_specific_params/summarization/prefix").and_then(|p| p.as_str()).unwrap_or_default().to_string());
    let num_beams = a.num_beams.unwrap_or(if defaults.num_beams > 1 { defaults.num_beams } else { 4 });
    let mut cfg = defaults.beam(num_beams, 1, model.cfg.eos_token_id);
    cfg.length_penalty = a.length_penalty.unwrap_or(cfg.length_penalty);
    cfg.no_repeat_ngram_size = a.no_repeat_ngram.unwrap_or(cfg.no_repeat_ngram_size);
    cfg.max_new_tokens = a.max_new_tokens.unwrap_or(cfg.max_new_tokens);
    cfg.num_return = a.top_k_beams.clamp(1, num_beams);
    if a.top_k_beams > 1 && cfg.early_stopping == EarlyStopping::False {
        eprintln!("note: with early_stopping false, beams below the best may stop before their best continuation (transformers behaves the same)");
    }
    let texts = read_inputs(a)?;
    let bar = if a.file.is_some() { ProgressBar::new(texts.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} inputs, {per_sec}, eta {eta}").expect("template"));
    let mut lines = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(a.batch.max(1)) {
        let ids = chunk.iter().map(|t| tok.encode_with_special(&format!("{prefix}{t}"))).collect::<Result<Vec<_>>>()?;
        let beams = beam_search_t5(be, &model, &ids, &cfg)?;
        for (text, hyps) in chunk.iter().zip(beams) {
            let summaries = hyps.iter().map(|h| Ok(serde_json::json!({"text": tok.decode(&h.tokens)?.trim(), "score": h.score}))).collect::<Result<Vec<_>>>()?;
            lines.push(serde_json::json!({"input": text, "summaries": summaries}).to_string());
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    match &a.out {
        Some(path) => write_atomic(path, (lines.join("\n") + "\n").as_bytes()),
        None => {
            lines.iter().for_each(|l| say!("{l}"));
            Ok(())
        }
    }
}
