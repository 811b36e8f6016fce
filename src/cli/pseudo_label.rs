//! `hhi pseudo-label`: weak captions → pseudo-labels with sample weights
//! (pipeline/pseudo_label.rs). Summaries are saved batch by batch in
//! `<out>.partial` (atomically), so a rerun after a kill continues where it
//! stopped; the weighted output is written once every caption is done.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::tokenizer::Tokenizer;
use hhi::models::ModelType;
use hhi::pipeline::pseudo_label::{finish, label_search, read_weak, summarize};
use hhi::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The distilled T5 summarizer (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    summarizer: PathBuf,
    /// Weak captions, JSONL: {"image": PATH, "caption": TEXT, ...}.
    #[arg(long)]
    weak: PathBuf,
    /// Pseudo-labels, JSONL: each kept input line plus "label" and "weight".
    #[arg(long)]
    out: PathBuf,
    /// Prepended to every caption.
    #[arg(long, default_value = "summarize: ")]
    prefix: String,
    /// Captions per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Stop after this many batches, leaving `<out>.partial` as a kill would
    /// (for time-boxed runs); a rerun continues.
    #[arg(long)]
    stop_after: Option<usize>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    hhi::on_device!(a.device.device, a.device.dtype(), |be| run_on(be, &a))
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Labels an earlier, interrupted run saved: input index → label.
fn read_partial(path: &Path, inputs: usize) -> Result<BTreeMap<usize, String>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(BTreeMap::new()) };
    let mut done = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::data(path, format!("line {}: {e} (delete the file to start over)", i + 1)))?;
        match (v["index"].as_u64(), v["label"].as_str()) {
            (Some(idx), Some(label)) if (idx as usize) < inputs => done.insert(idx as usize, label.to_string()),
            _ => return Err(Error::data(path, format!("line {}: not a saved summary of this input (delete the file to start over)", i + 1))),
        };
    }
    Ok(done)
}

fn run_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let records = read_weak(&a.weak)?;
    let dir = ModelDir::open(&a.summarizer)?;
    if dir.model_type != ModelType::T5 {
        return Err(Error::config(a.summarizer.join("config.json"), format!("--summarizer needs a T5 model, this is `{}`", dir.model_type.name())));
    }
    let mut t5 = dir.load_t5(be, None)?;
    t5.drop_master();
    let tok = Tokenizer::load(&a.summarizer.join(TOKENIZER))?;
    let search = label_search(t5.cfg.eos_token_id);
    let partial = partial_path(&a.out);
    let mut done = read_partial(&partial, records.len())?;
    let todo: Vec<usize> = (0..records.len()).filter(|i| !done.contains_key(i)).collect();
    if !done.is_empty() {
        eprintln!("{}: {} captions already summarized, {} to go", partial.display(), done.len(), todo.len());
    }
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} captions, {per_sec}, eta {eta}").expect("template"));
    for (n, chunk) in todo.chunks(a.batch.max(1)).enumerate() {
        if a.stop_after == Some(n) {
            bar.finish_and_clear();
            eprintln!("stopped after {n} batches; rerun to continue");
            return Ok(());
        }
        let captions: Vec<&str> = chunk.iter().map(|&i| records[i]["caption"].as_str().expect("checked when read")).collect();
        for (&i, label) in chunk.iter().zip(summarize(be, &t5, &tok, &captions, &a.prefix, &search)?) {
            done.insert(i, label);
        }
        let lines: Vec<String> = done.iter().map(|(i, l)| serde_json::json!({"index": i, "label": l}).to_string()).collect();
        write_atomic(&partial, (lines.join("\n") + "\n").as_bytes())?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let labelled: Vec<_> = records.into_iter().zip(done.into_values()).collect();
    let total = labelled.len();
    let kept = finish(labelled);
    let lines: Vec<String> = kept.iter().map(|r| serde_json::Value::Object(r.clone()).to_string()).collect();
    write_atomic(&a.out, (lines.join("\n") + if lines.is_empty() { "" } else { "\n" }).as_bytes())?;
    let _ = std::fs::remove_file(&partial);
    eprintln!("{}: {} of {total} captions gave a pseudo-label with an -ing word", a.out.display(), kept.len());
    Ok(())
}
