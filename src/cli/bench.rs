//! `hhi bench`: training and generation throughput on a model folder (a folder
//! with only config.json gets a random initialisation). Progress goes to
//! stderr; the last stdout line is one JSON object. GPT-2 and GPT-Neo here;
//! T5 and CLIP in bench_models.rs.

use super::DeviceArg;
use hhi::backend::bench::Shapes;
use hhi::backend::profile::Profiled;
use hhi::backend::{Backend, Device, MemoryStats};
use hhi::generate::{generate, GenerateConfig, SamplingConfig};
use hhi::io::checkpoint::ModelDir;
use hhi::models::ModelType;
use hhi::rng::Rng;
use hhi::train::lm::{TrainConfig, Trainer};
use hhi::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Time full training steps (forward, backward, clip, AdamW) on random
    /// data: GPT-2/GPT-Neo on tokens, T5 on input/target pairs (--seq encoder
    /// tokens, --target-seq decoder tokens), CLIP contrastively on images and texts.
    Train {
        model: PathBuf,
        #[arg(long, default_value_t = 4)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        seq: usize,
        /// T5 decoder tokens (default: --seq / 4).
        #[arg(long)]
        target_seq: Option<usize>,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Also print the time spent in each op, timed steps only (GEMMs per
        /// shape, with TFLOP/s; on a device each op is waited for, so small
        /// ops carry a launch and a synchronisation).
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Time each op of the set at GPT-2 124M training shapes (GB/s or TFLOP/s,
    /// and the fraction of the device's peak bandwidth where it reports one).
    Ops {
        /// Sequences per batch (default: 16 on CUDA, 4 on the CPU).
        #[arg(long)]
        batch: Option<usize>,
        /// Tokens per sequence (default: 1024 on CUDA, 128 on the CPU).
        #[arg(long)]
        seq: Option<usize>,
        /// Timed repetitions per op (the median is reported).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Only ops whose name contains this.
        #[arg(long, default_value = "")]
        filter: String,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Time `hhi evaluate` with a sentence encoder (e.g. all-MiniLM-L6-v2)
    /// on --items gold labels × --beams predictions, every text distinct
    /// (the worst case: evaluate embeds each distinct text once).
    Evaluate {
        /// A sentence-transformers BERT folder.
        #[arg(long)]
        sentence_model: PathBuf,
        #[arg(long, default_value_t = 1000)]
        items: usize,
        #[arg(long, default_value_t = 8)]
        beams: usize,
        /// Texts per encoder batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Also print the time spent in each op (on a device, each op waited for).
        #[arg(long)]
        profile: bool,
        /// Write the distinct texts it embeds here, one per line (for
        /// scripts/bench_sentence_torch.py, which times sentence-transformers on them).
        #[arg(long)]
        write_texts: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Time generating a synthetic world (into a temporary folder, removed after).
    World {
        #[arg(long, default_value_t = 10_000)]
        weak: usize,
        #[arg(long, default_value_t = 64)]
        image_size: u32,
    },
    /// Time CLIP image encoding (vision tower and projection) on random images.
    Encode {
        model: PathBuf,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Also print the time spent in each op (on a device, each op waited for).
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Time batched greedy generation with the KV cache (GPT-2, GPT-Neo; T5
    /// from inputs of --prompt-len tokens).
    Generate {
        model: PathBuf,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 16)]
        prompt_len: usize,
        #[arg(long, default_value_t = 64)]
        new_tokens: usize,
        /// Beam search with this many beams instead of greedy decoding (T5
        /// models: the summarizer's pseudo-labelling runs 4).
        #[arg(long, default_value_t = 1)]
        beams: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also print the time spent in each op, per run, the warm-up run
        /// included (on a device each op is waited for, so small ops carry
        /// a launch and a synchronisation).
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        device: DeviceArg,
    },
}

pub(super) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub(super) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Train { model, batch, seq, target_seq, steps, warmup, profile, device } => {
            if batch == 0 || seq == 0 || steps == 0 || target_seq == Some(0) {
                return Err(Error::Invalid("--batch, --seq, --target-seq and --steps must be positive".into()));
            }
            let dir = ModelDir::open(&model)?;
            let tgt = target_seq.unwrap_or((seq / 4).max(1));
            let json = if profile {
                hhi::on_device!(device.device, device.dtype(), profiled, |be| {
                    let json = train_any(be, &dir, batch, seq, tgt, steps, warmup, &|| be.reset())?;
                    print_profile(be, steps);
                    json
                })
            } else {
                hhi::on_device!(device.device, device.dtype(), |be| train_any(be, &dir, batch, seq, tgt, steps, warmup, &|| ()))?
            };
            say!("{json}");
        }
        Command::Ops { batch, seq, repeats, filter, device } => {
            let gpu = device.device != Device::Cpu;
            let shapes = Shapes { batch: batch.unwrap_or(if gpu { 16 } else { 4 }), t: seq.unwrap_or(if gpu { 1024 } else { 128 }), reps: repeats.max(1) };
            if shapes.batch == 0 || shapes.t == 0 {
                return Err(Error::Invalid("--batch and --seq must be positive".into()));
            }
            hhi::on_device!(device.device, device.dtype(), |be| {
                eprintln!("bench ops: {shapes:?} on {}", be.name());
                say!("{:<44} {:>10} {:>14}", "op", "median ms", "throughput");
                let peak = be.peak_bandwidth();
                hhi::backend::bench::run(be, shapes, &filter, &mut |t| say!("{}", t.line(peak)))
            })?;
        }
        Command::Evaluate { sentence_model, items, beams, batch, profile, write_texts, device } => {
            if items == 0 || beams == 0 || batch == 0 {
                return Err(Error::Invalid("--items, --beams and --batch must be positive".into()));
            }
            if let Some(path) = &write_texts {
                hhi::io::atomic::write_atomic(path, super::bench_evaluate::texts(items, beams).join("\n").as_bytes())?;
            }
            let json = if profile {
                hhi::on_device!(device.device, device.dtype(), profiled, |be| {
                    let json = super::bench_evaluate::run(be, &sentence_model, items, beams, batch)?;
                    print_profile(be, 1);
                    json
                })
            } else {
                hhi::on_device!(device.device, device.dtype(), |be| super::bench_evaluate::run(be, &sentence_model, items, beams, batch))?
            };
            say!("{json}");
        }
        Command::World { weak, image_size } => {
            let out = std::env::temp_dir().join(format!("hhi-bench-world-{}", std::process::id()));
            let cfg = hhi::world::WorldConfig { seed: 0, inventory_seed: 0, weak, test: 1, categorical: 1, web: 0, image_size, noise: 0.15, contact_sheet: false };
            let start = Instant::now();
            let result = hhi::world::generate(&cfg, &out, &|m| eprintln!("{m}"));
            let seconds = start.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(&out);
            result?;
            say!("{}", serde_json::json!({"seconds": seconds, "weak_items_per_s": weak as f64 / seconds, "threads": rayon::current_num_threads()}));
        }
        Command::Generate { model, batch, prompt_len, new_tokens, beams, repeats, profile, device } => {
            if batch == 0 || prompt_len == 0 || new_tokens == 0 || beams == 0 || repeats == 0 {
                return Err(Error::Invalid("--batch, --prompt-len, --new-tokens, --beams and --repeats must be positive".into()));
            }
            let dir = ModelDir::open(&model)?;
            if beams > 1 && dir.model_type != ModelType::T5 {
                return Err(Error::Invalid(format!("--beams: beam search is benchmarked on T5 models; {} is {:?}", model.display(), dir.model_type)));
            }
            let shape = super::bench_models::GenerateShape { batch, src: prompt_len, new_tokens, beams, repeats };
            let json = if profile {
                hhi::on_device!(device.device, device.dtype(), profiled, |be| {
                    let json = generate_any(be, &dir, &shape)?;
                    print_profile(be, repeats + 1);
                    json
                })
            } else {
                hhi::on_device!(device.device, device.dtype(), |be| generate_any(be, &dir, &shape))?
            };
            say!("{json}");
        }
        Command::Encode { model, batch, repeats, profile, device } => {
            if batch == 0 || repeats == 0 {
                return Err(Error::Invalid("--batch and --repeats must be positive".into()));
            }
            let dir = ModelDir::open(&model)?;
            if dir.model_type != ModelType::Clip {
                return Err(Error::config(dir.dir.join("config.json"), "bench encode needs a CLIP model"));
            }
            let json = if profile {
                hhi::on_device!(device.device, device.dtype(), profiled, |be| {
                    let json = super::bench_models::encode_clip(be, &dir, batch, repeats)?;
                    print_profile(be, repeats + 1);
                    json
                })
            } else {
                hhi::on_device!(device.device, device.dtype(), |be| super::bench_models::encode_clip(be, &dir, batch, repeats))?
            };
            say!("{json}");
        }
    }
    Ok(())
}

/// Per-op time per run (ms), share and, for GEMMs, TFLOP/s, on stderr.
fn print_profile<B: Backend>(be: &Profiled<B>, runs: usize) {
    eprintln!("{:<32} {:>10} {:>8} {:>7} {:>9}", "op", "ms per run", "calls", "share", "TFLOP/s");
    let report = be.report();
    let total: f64 = report.iter().map(|r| r.1.seconds).sum();
    for (op, t) in report {
        let rate = if t.flops > 0.0 { format!("{:.3}", t.flops / t.seconds / 1e12) } else { String::new() };
        eprintln!("{op:<32} {:>10.2} {:>8} {:>6.1}% {rate:>9}", t.seconds * 1e3 / runs as f64, t.calls, 100.0 * t.seconds / total);
    }
}

/// `hhi bench train` on any model folder: T5 (`seq` → `tgt` tokens), CLIP
/// (texts of `seq` tokens) or a decoder (GPT-2, GPT-Neo).
#[allow(clippy::too_many_arguments)]
fn train_any<B: Backend>(be: &B, dir: &ModelDir, batch: usize, seq: usize, tgt: usize, steps: usize, warmup: usize, on_warmup_done: &dyn Fn()) -> Result<serde_json::Value> {
    match dir.model_type {
        ModelType::T5 => super::bench_models::train_t5(be, dir, batch, seq, tgt, steps, warmup, on_warmup_done),
        ModelType::Clip => super::bench_models::train_clip(be, dir, batch, seq, steps, warmup, on_warmup_done),
        _ => bench_train(be, dir, batch, seq, steps, warmup, on_warmup_done),
    }
}

/// `hhi bench generate` on any model folder: T5 (greedy or beam search from
/// inputs of `src` tokens) or a decoder (greedy from prompts of `src` tokens).
fn generate_any<B: Backend>(be: &B, dir: &ModelDir, shape: &super::bench_models::GenerateShape) -> Result<serde_json::Value> {
    match dir.model_type {
        ModelType::T5 => super::bench_models::generate_t5_bench(be, dir, shape),
        _ => bench_generate(be, dir, shape.batch, shape.src, shape.new_tokens, shape.repeats),
    }
}

/// Refuses, before a model is built (a minute for a billion random weights
/// on a few cores), sequences longer than a GPT-2/GPT-Neo config's positions.
fn fits_positions(dir: &ModelDir, tokens: usize, what: &str) -> Result<()> {
    let positions = dir.gpt2_config()?.n_positions;
    if tokens > positions {
        return Err(Error::Invalid(format!("{what} come to {tokens} tokens, more than the model's {positions} positions ({})", dir.dir.join("config.json").display())));
    }
    Ok(())
}

/// Times batched greedy generation from random prompts; reports the median of `repeats` runs.
fn bench_generate<B: Backend>(be: &B, dir: &ModelDir, batch: usize, prompt_len: usize, new_tokens: usize, repeats: usize) -> Result<serde_json::Value> {
    fits_positions(dir, prompt_len + new_tokens, "--prompt-len plus --new-tokens")?;
    let mut model = dir.load_gpt2(be, Some(0))?;
    model.drop_master();
    eprintln!("bench generate: {} parameters, batch {batch}, prompt {prompt_len}, {new_tokens} new tokens, {}", model.num_params(), be.name());
    let mut rng = Rng::new(1);
    let prompts: Vec<Vec<u32>> = (0..batch).map(|_| (0..prompt_len).map(|_| rng.below(model.cfg.vocab_size) as u32).collect()).collect();
    let cfg = GenerateConfig { max_new_tokens: new_tokens, sampling: SamplingConfig::default(), eos_token_id: None, seed: 0 };
    let mut times = Vec::new();
    for i in 0..repeats + 1 {
        let start = Instant::now();
        generate(be, &model, &prompts, &cfg, &|_, _| false)?;
        let s = start.elapsed().as_secs_f64();
        eprintln!("run {i}: {:.1} ms{}", s * 1e3, if i == 0 { "  (warmup)" } else { "" });
        if i > 0 {
            times.push(s);
        }
    }
    let s = median(times);
    let memory = device_memory(be, None);
    Ok(serde_json::json!({"tokens_per_s": (batch * new_tokens) as f64 / s, "ms_per_token": s * 1e3 / new_tokens as f64, "peak_rss_mb": peak_rss_mb(), "device_memory": memory}))
}

/// Times full training steps; the profile (if any) covers timed steps only.
fn bench_train<B: Backend>(be: &B, dir: &ModelDir, batch: usize, seq: usize, steps: usize, warmup: usize, on_warmup_done: &dyn Fn()) -> Result<serde_json::Value> {
    fits_positions(dir, seq, "--seq")?;
    let model = dir.load_gpt2(be, Some(0))?;
    let vocab = model.cfg.vocab_size;
    eprintln!("bench train: {} parameters, batch {batch} × {seq}, {}", model.num_params(), be.name());
    let cfg = TrainConfig { steps: u64::MAX, batch, seq, lr: 1e-4, warmup: 0, weight_decay: 0.1, clip: 1.0, eval_every: 0, eval_batches: 0, seed: 0, stop_at: None };
    let mut trainer = Trainer::new(be, model, cfg)?;
    let mut rng = Rng::new(1);
    let tokens: Vec<u32> = (0..batch * (seq + 1) * 4).map(|_| rng.below(vocab) as u32).collect();
    let mut times = Vec::new();
    let mut at_warmup_end = be.memory();
    for i in 0..warmup + steps {
        if i == warmup {
            on_warmup_done();
            at_warmup_end = be.memory();
        }
        let start = Instant::now();
        let (loss, _, _) = trainer.step(&tokens)?;
        be.synchronize()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        eprintln!("step {i:>3}  {ms:8.1} ms  loss {loss:.4}{}", if i < warmup { "  (warmup)" } else { "" });
        if i >= warmup {
            times.push(ms);
        }
    }
    let step_ms = median(times);
    let tokens_per_s = (batch * seq) as f64 / (step_ms / 1e3);
    // llm.c's count: 6 FLOPs per parameter per token, plus attention's 6·L·C·T.
    let c = &trainer.model.cfg;
    let flops_per_token = 6.0 * trainer.model.num_params() as f64 + 6.0 * (c.n_layer * c.n_embd * seq) as f64;
    Ok(serde_json::json!({
        "tokens_per_s": tokens_per_s,
        "step_ms": step_ms,
        "model_tflop_per_s": tokens_per_s * flops_per_token / 1e12,
        "peak_rss_mb": peak_rss_mb(),
        "device": be.name(),
        "device_memory": device_memory(be, at_warmup_end),
    }))
}

/// The device arena's figures (null on the CPU), with the buffers made since
/// `since` (the timed steps: 0 when a step allocates nothing).
pub(super) fn device_memory<B: Backend>(be: &B, since: Option<MemoryStats>) -> serde_json::Value {
    match (be.memory(), since) {
        (Some(now), since) => {
            let mib = |b: usize| b as f64 / (1 << 20) as f64;
            let mut json = serde_json::json!({"peak_mib": mib(now.peak), "held_mib": mib(now.reserved), "chunks": now.chunks, "buffers": now.buffers});
            if let Some(before) = since {
                json["buffers_made_while_timed"] = (now.buffers - before.buffers).into();
            }
            json
        }
        (None, _) => serde_json::Value::Null,
    }
}
