//! Subcommands, one file each: argument parsing → library call → output.

/// `println!` for command output; a closed pipe (`hhi … | head`) ends the
/// process quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => { $crate::hhi_cli::say_line(format_args!($($arg)*)) };
}

mod bench;
mod bench_evaluate;
mod bench_models;
mod captioner;
mod demo;
mod embed;
mod evaluate;
mod generate;
mod parity;
mod pseudo_label;
mod summarize;
mod synthetic;
mod tokenizer;
mod train_clip;
mod train_lm;
mod train_summarizer;
mod world;

use clap::{Parser, Subcommand};
use hhi::backend::Device;
use hhi::tensor::DType;
use hhi::Result;

#[derive(Parser)]
#[command(name = "hhi", version, about = "Learning human-human interactions in images from weak textual supervision (ICCV 2023), on a from-scratch Rust engine.")]
pub struct Cli {
    /// Worker threads for the CPU backend (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt with a GPT-2 or GPT-Neo model folder.
    Generate(generate::Args),
    /// Summarize texts with a T5 model folder (beam search, as transformers' generate).
    Summarize(summarize::Args),
    /// CLIP embeddings of images or texts (JSONL or safetensors).
    Embed(embed::Args),
    /// Train (or fine-tune) a GPT-2 or GPT-Neo language model on text or JSONL.
    TrainLm(train_lm::Args),
    /// Train (or fine-tune) a CLIP contrastively on image–caption pairs.
    TrainClip(train_clip::Args),
    /// Stage 1: new interactions from a language model's few-shot continuations of seed interactions.
    Interactions(synthetic::InteractionArgs),
    /// Stages 2-3: synthetic captions of interactions from in-context pairs, filtered and labelled.
    Captions(synthetic::CaptionArgs),
    /// Distil the caption → interaction summarizer: fine-tune a T5 on (caption, label) pairs.
    TrainSummarizer(train_summarizer::Args),
    /// Weak captions → pseudo-labels with the distilled T5 summarizer (beams, -ing filter, sample weights).
    PseudoLabel(pseudo_label::Args),
    /// Train the ClipCap captioner (frozen CLIP → MLP prefix → GPT-2) on pseudo-labelled images.
    TrainCaptioner(captioner::TrainArgs),
    /// Score predictions against gold labels at k = 1, 5, 8 (exact match, gerund accuracy, BLEU-4, word F1).
    Evaluate(evaluate::Args),
    /// Predict interactions for images: beam search with a trained captioner, top k with scores.
    Predict(captioner::PredictArgs),
    /// The whole method on the embedded default (a synthetic world and stand-in models trained here), with a report.
    Demo(demo::Args),
    /// Check the engine against a transformers fixture folder (PARITY.md).
    Parity(parity::Args),
    /// Throughput benchmarks that print one JSON line.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Tokenizer utilities.
    #[command(subcommand)]
    Tokenizer(tokenizer::Command),
    /// Generate the synthetic HHI world: images, weak captions, seeds, test and categorical splits.
    World(world::Args),
}

/// The `--device` and `--dtype` flags shared by every command that computes.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArg {
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Compute precision: f32, or bf16 (CUDA only: bf16 weights and
    /// activations, f32 master weights, gradients and optimizer state).
    /// Default: f32 on the CPU, bf16 on CUDA.
    #[arg(long, value_parser = parse_dtype)]
    dtype: Option<DType>,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    match DType::parse(s) {
        Some(d @ (DType::F32 | DType::BF16)) => Ok(d),
        _ => Err(format!("unknown dtype `{s}` (f32, bf16)")),
    }
}

impl DeviceArg {
    pub fn dtype(&self) -> DType {
        self.dtype.unwrap_or(match self.device {
            Device::Cpu => DType::F32,
            Device::Cuda(_) => DType::BF16,
        })
    }
}

/// Writes a trainer's per-epoch records to `dir/log.jsonl` (atomically; the
/// last file a training command writes, so its presence means the folder is complete).
fn write_epoch_log(dir: &std::path::Path, epochs: &[serde_json::Value]) -> Result<()> {
    let text: String = epochs.iter().map(|e| format!("{e}\n")).collect();
    hhi::io::atomic::write_atomic(&dir.join("log.jsonl"), text.as_bytes())
}

pub fn say_line(line: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global().map_err(|e| hhi::Error::Invalid(format!("--threads: {e}")))?;
    }
    match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Summarize(a) => summarize::run(a),
        Command::Embed(a) => embed::run(a),
        Command::TrainLm(a) => train_lm::run(a),
        Command::TrainClip(a) => train_clip::run(a),
        Command::Interactions(a) => synthetic::interactions(a),
        Command::Captions(a) => synthetic::captions(a),
        Command::TrainSummarizer(a) => train_summarizer::run(a),
        Command::PseudoLabel(a) => pseudo_label::run(a),
        Command::TrainCaptioner(a) => captioner::train(a),
        Command::Predict(a) => captioner::predict(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Parity(a) => parity::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Tokenizer(c) => tokenizer::run(c),
        Command::World(a) => world::run(a),
    }
}
