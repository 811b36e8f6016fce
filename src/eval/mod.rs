//! `hhi evaluate`'s computations: predictions (top-k texts per item) against
//! gold labels at k = 1, 5, 8 — exact match, gerund accuracy, BLEU-4 and
//! word-overlap F1, each the best over the top k — averaged per source and
//! then over sources, as the method reports them; a majority-label baseline;
//! and verb accuracy on a categorical (imSitu-style) set.

pub mod metrics;

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

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// The report: `{"n", "missing_predictions", "k": {"1": {"overall": {...},
/// "per_source": {...}}, ...}, "majority_baseline": {...}}`. Items without
/// predictions score 0.
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
        "majority_baseline": majority_baseline(gold),
    })
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
        let verbs = [("a".to_string(), "hugging".to_string()), ("b".to_string(), "carrying".to_string())];
        assert_eq!(verb_accuracy(&preds, &verbs), 0.5);
    }
}
