//! `hhi pseudo-label`: weak captions → pseudo-labels with sample weights
//! (pipeline/pseudo_label.rs). Summaries are saved batch by batch in
//! `<out>.partial` (pipeline/partial.rs), so a rerun after a kill continues
//! where it stopped; the weighted output is written once every caption is done.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::tokenizer::Tokenizer;
use hhi::models::ModelType;
use hhi::pipeline::partial::Partial;
use hhi::pipeline::pseudo_label::{finish, label_search, read_weak, summarize, Summary};
use hhi::pipeline::rules::has_gerund;
use hhi::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The distilled T5 summarizer (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    summarizer: PathBuf,
    /// Weak captions, JSONL: {"image": PATH, "caption": TEXT, ...}.
    #[arg(long)]
    weak: PathBuf,
    /// Pseudo-labels, JSONL: each kept input line plus "label", "score" and "weight".
    #[arg(long)]
    out: PathBuf,
    /// Prepended to every caption.
    #[arg(long, default_value = "summarize: ")]
    prefix: String,
    /// After the -ing filter, also drop this share (0 to 1) of the labels
    /// whose top beam scored lowest: weak captions that state no interaction
    /// still get a label, but a less confident one. 0 (the default) is the
    /// method's own setting; the demo uses 0.1.
    #[arg(long, default_value_t = 0.0, value_parser = share_in_unit_interval)]
    drop_least_confident: f64,
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

fn run_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let mut records = read_weak(&a.weak)?;
    rebase_images(&mut records, &a.weak, &a.out)?;
    let dir = ModelDir::open_kind(&a.summarizer, &[ModelType::T5], "--summarizer")?;
    let mut t5 = dir.load_t5(be, None)?;
    t5.drop_master();
    let tok = Tokenizer::load(&a.summarizer.join(TOKENIZER))?;
    let search = label_search(t5.cfg.eos_token_id);
    let mut partial = Partial::load(&a.out)?;
    if partial.done.keys().any(|&i| i >= records.len()) || partial.done.values().any(|v| summary_of(v).is_none()) {
        return Err(not_saved_summaries(&partial.path));
    }
    let todo: Vec<usize> = (0..records.len()).filter(|i| !partial.done.contains_key(i)).collect();
    if !partial.done.is_empty() {
        eprintln!("{}: {} captions already summarized, {} to go", partial.path.display(), partial.done.len(), todo.len());
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
        for (&i, summary) in chunk.iter().zip(summarize(be, &t5, &tok, &captions, &a.prefix, &search)?) {
            partial.insert(i, serde_json::json!({"label": summary.label, "score": summary.score}));
        }
        partial.save()?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let summaries = partial.done.values().map(|v| summary_of(v).ok_or_else(|| not_saved_summaries(&partial.path))).collect::<Result<Vec<_>>>()?;
    let labelled: Vec<_> = records.into_iter().zip(summaries).collect();
    let total = labelled.len();
    let with_gerund = labelled.iter().filter(|(_, s)| has_gerund(&s.label)).count();
    let kept = finish(labelled, a.drop_least_confident);
    let lines: Vec<String> = kept.iter().map(|r| serde_json::Value::Object(r.clone()).to_string()).collect();
    write_atomic(&a.out, (lines.join("\n") + if lines.is_empty() { "" } else { "\n" }).as_bytes())?;
    partial.finish();
    eprintln!("{}: {with_gerund} of {total} captions gave a pseudo-label with an -ing word, {} kept", a.out.display(), kept.len());
    Ok(())
}

fn not_saved_summaries(path: &Path) -> Error {
    Error::data(path, "not saved summaries of this input (delete the file to start over)")
}

/// A saved summary: `{"label": TEXT, "score": NUMBER}`.
fn summary_of(v: &serde_json::Value) -> Option<Summary> {
    Some(Summary { label: v.get("label")?.as_str()?.to_string(), score: v.get("score")?.as_f64()? as f32 })
}

fn share_in_unit_interval(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a share in [0, 1)")),
    }
}

/// Relative image paths name files beside the weak-caption file; when the
/// output goes to another folder, they become absolute so that they still
/// name the same files from there.
fn rebase_images(records: &mut [serde_json::Map<String, serde_json::Value>], weak: &Path, out: &Path) -> Result<()> {
    let folder = |p: &Path| p.parent().map(Path::to_path_buf).filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
    let (from, to) = (folder(weak), folder(out));
    let from = from.canonicalize().map_err(|e| Error::io(&from, e))?;
    if to.canonicalize().is_ok_and(|t| t == from) {
        return Ok(());
    }
    for r in records {
        if let Some(image) = r.get("image").and_then(|v| v.as_str()).filter(|i| Path::new(i).is_relative()) {
            let absolute = from.join(image).to_string_lossy().into_owned();
            r.insert("image".into(), absolute.into());
        }
    }
    Ok(())
}
