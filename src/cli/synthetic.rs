//! `hhi interactions` and `hhi captions`: the method's synthetic data from a
//! causal language model (pipeline/synthetic.rs). Both are resumable: each
//! batch's results go to `<out>.partial` (pipeline/partial.rs) with seeds
//! derived from the batch index, so a rerun after a kill ends with the same
//! output as an uninterrupted run.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::eval::similarity::Nli;
use hhi::generate::SamplingConfig;
use hhi::io::atomic::write_atomic;
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::tokenizer::Tokenizer;
use hhi::models::bart::nli::BartNli;
use hhi::models::gpt2::Gpt2;
use hhi::models::ModelType;
use hhi::pipeline::partial::Partial;
use hhi::pipeline::synthetic::{
    caption_prompt, caption_record, caption_sampling, interaction_prompt, interaction_sampling, new_interaction, placeholder_names, with_names, Writer,
};
use hhi::rng::Rng;
use hhi::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// How a sampling stage runs: batches, seed, early stop, device.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Prompts per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many batches, leaving `<out>.partial` as a kill would
    /// (for time-boxed runs); a rerun continues.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Ban repeating any n-gram of this size, the prompt's included (the
    /// official 3; 0 turns it off — a small model whose captions all end in
    /// the prompt's phrases cannot end a line under it).
    #[arg(long, default_value_t = 3)]
    no_repeat_ngram: usize,
    #[command(flatten)]
    device: DeviceArg,
}

/// Stage 1: new interactions from few-shot prompts of seed interactions.
#[derive(clap::Args)]
pub struct InteractionArgs {
    /// Causal language model folder (GPT-Neo or GPT-2, with tokenizer.json).
    #[arg(long)]
    llm: PathBuf,
    /// Seed interactions, one per line, written with the names Alex and Bailey
    /// (or two `[NAME]` placeholders, read as Alex then Bailey).
    #[arg(long)]
    seeds: PathBuf,
    /// Output: the new interactions, one per line.
    #[arg(long)]
    out: PathBuf,
    /// Prompts to run (each may yield one new interaction).
    #[arg(long, default_value_t = 64)]
    prompts: usize,
    /// Seed interactions per prompt.
    #[arg(long, default_value_t = 10)]
    shots: usize,
    #[arg(long, default_value_t = 200)]
    max_new_tokens: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// Stage 2 and 3: synthetic captions of interactions, and their labels.
#[derive(clap::Args)]
pub struct CaptionArgs {
    /// Causal language model folder (GPT-Neo or GPT-2, with tokenizer.json).
    #[arg(long)]
    llm: PathBuf,
    /// Interactions, one per line, with the names Alex and Bailey.
    #[arg(long)]
    interactions: PathBuf,
    /// In-context pairs, JSONL: {"interaction": TEXT, "caption": TEXT} (names Alex and Bailey).
    #[arg(long)]
    fewshot: PathBuf,
    /// Output JSONL: {"interaction", "names", "caption", "label", "label_no_pp"} per kept caption.
    #[arg(long)]
    out: PathBuf,
    /// Captions to try per interaction.
    #[arg(long, default_value_t = 1)]
    per_interaction: usize,
    /// In-context pairs per prompt.
    #[arg(long, default_value_t = 10)]
    shots: usize,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// An NLI folder (BartForSequenceClassification, e.g. facebook/bart-large-mnli):
    /// keep a caption only where P(caption entails the named interaction) > 0.5
    /// (stage 3's filter; the record gets `p_entailment`).
    #[arg(long)]
    nli: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn interactions(a: InteractionArgs) -> Result<()> {
    hhi::on_device!(a.run.device.device, a.run.device.dtype(), |be| interactions_on(be, &a))
}

pub fn captions(a: CaptionArgs) -> Result<()> {
    hhi::on_device!(a.run.device.device, a.run.device.dtype(), |be| captions_on(be, &a))
}

fn load_llm<B: Backend>(be: &B, dir: &Path) -> Result<(Gpt2<B>, Tokenizer)> {
    let model_dir = ModelDir::open_kind(dir, &[ModelType::GptNeo, ModelType::Gpt2], "--llm")?;
    let mut model = model_dir.load_gpt2(be, None)?;
    model.drop_master();
    Ok((model, Tokenizer::load(&dir.join(TOKENIZER))?))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if lines.is_empty() {
        return Err(Error::data(path, "no lines (the file is empty)"));
    }
    Ok(lines)
}

/// Runs `batches` batches not yet in `partial`, each through `run(batch
/// index)`, saving after each; false when `stop_after` stopped it early.
fn run_batches(partial: &mut Partial, batches: usize, stop_after: Option<usize>, what: &str, mut run: impl FnMut(usize) -> Result<serde_json::Value>) -> Result<bool> {
    let todo: Vec<usize> = (0..batches).filter(|i| !partial.done.contains_key(i)).collect();
    if !partial.done.is_empty() {
        eprintln!("{}: {} batches already done, {} to go", partial.path.display(), partial.done.len(), todo.len());
    }
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} batches of {what}, eta {{eta}}")).expect("template"));
    for (n, i) in todo.into_iter().enumerate() {
        if stop_after == Some(n) {
            bar.finish_and_clear();
            eprintln!("stopped after {n} batches; rerun to continue");
            return Ok(false);
        }
        let value = run(i)?;
        partial.insert(i, value);
        partial.save()?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(true)
}

fn interactions_on<B: Backend>(be: &B, a: &InteractionArgs) -> Result<()> {
    let seeds: Vec<String> = read_lines(&a.seeds)?.iter().map(|l| placeholder_names(l)).collect();
    let (model, tok) = load_llm(be, &a.llm)?;
    let writer = Writer::new(be, &model, &tok)?;
    let mut partial = Partial::load(&a.out)?;
    let batch = a.run.batch.max(1);
    let finished = run_batches(&mut partial, a.prompts.div_ceil(batch), a.run.stop_after, "prompts", |i| {
        let mut rng = Rng::new(a.run.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = batch.min(a.prompts - i * batch);
        let prompts: Vec<String> = (0..n).map(|_| interaction_prompt(&seeds, a.shots, &mut rng)).collect();
        Ok(writer.lines(&prompts, SamplingConfig { no_repeat_ngram_size: a.run.no_repeat_ngram, ..interaction_sampling() }, a.max_new_tokens, rng.next_u64())?.into())
    })?;
    if !finished {
        return Ok(());
    }
    // Keep, in batch order, each filtered line not seen before (seeds included).
    let mut known: HashSet<String> = seeds.iter().cloned().collect();
    let mut kept = Vec::new();
    for line in partial.done.values().flat_map(|v| v.as_array().cloned().unwrap_or_default()) {
        let line = line.as_str().unwrap_or_default().to_string();
        if new_interaction(&line, &known) {
            known.insert(line.clone());
            kept.push(line);
        }
    }
    write_atomic(&a.out, kept.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())?;
    partial.finish();
    eprintln!("{}: {} new interactions from {} prompts", a.out.display(), kept.len(), a.prompts);
    Ok(())
}

fn captions_on<B: Backend>(be: &B, a: &CaptionArgs) -> Result<()> {
    let interactions = read_lines(&a.interactions)?;
    let fewshot: Vec<(String, String)> = read_lines(&a.fewshot)?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::data(&a.fewshot, format!("record {}: not JSON: {e}", i + 1)))?;
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from).ok_or_else(|| Error::data(&a.fewshot, format!("record {}: no string field `{k}`", i + 1)));
            Ok((field("interaction")?, field("caption")?))
        })
        .collect::<Result<_>>()?;
    let (model, tok) = load_llm(be, &a.llm)?;
    let writer = Writer::new(be, &model, &tok)?;
    let items: Vec<&String> = interactions.iter().flat_map(|x| std::iter::repeat_n(x, a.per_interaction.max(1))).collect();
    let mut partial = Partial::load(&a.out)?;
    let batch = a.run.batch.max(1);
    let nli = a.nli.as_ref().map(|dir| BartNli::load(be, dir, batch)).transpose()?;
    let finished = run_batches(&mut partial, items.len().div_ceil(batch), a.run.stop_after, "captions", |i| {
        let mut rng = Rng::new(a.run.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let chunk = &items[i * batch..((i + 1) * batch).min(items.len())];
        let named: Vec<(String, [&str; 2])> = chunk.iter().map(|x| with_names(x, &mut rng)).collect();
        let prompts: Vec<String> = named.iter().map(|(n, _)| caption_prompt(&fewshot, a.shots, n, &mut rng)).collect();
        let captions = writer.lines(&prompts, SamplingConfig { no_repeat_ngram_size: a.run.no_repeat_ngram, ..caption_sampling() }, a.max_new_tokens, rng.next_u64())?;
        let mut records: Vec<serde_json::Value> =
            chunk.iter().zip(&named).zip(&captions).map(|((x, (n, names)), c)| caption_record(x, n, *names, c).unwrap_or(serde_json::Value::Null)).collect();
        if let Some(nli) = &nli {
            // Stage 3: premise the caption, hypothesis the interaction with the prompt's names.
            let kept: Vec<usize> = (0..records.len()).filter(|&k| !records[k].is_null()).collect();
            let pairs: Vec<(&str, &str)> = kept.iter().map(|&k| (records[k]["caption"].as_str().unwrap_or_default(), named[k].0.as_str())).collect();
            let probs = nli.probabilities(&pairs)?;
            for (&k, (entail, _)) in kept.iter().zip(probs) {
                if entail > 0.5 {
                    records[k]["p_entailment"] = serde_json::json!(entail);
                } else {
                    records[k] = serde_json::Value::Null;
                }
            }
        }
        Ok(records.into())
    })?;
    if !finished {
        return Ok(());
    }
    let kept: Vec<String> = partial.done.values().flat_map(|v| v.as_array().cloned().unwrap_or_default()).filter(|r| !r.is_null()).map(|r| r.to_string()).collect();
    write_atomic(&a.out, kept.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())?;
    partial.finish();
    let filters = if a.nli.is_some() { "names present, label rules, NLI entailment > 0.5" } else { "names present, label rules" };
    eprintln!("{}: {} of {} captions kept ({filters})", a.out.display(), kept.len(), items.len());
    Ok(())
}
