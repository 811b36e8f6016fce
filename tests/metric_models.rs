//! The metric models end to end, against what their reference packages
//! computed (tests/fixtures/make_fixtures.py): BLEURT (bleurt-pytorch's
//! `BleurtForSequenceClassification`, tiny random, bleurt_tiny) on
//! (reference, candidate) pairs through a WordPiece tokenizer, and NLI
//! (transformers' `BartForSequenceClassification`, bart_tiny) on (premise,
//! hypothesis) pairs through RoBERTa's pair template; each through the
//! library, then through `hhi evaluate`; and the error when a metric's model
//! folder is missing.

mod common;
use common::{hhi_bin, repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::eval::similarity::{Nli, PairScorer};
use hhi::models::bart::nli::BartNli;
use hhi::models::bert::bleurt::Bleurt;
use std::process::Command;

fn expected() -> (Vec<(String, String)>, Vec<f32>) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo("tests/fixtures/bleurt_tiny/scores.json")).unwrap()).unwrap();
    let pairs = v["pairs"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string())).collect();
    (pairs, v["scores"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
}

#[test]
fn bleurt_scores_match_bleurt_pytorch() {
    let (pairs, want) = expected();
    let bleurt = Bleurt::load(&Cpu, &repo("tests/fixtures/bleurt_tiny"), 2).expect("loads");
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let got = bleurt.score(&refs).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        println!("{:?}: {g} vs {w}", pairs[i]);
        assert!((g - w).abs() < 1e-5, "pair {i} {:?}: {g} vs {w}", pairs[i]);
    }
}

#[test]
fn evaluate_reports_bleurt() {
    let (pairs, want) = expected();
    let dir = tempdir("evaluate-bleurt");
    let unname = |s: &str| s.split(' ').map(|w| if w == "person" { "_" } else { w }).collect::<Vec<_>>().join(" ");
    let gold: String = pairs.iter().enumerate().map(|(i, (r, _))| format!("{}\n", serde_json::json!({"id": i.to_string(), "label": unname(r)}))).collect();
    let preds: String =
        pairs.iter().enumerate().map(|(i, (_, c))| format!("{}\n", serde_json::json!({"id": i.to_string(), "predictions": [{"text": unname(c), "score": 0.0}]}))).collect();
    std::fs::write(dir.join("gold.jsonl"), gold).unwrap();
    std::fs::write(dir.join("preds.jsonl"), preds).unwrap();
    let out = dir.join("report.json");
    let run = Command::new(hhi_bin())
        .args(["evaluate", "--predictions", dir.join("preds.jsonl").to_str().unwrap(), "--gold", dir.join("gold.jsonl").to_str().unwrap()])
        .args(["--bleurt", repo("tests/fixtures/bleurt_tiny").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let mean = want.iter().map(|&x| x as f64).sum::<f64>() / want.len() as f64;
    let got = report["similarity"]["bleurt"]["k"]["1"]["overall"].as_f64().unwrap();
    assert!((got - mean).abs() < 1e-5, "BLEURT k=1 {got} vs {mean}");
    assert!(report["similarity"]["semantic_similarity"]["not_computed"].is_string());
}

#[test]
fn a_missing_metric_model_is_a_one_line_error() {
    let dir = tempdir("evaluate-missing-model");
    std::fs::write(dir.join("gold.jsonl"), "{\"id\": \"0\", \"label\": \"_ hugging _\"}\n").unwrap();
    std::fs::write(dir.join("preds.jsonl"), "{\"id\": \"0\", \"predictions\": [{\"text\": \"_ hugging _\", \"score\": 0}]}\n").unwrap();
    for flag in ["--sentence-model", "--bleurt", "--word-vectors", "--nli"] {
        let missing = dir.join("no-such-model");
        let run = Command::new(hhi_bin())
            .args(["evaluate", "--predictions", dir.join("preds.jsonl").to_str().unwrap(), "--gold", dir.join("gold.jsonl").to_str().unwrap()])
            .args([flag, missing.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains("no-such-model") && err.trim().lines().count() == 1 && !err.contains("panicked"), "{flag}: {err}");
    }
}

/// (premise, hypothesis) pairs and their (P(entailment), P(contradiction)).
type NliCase = (Vec<(String, String)>, Vec<(f32, f32)>);

fn nli_expected() -> NliCase {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo("tests/fixtures/bart_tiny/nli.json")).unwrap()).unwrap();
    let pairs = v["pairs"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string())).collect();
    let f = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<_>>();
    (pairs, f("p_entailment").into_iter().zip(f("p_contradiction")).collect())
}

#[test]
fn nli_probabilities_match_transformers() {
    let (pairs, want) = nli_expected();
    let nli = BartNli::load(&Cpu, &repo("tests/fixtures/bart_tiny"), 3).expect("loads");
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let got = nli.probabilities(&refs).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        println!("{:?}: {g:?} vs {w:?}", pairs[i]);
        assert!((g.0 - w.0).abs() < 1e-5 && (g.1 - w.1).abs() < 1e-5, "pair {i} {:?}: {g:?} vs {w:?}", pairs[i]);
    }
}

#[test]
fn evaluate_reports_nli_against_the_source_caption() {
    let (pairs, want) = nli_expected();
    // Items 0 and 1 share the premise; their predictions fill `_` from the names.
    let dir = tempdir("evaluate-nli");
    let gold = "{\"id\": \"0\", \"label\": \"_ hugging _\", \"caption\": \"Maya hugs Tom at the gala in Lagos .\", \"names\": [\"Maya\", \"Tom\"]}\n\
                {\"id\": \"1\", \"label\": \"_ lifting _\", \"caption\": \"person lifts person .\"}\n";
    let preds = "{\"id\": \"0\", \"predictions\": [{\"text\": \"_ lifting _\", \"score\": 0}, {\"text\": \"_ hugging _\", \"score\": -1}]}\n\
                 {\"id\": \"1\", \"predictions\": [{\"text\": \"_ lifting _\", \"score\": 0}]}\n";
    std::fs::write(dir.join("gold.jsonl"), gold).unwrap();
    std::fs::write(dir.join("preds.jsonl"), preds).unwrap();
    let out = dir.join("report.json");
    let run = Command::new(hhi_bin())
        .args(["evaluate", "--predictions", dir.join("preds.jsonl").to_str().unwrap(), "--gold", dir.join("gold.jsonl").to_str().unwrap()])
        .args(["--nli", repo("tests/fixtures/bart_tiny").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let nli = &report["similarity"]["nli"];
    let at = |key: &str, k: &str| nli[key]["k"][k]["overall"].as_f64().unwrap();
    assert_eq!(pairs[1].1, "Maya lifting Tom");
    // k = 1: item 0's top prediction is pair 1, item 1's is pair 2.
    let mean = |a: f32, b: f32| (a as f64 + b as f64) / 2.0;
    assert!((at("p_entailment", "1") - mean(want[1].0, want[2].0)).abs() < 1e-5, "{nli}");
    assert!((at("p_contradiction", "1") - mean(want[1].1, want[2].1)).abs() < 1e-5, "{nli}");
    // k = 5: item 0 also has pair 0; entailment takes the highest, contradiction the lowest.
    assert!((at("p_entailment", "5") - mean(want[0].0.max(want[1].0), want[2].0)).abs() < 1e-5, "{nli}");
    assert!((at("p_contradiction", "5") - mean(want[0].1.min(want[1].1), want[2].1)).abs() < 1e-5, "{nli}");
}
