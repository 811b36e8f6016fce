//! Lexical metrics against the packages papers cite: corpus BLEU and its 13a
//! tokenization (sacrebleu), ROUGE-L (rouge-score), CIDEr-D (pycocoevalcap),
//! on the test sets tests/fixtures/make_lexical.py stored with their scores.

use hhi::eval::lexical::{cider_d, corpus_bleu, mean_rouge_l, tokenize_13a};
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

struct Set {
    name: String,
    hyps: Vec<String>,
    refs: Vec<Vec<String>>,
    expected: Value,
}

fn sets() -> Vec<Set> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lexical.json")).expect("tests/fixtures/lexical.json");
    let root: Value = serde_json::from_str(&text).expect("lexical.json is JSON");
    let strings = |v: &Value| v.as_array().expect("a list").iter().map(|s| s.as_str().expect("a string").to_string()).collect::<Vec<_>>();
    root["sets"]
        .as_object()
        .expect("sets")
        .iter()
        .map(|(name, set)| {
            let items = set["items"].as_array().expect("items");
            Set {
                name: name.clone(),
                hyps: items.iter().map(|i| i["hypothesis"].as_str().expect("hypothesis").to_string()).collect(),
                refs: items.iter().map(|i| strings(&i["references"])).collect(),
                expected: set["expected"].clone(),
            }
        })
        .collect()
}

fn close(name: &str, what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{name}: no expected {what}"));
    println!("{name}: {what} {got} vs {want} (|diff| {:.2e})", (got - want).abs());
    assert!((got - want).abs() <= TOLERANCE, "{name}: {what} {got} != {want}");
}

#[test]
fn thirteen_a_tokenization_matches_sacrebleu() {
    for set in sets() {
        let segments = set.hyps.iter().chain(set.refs.iter().flatten());
        for (segment, want) in segments.zip(set.expected["tokens_13a"].as_array().expect("tokens_13a")) {
            assert_eq!(tokenize_13a(segment), want.as_str().expect("a string"), "{}: 13a of {segment:?}", set.name);
        }
    }
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    for set in sets() {
        let bleu = corpus_bleu(&set.hyps, &set.refs);
        let want = &set.expected["bleu"];
        close(&set.name, "BLEU", bleu.score, &want["score"]);
        close(&set.name, "brevity penalty", bleu.brevity_penalty, &want["bp"]);
        for (n, p) in bleu.precisions.iter().enumerate() {
            close(&set.name, &format!("{}-gram precision", n + 1), *p, &want["precisions"][n]);
        }
        assert_eq!((bleu.sys_len as u64, bleu.ref_len as u64), (want["sys_len"].as_u64().unwrap(), want["ref_len"].as_u64().unwrap()), "{}: lengths", set.name);
    }
}

#[test]
fn rouge_l_matches_rouge_score() {
    for set in sets() {
        close(&set.name, "ROUGE-L F", mean_rouge_l(&set.hyps, &set.refs), &set.expected["rouge_l"]);
    }
}

#[test]
fn cider_d_matches_pycocoevalcap() {
    for set in sets() {
        close(&set.name, "CIDEr-D", cider_d(&set.hyps, &set.refs), &set.expected["cider_d"]);
    }
}
