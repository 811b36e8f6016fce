//! How varied the predictions are, beside the gold labels' own variety: the
//! long tail of interactions is what the method is for, and a captioner that
//! answers a few head labels can still score well on accuracy.
//! distinct-n is Li et al. 2016's: distinct n-grams ÷ all n-grams over the
//! whole set (lower-cased whitespace tokens).

use super::metrics::gerund;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Distinct n-grams over all n-grams of `texts` (0 when there are none).
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    let (mut seen, mut total) = (HashSet::new(), 0usize);
    for t in texts {
        let tokens: Vec<String> = t.split_whitespace().map(str::to_lowercase).collect();
        for g in tokens.windows(n) {
            seen.insert(g.to_vec());
            total += 1;
        }
    }
    seen.len() as f64 / total.max(1) as f64
}

/// distinct-1, distinct-2, and how many different labels and gerunds `texts`
/// hold (an empty text, a missing prediction, is no label).
pub fn diversity(texts: &[&str]) -> Value {
    let labels: HashSet<String> = texts.iter().filter(|t| !t.trim().is_empty()).map(|t| t.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()).collect();
    let gerunds: HashSet<String> = texts.iter().filter_map(|t| gerund(t)).collect();
    json!({"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "labels": labels.len(), "gerunds": gerunds.len()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_by_hand() {
        // Unigrams: _ hugging _ / _ hugging _ / _ lifting _ → {_, hugging, lifting} of 9.
        let texts = ["_ hugging _", "_ Hugging _", "_ lifting _"];
        assert!((distinct_n(&texts, 1) - 3.0 / 9.0).abs() < 1e-12);
        // Bigrams: {(_ hugging), (hugging _), (_ lifting), (lifting _)} of 6.
        assert!((distinct_n(&texts, 2) - 4.0 / 6.0).abs() < 1e-12);
        let d = diversity(&texts);
        assert_eq!((d["labels"].as_u64(), d["gerunds"].as_u64()), (Some(2), Some(2)));
        assert_eq!(distinct_n(&[], 2), 0.0);
    }
}
