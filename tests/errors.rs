//! Bad input must give a one-line error that names the file or tensor and a
//! non-zero exit, never a panic. Each case runs the real `hhi` binary.

mod common;
use common::{repo, tempdir};

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures").join(name)
}

/// A copy of a fixture model folder, to damage.
fn model_copy(name: &str) -> common::TempDir {
    let dir = tempdir(name);
    for f in ["config.json", "model.safetensors", "reference.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("gpt2_tiny").join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Runs hhi and returns its stderr, asserting a clean failure.
fn fails(args: &[&str], must_mention: &[&str]) -> String {
    fails_with(&[], args, must_mention)
}

/// `fails`, with these environment variables set.
fn fails_with(env: &[(&str, &str)], args: &[&str], must_mention: &[&str]) -> String {
    let out = Command::new(common::hhi_bin()).envs(env.iter().copied()).args(args).output().expect("run hhi");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "hhi {args:?} succeeded");
    assert!(!stderr.contains("panicked"), "hhi {args:?} panicked:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{stderr}");
    for m in must_mention {
        assert!(stderr.contains(m), "error does not mention `{m}`: {stderr}");
    }
    stderr
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn truncated_safetensors() {
    let dir = model_copy("truncated");
    let w = dir.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    fails(&["parity", p(&dir)], &["model.safetensors"]);
}

#[test]
fn corrupt_safetensors_header() {
    let dir = model_copy("corrupt");
    std::fs::write(dir.join("model.safetensors"), b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    fails(&["parity", p(&dir)], &["model.safetensors"]);
}

#[test]
fn missing_tensor() {
    let dir = model_copy("missing");
    let w = dir.join("model.safetensors");
    let mut map = hhi::io::safetensors::load(&w).unwrap();
    map.remove("transformer.h.1.mlp.c_fc.bias");
    hhi::io::safetensors::save(&w, &map).unwrap();
    fails(&["parity", p(&dir)], &["model.safetensors", "transformer.h.1.mlp.c_fc.bias"]);
}

#[test]
fn wrong_shape() {
    let dir = model_copy("shape");
    let w = dir.join("model.safetensors");
    let mut map = hhi::io::safetensors::load(&w).unwrap();
    map.insert("transformer.ln_f.weight".into(), hhi::tensor::Tensor::f32(vec![31], vec![1.0; 31]));
    hhi::io::safetensors::save(&w, &map).unwrap();
    fails(&["parity", p(&dir)], &["model.safetensors", "transformer.ln_f.weight", "[31]"]);
}

/// Several fixture folders at once: a damaged one fails the command, named
/// in its one-line error, and the others are still checked and reported.
#[test]
fn parity_over_several_folders_names_the_one_that_failed() {
    let dir = model_copy("several");
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"llama\"}").unwrap();
    let good = fixture("gpt2_tiny");
    let out = Command::new(common::hhi_bin()).args(["parity", p(&good), p(&dir), p(&good)]).output().expect("run hhi");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "expected a one-line error, got:\n{stderr}");
    assert!(stderr.contains("1 of 3 fixture folders failed") && stderr.contains("config.json") && stderr.contains("llama"), "{stderr}");
    assert_eq!(stdout.matches("== ").count(), 3, "each folder is named:\n{stdout}");
    assert_eq!(stdout.matches(" passed, 0 failed").count(), 2, "both good folders report:\n{stdout}");
}

#[test]
fn malformed_config() {
    let dir = model_copy("malformed");
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"gpt2\", ").unwrap();
    fails(&["parity", p(&dir)], &["config.json", "malformed JSON"]);
}

#[test]
fn unknown_model_type() {
    let dir = model_copy("unknown");
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"llama\"}").unwrap();
    fails(&["parity", p(&dir)], &["config.json", "llama"]);
}

#[test]
fn invalid_config_values() {
    let dir = model_copy("badcfg");
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"gpt2\", \"n_embd\": 30, \"n_head\": 4}").unwrap();
    fails(&["generate", "--model", p(&dir), "--prompt", "hi"], &["config.json", "divisible"]);
}

#[test]
fn empty_dataset() {
    let dir = tempdir("empty");
    let data = dir.join("data.txt");
    std::fs::write(&data, "\n\n  \n").unwrap();
    fails(&["train-lm", "--model", p(&fixture("gpt2_tiny")), "--data", p(&data), "--out", p(&dir.join("out"))], &["data.txt", "empty"]);
}

#[test]
fn invalid_utf8_dataset() {
    let dir = tempdir("utf8");
    let data = dir.join("data.txt");
    std::fs::write(&data, b"hello\nwor\xffld\n").unwrap();
    fails(&["train-lm", "--model", p(&fixture("gpt2_tiny")), "--data", p(&data), "--out", p(&dir.join("out"))], &["data.txt", "UTF-8"]);
    fails(&["tokenizer", "train", p(&data), "--out", p(&dir.join("tok.json"))], &["data.txt", "UTF-8"]);
}

#[test]
fn malformed_jsonl_dataset_names_the_line() {
    let dir = tempdir("jsonl");
    let data = dir.join("data.jsonl");
    std::fs::write(&data, "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n").unwrap();
    fails(&["train-lm", "--model", p(&fixture("gpt2_tiny")), "--data", p(&data), "--out", p(&dir.join("out"))], &["data.jsonl", "line 2"]);
}

#[test]
fn missing_model_folder() {
    fails(&["generate", "--model", "/nonexistent/model", "--prompt", "hi"], &["/nonexistent/model"]);
}

#[test]
fn cuda_device_that_cannot_open() {
    // Where CUDA works, cuda:0 opens; a device number past the last one must
    // still fail cleanly. Where it does not, any CUDA device fails cleanly.
    let device = if hhi::backend::cuda::Cuda::new(0, hhi::tensor::DType::F32).is_ok() { "cuda:4096" } else { "cuda" };
    let stderr = fails(&["parity", p(&fixture("gpt2_tiny")), "--device", device], &["device"]);
    assert!(stderr.contains("cuda") || stderr.contains("CUDA"), "{stderr}");
    fails(&["generate", "--model", p(&fixture("gpt2_tiny")), "--prompt", "hi", "--device", "cuda:4096"], &["device"]);
}

/// HHI_CUDA_EMULATOR (scripts/gpu-check --dry-run) makes cuda:0 the kernel
/// emulator: a count of multiprocessors, or a one-line error.
#[test]
fn cuda_emulator_setting() {
    let gpt2 = fixture("gpt2_tiny");
    let parity = ["parity", p(&gpt2), "--device", "cuda"];
    for bad in ["0", "many", "-3"] {
        fails_with(&[("HHI_CUDA_EMULATOR", bad)], &parity, &["HHI_CUDA_EMULATOR", "multiprocessors"]);
    }
    fails_with(&[("HHI_CUDA_EMULATOR", "8")], &["parity", p(&gpt2), "--device", "cuda:1"], &["HHI_CUDA_EMULATOR", "cuda:1"]);
    if hhi::backend::cuda::Cuda::emulated(hhi::tensor::DType::F32).is_ok() {
        let out = Command::new(common::hhi_bin()).env("HHI_CUDA_EMULATOR", "8").args(parity).output().expect("run hhi");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "parity on the emulator: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("emulator"), "the report names the device it ran on: {stdout}");
    }
}

#[test]
fn corrupt_tokenizer() {
    let dir = model_copy("tok");
    std::fs::write(dir.join("tokenizer.json"), "{not json").unwrap();
    fails(&["generate", "--model", p(&dir), "--prompt", "hi"], &["tokenizer.json"]);
}

#[test]
fn world_bad_options() {
    let dir = tempdir("world-cli");
    let out = dir.join("w");
    fails(&["world", "--out", p(&out), "--image-size", "10"], &["--image-size"]);
    fails(&["world", "--out", p(&out), "--weak", "0"], &["--weak"]);
    fails(&["world", "--out", "/proc/hhi-world", "--weak", "3", "--test", "3", "--categorical", "3"], &["/proc"]);
    std::fs::create_dir_all(&out).unwrap();
    fails(&["world", "--out", p(&out), "--weak", "3", "--test", "3", "--categorical", "3"], &["already exists"]);
}

#[test]
fn benchmark_sequences_longer_than_the_model_are_refused_before_it_is_built() {
    // Checked against config.json alone: a billion-weight config fails as fast.
    let neo = repo("examples/gpt-neo-1.3b");
    let too_long = ["bench", "generate", p(&neo), "--prompt-len", "2000", "--new-tokens", "64"];
    let err = fails(&too_long, &["2064", "2048 positions", "config.json"]);
    assert!(!err.contains("parameters"), "the model was built first: {err}");
    fails(&["bench", "train", p(&repo("examples/gpt2-124m")), "--seq", "1025"], &["1025", "1024 positions"]);
}
