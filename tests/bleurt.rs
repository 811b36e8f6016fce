//! BLEURT scoring end to end: bleurt-pytorch's `BleurtForSequenceClassification`
//! (tiny random, tests/fixtures/bleurt_tiny) on (reference, candidate) pairs
//! through a WordPiece tokenizer, against the scores make_fixtures.py stored,
//! first through the library, then through `hhi evaluate --bleurt`.

mod common;
use common::{hhi_bin, repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::eval::similarity::PairScorer;
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
