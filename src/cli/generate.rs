//! `hhi generate`: sample or greedily decode continuations of one or more
//! prompts with a GPT-2 or GPT-Neo model folder.

use super::DeviceArg;
use hhi::backend::Backend;
use hhi::generate::{generate, Finish, GenerateConfig, SamplingConfig};
use hhi::io::checkpoint::{ModelDir, TOKENIZER};
use hhi::io::tokenizer::Tokenizer;
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text; repeat for a batch of prompts.
    #[arg(long, required = true)]
    prompt: Vec<String>,
    #[arg(long, default_value_t = 40)]
    max_new_tokens: usize,
    /// Decode greedily (argmax) instead of sampling.
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass (1.0: off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// CTRL repetition penalty (1.0: off).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Never repeat an n-gram of this size (0: off).
    #[arg(long, default_value_t = 0)]
    no_repeat_ngram: usize,
    /// Stop a prompt's continuation at this string (repeatable; `\n` for newline).
    #[arg(long)]
    stop: Vec<String>,
    /// Ignore the model's end-of-text token.
    #[arg(long)]
    ignore_eos: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    if a.temperature <= 0.0 || !(0.0..=1.0).contains(&a.top_p) || a.top_p == 0.0 || a.repetition_penalty <= 0.0 {
        return Err(Error::Invalid("--temperature and --repetition-penalty must be > 0, --top-p in (0, 1]".into()));
    }
    hhi::on_device!(a.device.device, a.device.dtype(), |be| generate_on(be, &a))
}

fn generate_on<B: Backend>(be: &B, a: &Args) -> Result<()> {
    let dir = ModelDir::open(&a.model)?;
    let mut model = dir.load_gpt2(be, None)?;
    model.drop_master();
    let tok = Tokenizer::load(&a.model.join(TOKENIZER))?;
    let prompts = a.prompt.iter().map(|p| tok.encode(p)).collect::<Result<Vec<_>>>()?;
    if prompts.iter().any(Vec::is_empty) {
        return Err(Error::Invalid("a prompt encodes to no tokens".into()));
    }
    let stops: Vec<String> = a.stop.iter().map(|s| s.replace("\\n", "\n")).collect();
    let cfg = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling: SamplingConfig {
            do_sample: !a.greedy,
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            repetition_penalty: a.repetition_penalty,
            no_repeat_ngram_size: a.no_repeat_ngram,
        },
        eos_token_id: if a.ignore_eos { None } else { model.cfg.eos_token_id },
        seed: a.seed,
    };
    let stop = |_: usize, new: &[u32]| !stops.is_empty() && tok.decode(new).is_ok_and(|t| stops.iter().any(|s| t.contains(s.as_str())));
    let out = generate(be, &model, &prompts, &cfg, &stop)?;
    for (prompt, (new, finish)) in a.prompt.iter().zip(out) {
        let mut text = tok.decode(&new)?;
        if finish == Finish::Stop {
            if let Some(cut) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
            }
        }
        say!("{prompt}{text}");
    }
    Ok(())
}
