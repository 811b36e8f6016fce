//! `hhi demo --quick` end to end, as CI runs it: the world, the stand-ins
//! and every stage on 2 CPU cores (about 3 minutes on the project's
//! machines), then report.json with the keys the README documents and a
//! self-contained report.html. The quick mode's numbers are its own (a
//! GPT-Neo stand-in trained 900 steps keeps few captions); only their form
//! is checked here, the full demo's values are in the README.

mod common;

use std::process::Command;

fn fraction(v: &serde_json::Value, path: &str) -> f64 {
    let x = path.split('.').fold(v, |v, key| &v[key]).as_f64().unwrap_or_else(|| panic!("report.json lacks {path}: {v}"));
    assert!((0.0..=1.0).contains(&x), "{path} = {x} is not a fraction");
    x
}

#[test]
fn quick_demo_runs_every_stage_and_writes_its_report() {
    let dir = common::tempdir("demo-quick");
    let out = dir.join("run");
    let run = Command::new(common::hhi_bin()).args(["demo", "--quick", "--out", out.to_str().unwrap()]).output().expect("run hhi");
    assert!(run.status.success(), "hhi demo --quick failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for key in [
        "pseudo_labels.exact_match",
        "pseudo_labels.gerund_accuracy",
        "pseudo_labels.where_stated.gerund_accuracy",
        "captioner.top1_gerund_accuracy",
        "captioner.top5_gerund_accuracy",
    ] {
        fraction(&report, key);
    }
    for key in ["captioner.exact_match", "captioner.majority_baseline", "captioner.tail_top5_gerund_accuracy", "categorical.verb_accuracy"] {
        fraction(&report, key);
    }
    assert!(report["pseudo_labels"]["n"].as_u64().unwrap() > 0 && report["captioner"]["n"].as_u64().unwrap() > 0, "{report}");
    let timings = report["timings_s"].as_object().expect("timings_s");
    assert!(timings.len() >= 10 && timings.values().all(|t| t.as_f64().is_some_and(|t| t >= 0.0)), "{report}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,") && html.contains("<svg") && html.contains("majority"), "report.html lacks thumbnails, plots or the baseline");
    // Semantic and verb similarity beside gerund accuracy: from all-MiniLM-L6-v2
    // where scripts/fetch-minilm has put it in the cache, else marked not computed.
    assert!(html.contains("semantic similarity") && html.contains("verb similarity"), "report.html lacks the similarity columns");
    if hhi::io::cache::minilm_dir().join("model.safetensors").exists() {
        for key in ["top1_semantic_similarity", "top1_verb_similarity"] {
            let x = report["captioner"][key].as_f64().unwrap_or_else(|| panic!("captioner.{key} missing with the encoder cached"));
            assert!((-1.0..=1.0001).contains(&x), "captioner.{key} = {x}");
        }
    } else {
        println!("all-MiniLM-L6-v2 not cached: checking that the report says the similarities were not computed");
        assert!(html.contains("not computed") && report["captioner"]["top1_semantic_similarity"].is_null());
    }

    // A rerun finds every step done and reports the same numbers.
    let rerun = Command::new(common::hhi_bin()).args(["demo", "--quick", "--out", out.to_str().unwrap()]).output().expect("run hhi");
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let again: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for key in ["pseudo_labels", "captioner", "categorical", "evaluation"] {
        assert_eq!(again[key], report[key], "a rerun of a finished demo changed {key}");
    }
}
