//! Runs the parity harness on every committed fixture (tests/fixtures/*/ with a
//! reference.safetensors, made by transformers: see make_fixtures.py there).

mod common;
use common::{repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::tensor::DType;
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    let root = repo("tests/fixtures");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).expect("tests/fixtures").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("reference.safetensors").exists()).collect();
    dirs.sort();
    dirs
}

#[test]
fn every_fixture_passes_on_cpu() {
    let dirs = fixtures();
    assert!(dirs.len() >= 7, "expected the committed fixtures, found {dirs:?}");
    let mut failed = Vec::new();
    for dir in &dirs {
        let report = hhi::parity::run(&Cpu, dir, DType::F32).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        println!("== {}\n{report}", dir.display());
        if !report.ok() {
            failed.push(dir.clone());
        }
    }
    assert!(failed.is_empty(), "parity failed for {failed:?}");
}

/// Every fixture on `be` at the tolerances of its compute type.
fn every_fixture_passes_on<B: hhi::backend::Backend>(be: &B) {
    fixtures_pass_on(be, &fixtures());
}

fn fixtures_pass_on<B: hhi::backend::Backend>(be: &B, dirs: &[PathBuf]) {
    let dtype = be.compute_dtype();
    let mut failed = Vec::new();
    for dir in dirs {
        let report = hhi::parity::run(be, dir, dtype).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        println!("== {} on {}\n{report}", dir.display(), be.name());
        if !report.ok() {
            failed.push(dir.clone());
        }
    }
    assert!(failed.is_empty(), "parity failed on {} for {failed:?}", be.name());
}

/// The CUDA backend on the kernel emulator: every launcher and kernel on the
/// fixtures' real model graphs, on machines without a GPU.
#[test]
fn every_fixture_passes_on_emulated_cuda_f32() {
    every_fixture_passes_on(&common::emulated(DType::F32));
}

#[test]
fn every_fixture_passes_on_emulated_cuda_bf16() {
    every_fixture_passes_on(&common::emulated(DType::BF16));
}

/// cuBLASLt's epilogues (tuning alternatives until a GPU has timed them):
/// the fixtures whose feed-forwards take GELU (tanh) — GPT-2, GPT-Neo,
/// ClipCap's GPT-2 and T5's gated GELU — so their forwards, decoding and
/// (but for T5's gate) gradients run through the GELU epilogue and its
/// derivative.
const EPILOGUES: &str = "gemm_bias=epilogue,gemm_gelu=epilogue";

fn gelu_fixtures() -> Vec<PathBuf> {
    let takes_gelu = |d: &PathBuf| d.file_name().is_some_and(|n| ["gpt2", "gpt_neo", "clipcap", "t5_gated"].iter().any(|p| n.to_string_lossy().starts_with(p)));
    let dirs: Vec<PathBuf> = fixtures().into_iter().filter(takes_gelu).collect();
    assert!(dirs.len() >= 6, "expected the GPT-2, GPT-Neo, ClipCap and gated T5 fixtures, found {dirs:?}");
    dirs
}

#[test]
fn gelu_fixtures_pass_with_the_gemm_epilogues_on_emulated_cuda() {
    for dtype in [DType::F32, DType::BF16] {
        fixtures_pass_on(&common::emulated(dtype).with_tuning(EPILOGUES).unwrap(), &gelu_fixtures());
    }
}

/// Both dtypes run even where the first fails (a GPU run should say all it can).
#[test]
fn gelu_fixtures_pass_with_the_gemm_epilogues_on_cuda() {
    let mut failed = Vec::new();
    for dtype in [DType::F32, DType::BF16] {
        let Some(cuda) = common::cuda_or_skip("gelu_fixtures_pass_with_the_gemm_epilogues_on_cuda", dtype) else { return };
        let cuda = cuda.with_tuning(EPILOGUES).unwrap();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fixtures_pass_on(&cuda, &gelu_fixtures()))).is_err() {
            failed.push(dtype);
        }
    }
    assert!(failed.is_empty(), "{EPILOGUES} failed in {failed:?} (printed above)");
}

#[test]
fn every_fixture_passes_on_cuda_f32() {
    let Some(cuda) = common::cuda_or_skip("every_fixture_passes_on_cuda_f32", DType::F32) else { return };
    every_fixture_passes_on(&cuda);
}

#[test]
fn every_fixture_passes_on_cuda_bf16() {
    let Some(cuda) = common::cuda_or_skip("every_fixture_passes_on_cuda_bf16", DType::BF16) else { return };
    every_fixture_passes_on(&cuda);
}

#[test]
fn fixtures_cover_every_group() {
    // Guards against a fixture script change that silently drops a group.
    let groups = ["forward", "loss", "backward", "optimizer", "generation", "beams", "tokens"];
    let mut seen = std::collections::BTreeSet::new();
    for dir in fixtures() {
        for c in hhi::parity::run(&Cpu, &dir, DType::F32).expect("parity runs").checks {
            seen.insert(c.group);
        }
    }
    for g in groups {
        assert!(seen.contains(g), "no fixture checks the `{g}` group");
    }
}

#[test]
fn a_corrupted_reference_fails_the_check() {
    // The harness must be able to fail: perturb one expected logit.
    let src = repo("tests/fixtures/gpt2_heads5_odd");
    let tmp = tempdir("corrupt_ref");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    let mut reference = hhi::io::safetensors::load(&src.join("reference.safetensors")).unwrap();
    let logits = reference.get_mut("logits").unwrap();
    if let hhi::tensor::Data::F32(v) = &mut logits.data {
        v[7] += 1e-2;
    }
    hhi::io::safetensors::save(&tmp.join("reference.safetensors"), &reference).unwrap();
    let report = hhi::parity::run(&Cpu, &tmp, DType::F32).unwrap();
    assert!(!report.ok());
    assert_eq!(report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["logits"]);
}

#[test]
fn half_precision_and_bare_name_checkpoints_load() {
    // bf16/f16 weights widen to f32 on load; bare `gpt2`-style names (no
    // `transformer.` prefix) resolve to the same parameters.
    let src = repo("tests/fixtures/gpt2_heads5_odd");
    let original = hhi::io::checkpoint::ModelDir::open(&src).unwrap().load_gpt2(&Cpu, None).unwrap();
    let tensors = hhi::io::safetensors::load(&src.join("model.safetensors")).unwrap();
    for (dtype, bare) in [(DType::BF16, false), (DType::F16, true)] {
        let tmp = tempdir(&format!("half-{dtype}"));
        std::fs::copy(src.join("config.json"), tmp.join("config.json")).unwrap();
        let cast: hhi::io::safetensors::TensorMap =
            tensors.iter().map(|(k, t)| (if bare { k.trim_start_matches("transformer.").to_string() } else { k.clone() }, t.cast_float(dtype).unwrap())).collect();
        hhi::io::safetensors::save(&tmp.join("model.safetensors"), &cast).unwrap();
        let loaded = hhi::io::checkpoint::ModelDir::open(&tmp).unwrap().load_gpt2(&Cpu, None).unwrap();
        let rel = if dtype == DType::BF16 { 1.0 / 128.0 } else { 1.0 / 1024.0 };
        for (a, b) in loaded.params.iter().zip(&original.params) {
            assert!((a - b).abs() <= rel * b.abs() + 1e-6, "{dtype}: {a} vs {b}");
        }
    }
}
