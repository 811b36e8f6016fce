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
use hhi::pipeline::pseudo_label::{finish, label_search, read_weak, summarize};
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

fn run_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let mut records = read_weak(&a.weak)?;
    rebase_images(&mut records, &a.weak, &a.out)?;
    let dir = ModelDir::open_kind(&a.summarizer, &[ModelType::T5], "--summarizer")?;
    let mut t5 = dir.load_t5(be, None)?;
    t5.drop_master();
    let tok = Tokenizer::load(&a.summarizer.join(TOKENIZER))?;
    let search = label_search(t5.cfg.eos_token_id);
    let mut partial = Partial::load(&a.out)?;
    if partial.done.keys().any(|&i| i >= records.len()) || partial.done.values().any(|v| !v.is_string()) {
        return Err(Error::data(&partial.path, "not saved summaries of this input (delete the file to start over)"));
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
        for (&i, label) in chunk.iter().zip(summarize(be, &t5, &tok, &captions, &a.prefix, &search)?) {
            partial.insert(i, label.into());
        }
        partial.save()?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let labels = partial.done.values().map(|v| v.as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
    let labelled: Vec<_> = records.into_iter().zip(labels).collect();
    let total = labelled.len();
    let kept = finish(labelled);
    let lines: Vec<String> = kept.iter().map(|r| serde_json::Value::Object(r.clone()).to_string()).collect();
    write_atomic(&a.out, (lines.join("\n") + if lines.is_empty() { "" } else { "\n" }).as_bytes())?;
    partial.finish();
    eprintln!("{}: {} of {total} captions gave a pseudo-label with an -ing word", a.out.display(), kept.len());
    Ok(())
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
