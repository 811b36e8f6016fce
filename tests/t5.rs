//! T5 pieces beyond the parity fixtures: the relative position buckets
//! against transformers' own (stored by make_fixtures.py for distances far
//! past `max_distance`), and clear errors for configs the graph cannot run.

mod common;
use common::{repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::io::checkpoint::ModelDir;
use hhi::models::t5::buckets;

#[test]
fn relative_position_buckets_match_transformers() {
    let text = std::fs::read_to_string(repo("tests/fixtures/t5_buckets.json")).expect("t5_buckets.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = json["relative_positions"][0].as_i64().unwrap();
    let tables = json["tables"].as_array().unwrap();
    assert!(tables.len() >= 8);
    for t in tables {
        let (nb, md, bi) = (t["num_buckets"].as_u64().unwrap() as usize, t["max_distance"].as_u64().unwrap() as usize, t["bidirectional"].as_bool().unwrap());
        for (i, want) in t["buckets"].as_array().unwrap().iter().enumerate() {
            let rel = first + i as i64;
            assert_eq!(buckets::bucket(rel, bi, nb, md) as i64, want.as_i64().unwrap(), "bucket of {rel} (num_buckets {nb}, max_distance {md}, bidirectional {bi})");
        }
    }
}

#[test]
fn unknown_feed_forward_is_a_clear_error() {
    let src = repo("tests/fixtures/t5_tiny");
    let dir = tempdir("t5_bad_ff");
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    for (proj, expect) in [("gated-swishy", "unknown activation `swishy`"), ("double-gated-gelu", "is not `ACT` or `gated-ACT`")] {
        cfg["feed_forward_proj"] = proj.into();
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let err = ModelDir::open(&dir).and_then(|d| d.load_t5(&Cpu, None)).err().expect("a bad feed_forward_proj must fail");
        let msg = err.to_string();
        assert!(msg.contains("config.json") && msg.contains(expect), "unclear error: {msg}");
    }
}

#[test]
fn weights_of_another_shape_name_the_tensor() {
    let src = repo("tests/fixtures/t5_tiny");
    let dir = tempdir("t5_bad_shape");
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["d_ff"] = 30.into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let msg = ModelDir::open(&dir).and_then(|d| d.load_t5(&Cpu, None)).err().expect("mismatched weights must fail").to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("DenseReluDense.wi.weight"), "unclear error: {msg}");
}

#[test]
fn summarize_prints_the_top_beams_best_first() {
    let out = std::process::Command::new(common::hhi_bin())
        .args(["summarize", "--model"])
        .arg(repo("tests/fixtures/t5_tiny"))
        .args(["--input", "alex hands a trophy to bailey", "--input", "the coach helps an athlete", "--num-beams", "3", "--top-k-beams", "3"])
        .output()
        .expect("run hhi");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let scores: Vec<f64> = line["summaries"].as_array().unwrap().iter().map(|s| s["score"].as_f64().unwrap()).collect();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "beams not best first: {scores:?}");
    }
}

#[test]
fn summarize_names_the_bad_jsonl_line() {
    let dir = tempdir("t5_bad_jsonl");
    std::fs::write(dir.join("in.jsonl"), "{\"text\": \"two players hug\"}\n{\"caption\": \"x\"}\n").unwrap();
    let out =
        std::process::Command::new(common::hhi_bin()).args(["summarize", "--model"]).arg(repo("tests/fixtures/t5_tiny")).arg("--file").arg(dir.join("in.jsonl")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("in.jsonl") && err.contains("line 2") && !err.contains("panicked"), "unclear error: {err}");
}
