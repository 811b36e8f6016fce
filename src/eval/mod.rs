//! `hhi evaluate`'s computations: predictions (top-k texts per item) against
//! gold labels at k = 1, 5, 8 — exact match, gerund accuracy, BLEU-4 and
//! word-overlap F1, each the best over the top k — averaged per source and
//! then over sources, as the method reports them; a majority-label baseline;
//! and verb accuracy on a categorical (imSitu-style) set. The top prediction
//! also gets corpus-level BLEU, ROUGE-L and CIDEr-D (lexical.rs, as the
//! packages papers cite compute them) and diversity figures beside the
//! gold labels' (diversity.rs).

pub mod diversity;
pub mod lexical;
pub mod metrics;
pub mod similarity;

use metrics::{bleu4, exact_match, gerund, gerund_match, word_f1};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// A gold item: its id, label and source (dataset part; "all" when absent).
#[derive(Clone, Debug)]
pub struct Gold {
    pub id: String,
    pub label: String,
    pub source: String,
}

pub const KS: [usize; 3] = [1, 5, 8];
const METRICS: [&str; 4] = ["exact_match", "gerund_accuracy", "bleu4", "word_f1"];

/// The four metrics of one item at one k: the best over its top k predictions.
fn item_scores(preds: &[String], gold: &str, k: usize) -> [f64; 4] {
    let top = &preds[..k.min(preds.len())];
    let best = |f: &dyn Fn(&str) -> f64| top.iter().map(|p| f(p)).fold(0.0, f64::max);
    [best(&|p| exact_match(p, gold) as u8 as f64), best(&|p| gerund_match(p, gold) as u8 as f64), best(&|p| bleu4(p, gold)), best(&|p| word_f1(p, gold))]
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// The report: `{"n", "missing_predictions", "k": {"1": {"overall": {...},
/// "per_source": {...}}, ...}, "corpus": {...}, "diversity": {...},
/// "majority_baseline": {...}}`. Items without predictions score 0.
pub fn evaluate(predictions: &HashMap<String, Vec<String>>, gold: &[Gold]) -> Value {
    let mut by_k = serde_json::Map::new();
    for k in KS {
        let mut per_source: BTreeMap<&str, Vec<[f64; 4]>> = BTreeMap::new();
        for g in gold {
            let scores = predictions.get(&g.id).map_or([0.0; 4], |p| item_scores(p, &g.label, k));
            per_source.entry(&g.source).or_default().push(scores);
        }
        let source_means: BTreeMap<&str, [f64; 4]> =
            per_source.iter().map(|(s, rows)| (*s, std::array::from_fn(|m| mean(&rows.iter().map(|r| r[m]).collect::<Vec<_>>())))).collect();
        let overall: [f64; 4] = std::array::from_fn(|m| mean(&source_means.values().map(|r| r[m]).collect::<Vec<_>>()));
        let as_json = |r: &[f64; 4]| Value::Object(METRICS.iter().zip(r).map(|(name, v)| (name.to_string(), json!(v))).collect());
        let sources: serde_json::Map<String, Value> = source_means.iter().map(|(s, r)| (s.to_string(), as_json(r))).collect();
        by_k.insert(k.to_string(), json!({"overall": as_json(&overall), "per_source": sources}));
    }
    json!({
        "n": gold.len(),
        "missing_predictions": gold.iter().filter(|g| !predictions.contains_key(&g.id)).count(),
        "k": by_k,
        "corpus": corpus_scores(predictions, gold),
        "diversity": {
            "predictions": diversity::diversity(&gold.iter().map(|g| top_prediction(predictions, g)).collect::<Vec<_>>()),
            "gold": diversity::diversity(&gold.iter().map(|g| g.label.as_str()).collect::<Vec<_>>()),
        },
        "majority_baseline": majority_baseline(gold),
    })
}

fn top_prediction<'a>(predictions: &'a HashMap<String, Vec<String>>, g: &Gold) -> &'a str {
    predictions.get(&g.id).and_then(|p| p.first()).map_or("", String::as_str)
}

/// A label as text to compare with text metrics: the placeholder `_` read as
/// "person" (as the method feeds labels to BLEURT).
pub fn as_text(label: &str) -> String {
    label.split_whitespace().map(|w| if w == "_" { "person" } else { w }).collect::<Vec<_>>().join(" ")
}

/// Corpus BLEU-4 (sacrebleu, 0–100), mean ROUGE-L F and CIDEr-D of the top
/// prediction against the gold label, per source, then the mean over sources.
fn corpus_scores(predictions: &HashMap<String, Vec<String>>, gold: &[Gold]) -> Value {
    let mut per_source: BTreeMap<&str, (Vec<String>, Vec<Vec<String>>)> = BTreeMap::new();
    for g in gold {
        let (hyps, refs) = per_source.entry(&g.source).or_default();
        hyps.push(as_text(top_prediction(predictions, g)));
        refs.push(vec![as_text(&g.label)]);
    }
    let scores: BTreeMap<&str, [f64; 3]> =
        per_source.iter().map(|(s, (h, r))| (*s, [lexical::corpus_bleu(h, r).score, lexical::mean_rouge_l(h, r), lexical::cider_d(h, r)])).collect();
    let as_json = |v: &[f64; 3]| json!({"bleu4_corpus": v[0], "rouge_l": v[1], "cider_d": v[2]});
    let overall: [f64; 3] = std::array::from_fn(|m| mean(&scores.values().map(|v| v[m]).collect::<Vec<_>>()));
    json!({"k": 1, "overall": as_json(&overall), "per_source": scores.iter().map(|(s, v)| (s.to_string(), as_json(v))).collect::<serde_json::Map<_, _>>()})
}

/// Always answering the most frequent gold label (ties: the first seen).
pub fn majority_baseline(gold: &[Gold]) -> Value {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, g) in gold.iter().enumerate() {
        counts.entry(&g.label).or_insert((0, i)).0 += 1;
    }
    let Some((label, _)) = counts.iter().max_by_key(|(_, &(n, first))| (n, std::cmp::Reverse(first))) else { return json!(null) };
    let n = gold.len().max(1) as f64;
    json!({
        "label": label,
        "exact_match": gold.iter().filter(|g| exact_match(label, &g.label)).count() as f64 / n,
        "gerund_accuracy": gold.iter().filter(|g| gerund_match(label, &g.label)).count() as f64 / n,
    })
}

/// Verb accuracy on a categorical set: the top prediction's interaction
/// word equals the item's verb (imSitu verbs are -ing words).
pub fn verb_accuracy(predictions: &HashMap<String, Vec<String>>, verbs: &[(String, String)]) -> f64 {
    let hits = verbs.iter().filter(|(id, verb)| predictions.get(id).and_then(|p| p.first()).and_then(|p| gerund(p)).is_some_and(|g| g == verb.to_lowercase())).count();
    hits as f64 / verbs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gold(id: &str, label: &str, source: &str) -> Gold {
        Gold { id: id.into(), label: label.into(), source: source.into() }
    }

    #[test]
    fn scores_average_per_source_then_over_sources() {
        let preds: HashMap<String, Vec<String>> = [("a", vec!["_ hugging _", "_ lifting _"]), ("b", vec!["_ greeting _", "_ carrying _"]), ("c", vec!["_ hugging _ warmly"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
        let gold = [gold("a", "_ hugging _", "news"), gold("b", "_ carrying _", "news"), gold("c", "_ hugging _", "web"), gold("d", "_ hugging _", "web")];
        let r = evaluate(&preds, &gold);
        assert_eq!(r["missing_predictions"], 1);
        // k = 1: news exact 1/2, web exact 0/2 → overall 0.25; gerund: news 1/2, web 1/2 → 0.5.
        assert_eq!(r["k"]["1"]["overall"]["exact_match"], 0.25);
        assert_eq!(r["k"]["1"]["overall"]["gerund_accuracy"], 0.5);
        // k = 5: b's second prediction matches → news 1.0.
        assert_eq!(r["k"]["5"]["per_source"]["news"]["exact_match"], 1.0);
        assert_eq!(r["majority_baseline"]["label"], "_ hugging _");
        assert_eq!(r["majority_baseline"]["gerund_accuracy"], 0.75);
        // Corpus metrics score the top predictions (tests/lexical.rs checks their values).
        assert!(r["corpus"]["overall"]["bleu4_corpus"].as_f64().is_some_and(|b| b > 0.0 && b <= 100.0));
        // Top predictions: two hugging labels and a greeting one (d has none).
        assert_eq!(r["diversity"]["predictions"]["labels"], 3);
        assert_eq!(r["diversity"]["gold"]["gerunds"], 2);
        let verbs = [("a".to_string(), "hugging".to_string()), ("b".to_string(), "carrying".to_string())];
        assert_eq!(verb_accuracy(&preds, &verbs), 0.5);
    }
}
