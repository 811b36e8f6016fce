//! Text metrics of one prediction against one gold label. Labels are
//! compared as lower-cased whitespace tokens (`_` is a token: the
//! participant placeholder).

use std::collections::HashMap;

fn tokens(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_lowercase).collect()
}

/// Same tokens in the same order.
pub fn exact_match(pred: &str, gold: &str) -> bool {
    tokens(pred) == tokens(gold)
}

/// The label's interaction word: its second token (`_ hugging _` → hugging).
pub fn gerund(label: &str) -> Option<String> {
    tokens(label).into_iter().nth(1)
}

/// Same interaction word.
pub fn gerund_match(pred: &str, gold: &str) -> bool {
    gerund(gold).is_some() && gerund(pred) == gerund(gold)
}

fn counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut c = HashMap::new();
    for g in words.windows(n) {
        *c.entry(g).or_default() += 1;
    }
    c
}

/// Sentence BLEU-4 with add-one smoothing of the 2- to 4-gram precisions
/// (Lin & Och 2004, "smoothing 2" in NLTK's terms) and the brevity penalty.
pub fn bleu4(pred: &str, gold: &str) -> f64 {
    let (p, g) = (tokens(pred), tokens(gold));
    if p.is_empty() || g.is_empty() {
        return 0.0;
    }
    let mut log_sum = 0.0;
    for n in 1..=4 {
        let (pc, gc) = (counts(&p, n), counts(&g, n));
        let matched: usize = pc.iter().map(|(k, &c)| c.min(*gc.get(k).unwrap_or(&0))).sum();
        let total = p.len().saturating_sub(n - 1);
        let (num, den) = if n == 1 { (matched as f64, total as f64) } else { (matched as f64 + 1.0, total as f64 + 1.0) };
        if num == 0.0 || den == 0.0 {
            return 0.0;
        }
        log_sum += (num / den).ln() / 4.0;
    }
    let bp = if p.len() >= g.len() { 1.0 } else { (1.0 - g.len() as f64 / p.len() as f64).exp() };
    bp * log_sum.exp()
}

/// Token-overlap F1 (SQuAD's): the harmonic mean of the shared tokens'
/// precision and recall, shared counted with multiplicity.
pub fn word_f1(pred: &str, gold: &str) -> f64 {
    let (p, g) = (tokens(pred), tokens(gold));
    let (pc, gc) = (counts(&p, 1), counts(&g, 1));
    let shared: usize = pc.iter().map(|(k, &c)| c.min(*gc.get(k).unwrap_or(&0))).sum();
    if shared == 0 {
        return 0.0;
    }
    let (precision, recall) = (shared as f64 / p.len() as f64, shared as f64 / g.len() as f64);
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ignore_case_and_spacing() {
        assert!(exact_match("_  Hugging _", "_ hugging _"));
        assert!(!exact_match("_ hugging _ warmly", "_ hugging _"));
        assert!(gerund_match("_ hugging _ at the net", "_ hugging _"));
        assert!(!gerund_match("_ lifting _", "_ hugging _"));
        assert_eq!(gerund("_ handing a trophy to _").as_deref(), Some("handing"));
    }

    #[test]
    fn bleu_by_hand() {
        assert!((bleu4("_ hugging _", "_ hugging _") - 1.0).abs() < 1e-12);
        // pred "_ handing a trophy to _" (6) vs gold "_ handing a medal to _" (6):
        // 1-grams 5/6; 2-grams 3 of 5 → (3+1)/(5+1); 3-grams 1 of 4 → 2/5; 4-grams 0 of 3 → 1/4.
        let want = ((5.0f64 / 6.0).ln() / 4.0 + (4.0f64 / 6.0).ln() / 4.0 + (2.0f64 / 5.0).ln() / 4.0 + (1.0f64 / 4.0).ln() / 4.0).exp();
        assert!((bleu4("_ handing a trophy to _", "_ handing a medal to _") - want).abs() < 1e-12);
        // A shorter prediction pays the brevity penalty exp(1 − 6/3); 1-grams 3/3,
        // 2-grams 1 of 2 → 2/3, 3-grams 0 of 1 → 1/2, no 4-grams → 1/1.
        let short = bleu4("_ handing _", "_ handing a medal to _");
        let want = (1.0f64 - 2.0).exp() * ((2.0f64 / 3.0).ln() / 4.0 + (1.0f64 / 2.0).ln() / 4.0).exp();
        assert!((short - want).abs() < 1e-12, "{short} vs {want}");
        assert_eq!(bleu4("", "_ hugging _"), 0.0);
    }

    #[test]
    fn word_f1_counts_shared_tokens() {
        // shared {_, _, hugging} = 3; precision 3/4, recall 3/3.
        assert!((word_f1("_ hugging _ warmly", "_ hugging _") - 2.0 * 0.75 / 1.75).abs() < 1e-12);
        assert_eq!(word_f1("cat", "_ hugging _"), 0.0);
    }
}
