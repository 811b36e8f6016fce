//! `hhi demo`: the whole method on the embedded default. A synthetic world
//! stands in for the datasets and small models trained here stand in for the
//! pretrained checkpoints (a GPT-Neo on the world's text, a CLIP on its web
//! image-caption pairs, a GPT-2 on label text); then every stage command
//! runs exactly as a user would type it (each printed as it starts), and a
//! report (report.json, report.html) shows what the captioner learned.
//!
//! A step whose output exists is skipped, and the stages themselves resume,
//! so a rerun after a kill continues where the run stopped.

mod html;
mod inputs;
mod report;

use super::{Cli, DeviceArg};
use clap::Parser;
use hhi::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder: the world, every model and stage file, report.json, report.html.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// A smaller run (a smaller world, shorter training; under 3 minutes on
    /// 2 cores) that exercises every stage; its numbers are far below the
    /// full run's (its GPT-Neo stand-in keeps few synthetic captions).
    #[arg(long)]
    quick: bool,
    /// Seed of the world and of every stage.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

/// How big the run is. The GPT-Neo stand-in takes most of the time: a model
/// this small learns to copy the prompt's names into its caption (what stage
/// 2's filter asks) only after about a thousand steps, and its 128-token
/// training windows are why the caption prompts hold one in-context pair.
pub struct Sizes {
    pub weak: usize,
    pub test: usize,
    pub categorical: usize,
    /// Web alt-text pairs the CLIP stand-in pre-trains on.
    pub web: usize,
    /// Documents of each kind in the GPT-Neo stand-in's training text.
    pub lm_documents: usize,
    pub neo_steps: u64,
    pub prompts: usize,
    pub captions_per_interaction: usize,
    pub summarizer_epochs: usize,
    pub clip_epochs: usize,
    pub gpt2_steps: u64,
    pub captioner_epochs: usize,
    pub beams: usize,
}

const FULL: Sizes = Sizes {
    weak: 4000,
    test: 500,
    categorical: 300,
    web: 24000,
    lm_documents: 4000,
    neo_steps: 1600,
    prompts: 64,
    captions_per_interaction: 96,
    summarizer_epochs: 20,
    clip_epochs: 20,
    gpt2_steps: 300,
    captioner_epochs: 5,
    beams: 16,
};

const QUICK: Sizes = Sizes {
    weak: 1200,
    test: 200,
    categorical: 100,
    web: 4000,
    lm_documents: 3000,
    neo_steps: 900,
    prompts: 16,
    captions_per_interaction: 12,
    summarizer_epochs: 12,
    clip_epochs: 3,
    gpt2_steps: 100,
    captioner_epochs: 4,
    beams: 8,
};

/// One step: a command line of `hhi`, or a file the demo prepares itself.
enum Action {
    Hhi(Vec<String>),
    Prepare(fn(&Path, &Sizes, u64) -> Result<()>),
}

struct Step {
    name: &'static str,
    /// Exists once the step has finished (each is written last, atomically);
    /// None for a command that itself skips what it has done (predict).
    done: Option<PathBuf>,
    action: Action,
}

pub fn run(a: Args) -> Result<()> {
    let sizes = if a.quick { &QUICK } else { &FULL };
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let steps = plan(&a, sizes);
    let mut timings = report::Timings::load(&a.out)?;
    let start = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        let tag = format!("[{}/{}] {}", i + 1, steps.len(), step.name);
        if let Some(done) = step.done.as_ref().filter(|d| d.exists()) {
            eprintln!("{tag}: done ({} exists)", done.display());
            continue;
        }
        // A model folder without its last file is an interrupted training run: start it over.
        if let Some(folder) = step.done.as_ref().and_then(|d| d.parent()).filter(|f| *f != a.out && f.exists()) {
            std::fs::remove_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        }
        let t0 = Instant::now();
        match &step.action {
            Action::Hhi(argv) => {
                eprintln!("{tag}: hhi {}", argv.join(" "));
                let cli =
                    Cli::try_parse_from(std::iter::once("hhi".to_string()).chain(argv.iter().cloned())).map_err(|e| Error::Invalid(format!("demo step {}: {e}", step.name)))?;
                super::run(cli).map_err(|e| Error::Invalid(format!("demo step {} failed: {e}", step.name)))?;
            }
            Action::Prepare(prepare) => {
                eprintln!("{tag}");
                prepare(&a.out, sizes, a.seed)?;
            }
        }
        timings.record(step.name, t0.elapsed().as_secs_f64(), step.done.is_none());
        timings.save(&a.out)?;
    }
    eprintln!("demo: {:.0} s in this invocation", start.elapsed().as_secs_f64());
    let summary = report::write(&a.out, &timings)?;
    say!("{summary}");
    say!("wrote {} and {}", a.out.join("report.json").display(), a.out.join("report.html").display());
    Ok(())
}

/// The steps, in order, with their command lines.
fn plan(a: &Args, s: &Sizes) -> Vec<Step> {
    let d = |p: &str| a.out.join(p);
    let p = |p: &str| d(p).to_string_lossy().into_owned();
    let n = |x: &dyn ToString| x.to_string();
    let seed = n(&a.seed);
    let device = {
        let mut v = vec!["--device".to_string(), a.device.device.to_string()];
        if let Some(t) = a.device.dtype {
            v.extend(["--dtype".to_string(), t.to_string()]);
        }
        v
    };
    let hhi = |args: &[&str]| Action::Hhi(args.iter().map(|s| s.to_string()).collect());
    let with_device = |args: &[&str]| Action::Hhi(args.iter().map(|s| s.to_string()).chain(device.iter().cloned()).collect());
    let (world, neo, tok) = (p("world"), p("neo"), p("neo/tokenizer.json"));
    vec![
        Step {
            name: "world",
            done: Some(d("world")),
            action: hhi(&["world", "--out", &world, "--seed", &seed, "--weak", &n(&s.weak), "--test", &n(&s.test), "--categorical", &n(&s.categorical), "--web", &n(&s.web)]),
        },
        Step { name: "configs and stand-in training text", done: Some(d("lm_text.jsonl")), action: Action::Prepare(inputs::configs_and_lm_text) },
        Step {
            name: "GPT-Neo stand-in (pre-training)",
            done: Some(d("neo/model.safetensors")),
            action: with_device(&[
                "train-lm",
                "--config",
                &p("init/gpt-neo.json"),
                "--data",
                &p("lm_text.jsonl"),
                "--out",
                &neo,
                "--steps",
                &n(&s.neo_steps),
                "--batch",
                "16",
                "--seq",
                "128",
                "--lr",
                "3e-3",
                "--warmup",
                "30",
                "--eval-every",
                "0",
                "--seed",
                &seed,
            ]),
        },
        Step {
            name: "stage 1: interactions",
            done: Some(d("interactions.txt")),
            action: with_device(&[
                "interactions",
                "--llm",
                &neo,
                "--seeds",
                &p("world/seeds.txt"),
                "--out",
                &p("interactions.txt"),
                "--prompts",
                &n(&s.prompts),
                "--shots",
                "5",
                "--batch",
                "16",
                "--max-new-tokens",
                "24",
                "--seed",
                &seed,
            ]),
        },
        Step { name: "interactions to caption (seeds and new ones)", done: Some(d("all_interactions.txt")), action: Action::Prepare(inputs::all_interactions) },
        Step {
            name: "stages 2-3: synthetic captions and labels",
            done: Some(d("captions.jsonl")),
            action: with_device(&[
                "captions",
                "--llm",
                &neo,
                "--interactions",
                &p("all_interactions.txt"),
                "--fewshot",
                &p("world/fewshot.jsonl"),
                "--out",
                &p("captions.jsonl"),
                "--per-interaction",
                &n(&s.captions_per_interaction),
                "--shots",
                "1",
                "--batch",
                "32",
                "--max-new-tokens",
                "40",
                "--no-repeat-ngram",
                "0",
                "--seed",
                &seed,
            ]),
        },
        Step {
            name: "stage 4: distil the summarizer (T5)",
            done: Some(d("summarizer/log.jsonl")),
            action: with_device(&[
                "train-summarizer",
                "--t5",
                &p("init/t5"),
                "--tokenizer",
                &tok,
                "--pairs",
                &p("captions.jsonl"),
                "--out",
                &p("summarizer"),
                "--epochs",
                &n(&s.summarizer_epochs),
                "--batch",
                "16",
                "--lr",
                "2e-3",
                // A T5 trained from scratch on two thousand near-duplicate
                // captions otherwise keys on their settings, not their verbs.
                "--weight-decay",
                "0.3",
                "--seed",
                &seed,
            ]),
        },
        Step {
            name: "stage 5: pseudo-labels of the weak captions",
            done: Some(d("pseudo_labels.jsonl")),
            action: with_device(&[
                "pseudo-label",
                "--summarizer",
                &p("summarizer"),
                "--weak",
                &p("world/weak.jsonl"),
                "--out",
                &p("pseudo_labels.jsonl"),
                "--batch",
                "32",
                "--drop-least-confident",
                "0.1",
            ]),
        },
        Step {
            name: "CLIP stand-in (contrastive pre-training)",
            done: Some(d("clip/log.jsonl")),
            action: with_device(&[
                "train-clip",
                "--config",
                &p("init/clip.json"),
                "--tokenizer",
                &tok,
                "--pairs",
                &p("world/web.jsonl"),
                "--out",
                &p("clip"),
                "--epochs",
                &n(&s.clip_epochs),
                "--batch",
                "64",
                "--lr",
                "2e-3",
                "--warmup",
                "20",
                "--seed",
                &seed,
            ]),
        },
        Step { name: "GPT-2 stand-in training text", done: Some(d("gpt2_text.txt")), action: Action::Prepare(inputs::gpt2_text) },
        Step {
            name: "GPT-2 stand-in (pre-training)",
            done: Some(d("gpt2/model.safetensors")),
            action: with_device(&[
                "train-lm",
                "--config",
                &p("init/gpt2.json"),
                "--tokenizer",
                &tok,
                "--data",
                &p("gpt2_text.txt"),
                "--out",
                &p("gpt2"),
                "--steps",
                &n(&s.gpt2_steps),
                "--batch",
                "16",
                "--seq",
                "32",
                "--lr",
                "3e-3",
                "--warmup",
                "20",
                "--eval-every",
                "0",
                "--seed",
                &seed,
            ]),
        },
        Step {
            name: "stage 6: train the captioner (ClipCap)",
            done: Some(d("captioner/log.jsonl")),
            action: with_device(&[
                "train-captioner",
                "--clip",
                &p("clip"),
                "--gpt2",
                &p("gpt2"),
                "--pseudo-labels",
                &p("pseudo_labels.jsonl"),
                "--out",
                &p("captioner"),
                "--epochs",
                &n(&s.captioner_epochs),
                "--batch",
                "32",
                "--lr",
                "1e-3",
                "--seed",
                &seed,
            ]),
        },
        Step { name: "manifest of the test and categorical images", done: Some(d("manifest.jsonl")), action: Action::Prepare(inputs::manifest) },
        Step {
            name: "stage 7: predict",
            done: None,
            action: with_device(&[
                "predict",
                "--captioner",
                &p("captioner"),
                "--clip",
                &p("clip"),
                "--manifest",
                &p("manifest.jsonl"),
                "--out",
                &p("predictions.jsonl"),
                "--beams",
                &n(&s.beams),
            ]),
        },
        Step { name: "evaluate", done: Some(d("evaluation.json")), action: evaluate_step(&p, &device) },
    ]
}

/// `hhi evaluate`, with semantic and verb similarity from the pretrained
/// all-MiniLM-L6-v2 where scripts/fetch-minilm has put it in the cache
/// (without it, the report says they were not computed and why).
fn evaluate_step(p: &dyn Fn(&str) -> String, device: &[String]) -> Action {
    let mut argv: Vec<String> =
        ["evaluate", "--predictions", &p("predictions.jsonl"), "--gold", &p("world/test.jsonl"), "--categorical", &p("world/categorical.jsonl"), "--out", &p("evaluation.json")]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let minilm = hhi::io::cache::minilm_dir();
    if minilm.join("model.safetensors").exists() {
        argv.extend(["--sentence-model".to_string(), minilm.to_string_lossy().into_owned()]);
        argv.extend(device.iter().cloned());
    } else {
        eprintln!("demo: semantic and verb similarity will be skipped: all-MiniLM-L6-v2 is not in {} (scripts/fetch-minilm fetches it)", minilm.display());
    }
    Action::Hhi(argv)
}
