//! Training and generation end to end through the `hhi` binary: a short run
//! learns and writes a model folder, an interrupted run resumed with
//! `--resume` ends bit for bit where an uninterrupted one does, and batched
//! generation with left padding decodes each prompt as if it were alone.

mod common;
use common::{repo, tempdir};

use std::path::Path;
use std::process::Command;

fn hhi(args: &[&str]) -> String {
    let out = Command::new(common::hhi_bin()).args(args).output().expect("run hhi");
    assert!(out.status.success(), "hhi {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Trains the tiny config on the example corpus; `extra` adds flags.
fn train(dir: &Path, out: &Path, extra: &[&str]) {
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, r#"{"model_type": "gpt2", "vocab_size": 300, "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 2}"#).unwrap();
    let data = repo("examples/interactions.txt");
    let (cfg, data, out) = (s(&cfg), s(&data), s(out));
    let mut args = vec!["train-lm", "--data", &data, "--out", &out, "--steps", "12", "--batch", "4", "--seq", "16", "--warmup", "2", "--eval-every", "4", "--lr", "3e-3"];
    if !extra.contains(&"--resume") {
        args.extend(["--config", &cfg]);
    }
    args.extend(extra);
    hhi(&args);
}

fn log(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn training_learns_and_resume_is_exact() {
    let dir = tempdir("resume");
    let straight = dir.join("straight");
    train(&dir, &straight, &[]);
    let a = log(&straight);
    assert_eq!(a.len(), 12);
    let (first, last) = (a[0]["loss"].as_f64().unwrap(), a[11]["loss"].as_f64().unwrap());
    assert!(last < first - 0.5, "loss did not fall: {first} -> {last}");
    assert!(a[3]["eval_loss"].is_number() && a[0]["eval_loss"].is_null());
    for f in ["config.json", "model.safetensors", "tokenizer.json", "train_state.safetensors"] {
        assert!(straight.join(f).exists(), "{f} missing");
    }

    let resumed = dir.join("resumed");
    train(&dir, &resumed, &["--stop-after", "5"]);
    assert_eq!(log(&resumed).len(), 5);
    train(&dir, &resumed, &["--resume"]);
    let b = log(&resumed);
    assert_eq!(b.len(), 12, "log entries past the checkpoint must be replaced, not duplicated");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["loss"], y["loss"], "step {} differs after resume", x["step"]);
    }
    let same = std::fs::read(straight.join("model.safetensors")).unwrap() == std::fs::read(resumed.join("model.safetensors")).unwrap();
    assert!(same, "resumed weights differ from the uninterrupted run");
}

#[test]
fn batched_generation_matches_single_prompts() {
    let model = s(&repo("tests/fixtures/gpt2_tiny"));
    let prompts = ["Alex hands a trophy", "Two", "The mayor interviews"];
    let gen = |ps: &[&str]| {
        let mut args = vec!["generate", "--model", &model, "--greedy", "--max-new-tokens", "6", "--ignore-eos"];
        for p in ps {
            args.extend(["--prompt", p]);
        }
        hhi(&args).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let batched = gen(&prompts);
    let single: Vec<String> = prompts.iter().flat_map(|p| gen(&[p])).collect();
    assert_eq!(batched, single);
}

#[test]
fn sampling_is_seeded() {
    let model = s(&repo("tests/fixtures/gpt2_tiny"));
    let run = |seed: &str| {
        hhi(&[
            "generate",
            "--model",
            &model,
            "--prompt",
            "Alex",
            "--max-new-tokens",
            "12",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--temperature",
            "1.5",
            "--ignore-eos",
            "--seed",
            seed,
        ])
    };
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

#[test]
fn tokenizer_training_round_trips_text() {
    let dir = tempdir("tok");
    let out = dir.join("tokenizer.json");
    let corpus = repo("examples/interactions.txt");
    hhi(&["tokenizer", "train", &s(&corpus), "--vocab-size", "400", "--out", &s(&out)]);
    let tok = hhi::io::tokenizer::Tokenizer::load(&out).unwrap();
    assert!(tok.vocab_size() <= 400 && tok.vocab_size() > 300, "vocab {}", tok.vocab_size());
    assert_eq!(tok.token_id("<|endoftext|>"), Some(0));
    let text = "Alex hands a trophy to Bailey — naïve 😀";
    let ids = tok.encode(text).unwrap();
    assert!(ids.len() < text.len(), "merges should shorten the byte sequence");
    assert_eq!(tok.decode(&ids).unwrap(), text);
}

#[test]
fn bench_profiles_name_each_op_and_gemm_shape() {
    // `--profile` prints a table on stderr (ops, GEMMs per shape with their
    // TFLOP/s) and still ends stdout with the benchmark's JSON line.
    let dir = tempdir("bench-profile");
    std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt2", "vocab_size": 50, "n_positions": 16, "n_embd": 32, "n_layer": 1, "n_head": 2}"#).unwrap();
    let model = s(&dir);
    for (args, expected) in [
        (vec!["bench", "train", &model, "--batch", "2", "--seq", "8", "--steps", "2", "--profile"], ["matmul_nt 16×50×32 ", "adamw "]),
        (vec!["bench", "generate", &model, "--prompt-len", "4", "--new-tokens", "3", "--repeats", "1", "--profile"], ["matmul_nt 1×50×32 ", "select_tokens "]),
    ] {
        let out = Command::new(common::hhi_bin()).args(&args).output().expect("run hhi");
        assert!(out.status.success(), "hhi {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let table = String::from_utf8_lossy(&out.stderr);
        for name in expected {
            let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{args:?}: no `{name}` row in\n{table}"));
            assert!(row.split_whitespace().count() >= 4, "{row}");
        }
        let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
        serde_json::from_str::<serde_json::Value>(&last).unwrap_or_else(|e| panic!("{args:?}: last line is not JSON ({e}): {last}"));
    }
}
