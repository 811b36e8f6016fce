//! Corpus-level lexical metrics, each computed exactly as the implementation
//! papers cite, so that numbers are comparable across papers:
//! - BLEU-4 as `sacrebleu.corpus_bleu` (2.x defaults: the `13a` tokenizer of
//!   mteval-v13a, case kept, `exp` smoothing, closest reference length);
//! - ROUGE-L F as `rouge_score.rouge_scorer.RougeScorer(["rougeL"])`
//!   (no stemmer; the best reference per item, then the mean over items);
//! - CIDEr-D as `pycocoevalcap.cider.Cider` (tf-idf n-gram cosine with
//!   clipping and a Gaussian length penalty, ×10) on whitespace tokens.
//!
//! tests/lexical.rs checks each against scores the fixture script computed
//! with those packages (tests/fixtures/lexical.json).

use std::collections::HashMap;

type Counts<'a> = HashMap<&'a [String], usize>;

/// Every n-gram of order 1..=max_n with its count.
fn ngram_counts(tokens: &[String], max_n: usize) -> Counts<'_> {
    let mut c = HashMap::new();
    for n in 1..=max_n {
        for g in tokens.windows(n) {
            *c.entry(g).or_default() += 1;
        }
    }
    c
}

/// Python's `str.split()`: Unicode whitespace plus the ASCII separators
/// U+001C..U+001F, which Rust does not count as whitespace.
fn python_split(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// One pass of a two-character rule `(a)(b)` → replacement, scanning left to
/// right over non-overlapping matches as Python's `re.sub` does.
fn sub_pairs(chars: &[char], matches: impl Fn(char, char) -> bool, replace: impl Fn(char, char, &mut Vec<char>)) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            replace(chars[i], chars[i + 1], &mut out);
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// sacrebleu's `13a` tokenizer (mteval-v13a's): tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    // Symbols become tokens: [{-~], [[-`], [ -&], [(-+], [:-@] and '/'.
    let symbol = |c: char| matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/');
    let mut chars: Vec<char> = Vec::with_capacity(line.len() * 2);
    chars.push(' ');
    for c in line.chars() {
        if symbol(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    chars.push(' ');
    let digit = |c: char| c.is_ascii_digit();
    let period_comma = |c: char| c == '.' || c == ',';
    // Period and comma apart unless preceded by a digit, then unless followed by one.
    let chars = sub_pairs(&chars, |a, b| !digit(a) && period_comma(b), |a, b, o| o.extend([a, ' ', b, ' ']));
    let chars = sub_pairs(&chars, |a, b| period_comma(a) && !digit(b), |a, b, o| o.extend([' ', a, ' ', b]));
    // A dash after a digit.
    let chars = sub_pairs(&chars, |a, b| digit(a) && b == '-', |a, b, o| o.extend([a, ' ', b, ' ']));
    python_split(&chars.into_iter().collect::<String>()).join(" ")
}

/// A corpus BLEU score and its parts (percentages, as sacrebleu prints them).
#[derive(Clone, Debug, PartialEq)]
pub struct Bleu {
    pub score: f64,
    pub precisions: [f64; 4],
    pub brevity_penalty: f64,
    pub sys_len: usize,
    pub ref_len: usize,
}

/// The reference length closest to `hyp_len` (ties: the shorter).
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    ref_lens.iter().copied().min_by_key(|&r| (r.abs_diff(hyp_len), r)).unwrap_or(0)
}

/// `sacrebleu.corpus_bleu(hyps, refs)` with `refs[i]` the references of
/// `hyps[i]` (sacrebleu takes them as streams, one per reference position).
pub fn corpus_bleu(hyps: &[String], refs: &[Vec<String>]) -> Bleu {
    const N: usize = 4;
    let (mut correct, mut total) = ([0usize; N], [0usize; N]);
    let (mut sys_len, mut ref_len) = (0, 0);
    for (hyp, item_refs) in hyps.iter().zip(refs) {
        let hyp_tokens = python_split(&tokenize_13a(hyp));
        let ref_tokens: Vec<Vec<String>> = item_refs.iter().map(|r| python_split(&tokenize_13a(r))).collect();
        // Each n-gram's count clipped by its largest count in any reference.
        let mut max_ref: Counts = HashMap::new();
        for r in &ref_tokens {
            for (g, c) in ngram_counts(r, N) {
                let m = max_ref.entry(g).or_default();
                *m = (*m).max(c);
            }
        }
        for (g, c) in ngram_counts(&hyp_tokens, N) {
            total[g.len() - 1] += c;
            correct[g.len() - 1] += c.min(max_ref.get(g).copied().unwrap_or(0));
        }
        sys_len += hyp_tokens.len();
        ref_len += closest_ref_len(hyp_tokens.len(), &ref_tokens.iter().map(Vec::len).collect::<Vec<_>>());
    }
    let brevity_penalty = match (sys_len, ref_len) {
        (s, r) if s < r && s > 0 => (1.0 - r as f64 / s as f64).exp(),
        (s, r) if s < r => 0.0,
        _ => 1.0,
    };
    let mut precisions = [0.0; N];
    if correct.iter().all(|&c| c == 0) {
        return Bleu { score: 0.0, precisions, brevity_penalty, sys_len, ref_len };
    }
    // `exp` smoothing (mteval's): the k-th order without matches gets 100 / (2^k · total).
    let mut smooth = 1.0;
    for n in 0..N {
        if total[n] == 0 {
            break;
        }
        precisions[n] = if correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
    }
    // sacrebleu's floored log: log(0) counts as -9999999999.
    let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
    let score = brevity_penalty * (precisions.iter().map(|&p| log(p)).sum::<f64>() / N as f64).exp();
    Bleu { score, precisions, brevity_penalty, sys_len, ref_len }
}

/// rouge-score's default tokenizer without stemming: lower-cased runs of
/// ASCII letters and digits.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    text.to_lowercase().split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit())).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// Length of the longest common subsequence.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { above.max(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// ROUGE-L F-measure of one prediction against one target (rouge-score's `rougeL`).
pub fn rouge_l(target: &str, prediction: &str) -> f64 {
    let (t, p) = (rouge_tokens(target), rouge_tokens(prediction));
    if t.is_empty() || p.is_empty() {
        return 0.0;
    }
    let lcs = lcs_len(&t, &p) as f64;
    let (precision, recall) = (lcs / p.len() as f64, lcs / t.len() as f64);
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// Mean over items of the best ROUGE-L F against the item's references
/// (`score_multi`).
pub fn mean_rouge_l(hyps: &[String], refs: &[Vec<String>]) -> f64 {
    let per_item: Vec<f64> = hyps.iter().zip(refs).map(|(h, rs)| rs.iter().map(|r| rouge_l(r, h)).fold(0.0, f64::max)).collect();
    per_item.iter().sum::<f64>() / per_item.len().max(1) as f64
}

/// An n-gram tf-idf vector of one sentence, per order, with its norms and
/// its "length" (pycocoevalcap counts the bigrams: its `n == 1` is 0-based).
struct TfIdf<'a> {
    vec: [HashMap<&'a [String], f64>; 4],
    norm: [f64; 4],
    length: f64,
}

fn tf_idf<'a>(tokens: &'a [String], doc_freq: &HashMap<&[String], f64>, log_refs: f64) -> TfIdf<'a> {
    let mut t = TfIdf { vec: Default::default(), norm: [0.0; 4], length: 0.0 };
    for (g, count) in ngram_counts(tokens, 4) {
        let n = g.len() - 1;
        let df = doc_freq.get(g).copied().unwrap_or(0.0).max(1.0).ln();
        let v = count as f64 * (log_refs - df);
        t.vec[n].insert(g, v);
        t.norm[n] += v * v;
        if n == 1 {
            t.length += count as f64;
        }
    }
    t.norm = t.norm.map(f64::sqrt);
    t
}

/// CIDEr-D of a corpus (pycocoevalcap's `Cider().compute_score`): document
/// frequencies over the references of all items; per item, the mean over
/// n = 1..4 of the clipped tf-idf cosine with each reference times
/// exp(−Δlen²/(2·6²)), averaged over references, ×10; then the mean over items.
pub fn cider_d(hyps: &[String], refs: &[Vec<String>]) -> f64 {
    const SIGMA: f64 = 6.0;
    let hyp_tokens: Vec<Vec<String>> = hyps.iter().map(|h| python_split(h)).collect();
    let ref_tokens: Vec<Vec<Vec<String>>> = refs.iter().map(|rs| rs.iter().map(|r| python_split(r)).collect()).collect();
    let mut doc_freq: HashMap<&[String], f64> = HashMap::new();
    for item in &ref_tokens {
        let mut seen: Vec<&[String]> = item.iter().flat_map(|r| ngram_counts(r, 4).into_keys()).collect();
        seen.sort();
        seen.dedup();
        for g in seen {
            *doc_freq.entry(g).or_default() += 1.0;
        }
    }
    let log_refs = (ref_tokens.len() as f64).ln();
    let mut total = 0.0;
    for (hyp, item) in hyp_tokens.iter().zip(&ref_tokens) {
        let h = tf_idf(hyp, &doc_freq, log_refs);
        let mut score = [0.0; 4];
        for r in item {
            let r = tf_idf(r, &doc_freq, log_refs);
            let penalty = (-(h.length - r.length).powi(2) / (2.0 * SIGMA * SIGMA)).exp();
            for (n, s) in score.iter_mut().enumerate() {
                let mut val: f64 = h.vec[n].iter().map(|(g, &v)| r.vec[n].get(g).map_or(0.0, |&rv| v.min(rv) * rv)).sum();
                if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
                    val /= h.norm[n] * r.norm[n];
                }
                *s += val * penalty;
            }
        }
        total += score.iter().sum::<f64>() / 4.0 / item.len().max(1) as f64 * 10.0;
    }
    total / hyp_tokens.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_a_splits_symbols_and_keeps_numbers() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(tokenize_13a("It costs 3,000.50 - no, 3.5"), "It costs 3,000.50 - no , 3.5");
        assert_eq!(tokenize_13a("a/b (c) 1990-2000 &amp; \"q\""), "a / b ( c ) 1990 - 2000 & \" q \"");
    }

    #[test]
    fn lcs_by_hand() {
        let t = |s: &str| rouge_tokens(s);
        assert_eq!(lcs_len(&t("a b c d e"), &t("a c e f")), 3);
        // LCS 3 of 4 prediction tokens and 5 target tokens: F = 2·(3/4)(3/5)/(3/4+3/5).
        assert!((rouge_l("a b c d e", "a c e f") - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert_eq!(rouge_l("", "a"), 0.0);
    }
}
