//! The model-based similarity metrics of the method (DESIGN.md, stage 8), each
//! the best over the top k predictions, averaged per source, then over
//! sources:
//! - semantic similarity: the cosine of sentence embeddings of prediction
//!   and gold (`_` read as "person");
//! - verb similarity: the cosine of the two gerunds (second words) in
//!   GloVe-format word vectors (0 when either is not in the vocabulary);
//!   without a vectors file, the sentence encoder's embeddings of the two
//!   gerunds stand in, and the report says so;
//! - BLEURT(gold, prediction), `_` read as "person" (a BLEURT-20 checkpoint
//!   of bleurt-pytorch);
//! - NLI against the item's source caption (premise) with the prediction as
//!   hypothesis (`_` filled with the item's names where the gold file gives
//!   them, else "person"): P(entailment), best = highest over the top k,
//!   and P(contradiction), best = lowest.
//!
//! Each text (BLEURT: each pair) is scored once, however many items share it.

use super::metrics::gerund;
use super::{as_text, mean, Gold, KS};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

/// Anything that turns texts into unit vectors (the sentence encoder on any backend).
pub trait Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// Anything that scores (reference, candidate) pairs (BLEURT on any backend).
pub trait PairScorer {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>>;
}

/// Anything that gives (P(entailment), P(contradiction)) of (premise, hypothesis) pairs.
pub trait Nli {
    fn probabilities(&self, pairs: &[(&str, &str)]) -> Result<Vec<(f32, f32)>>;
}

/// An item's source caption and the names its `_` placeholders stand for.
#[derive(Clone, Debug, Default)]
pub struct Premise {
    pub caption: String,
    pub names: Vec<String>,
}

impl Premise {
    /// `text` with its `_` filled by the names in order, then "person".
    pub fn hypothesis(&self, text: &str) -> String {
        let mut names = self.names.iter();
        text.split_whitespace().map(|w| if w == "_" { names.next().map_or("person", String::as_str) } else { w }).collect::<Vec<_>>().join(" ")
    }
}

/// The models the metrics use, each with the name the report gives it, and
/// the items' premises for NLI (by item id).
#[derive(Default)]
pub struct Models<'a> {
    pub sentence: Option<(&'a dyn Embedder, &'a str)>,
    pub word_vectors: Option<(&'a WordVectors, &'a str)>,
    pub bleurt: Option<(&'a dyn PairScorer, &'a str)>,
    pub nli: Option<(&'a dyn Nli, &'a str)>,
    pub premises: Option<&'a HashMap<String, Premise>>,
}

/// Word vectors for the words asked for, read from a GloVe-format text file
/// (`word v1 … vn` per line), normalised to unit length.
pub struct WordVectors {
    vectors: HashMap<String, Vec<f32>>,
    pub dim: usize,
}

impl WordVectors {
    /// Reads the vectors of `words` only (a GloVe file holds 400,000 words;
    /// other lines are skipped unparsed). A malformed line among those read
    /// is an error naming it.
    pub fn load(path: &Path, words: &HashSet<String>) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let (mut vectors, mut dim) = (HashMap::new(), 0);
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::data(path, format!("line {}: {e}", i + 1)))?;
            let mut parts = line.split(' ');
            let word = parts.next().unwrap_or_default();
            if !words.contains(word) || vectors.contains_key(word) {
                continue;
            }
            let v: Vec<f32> =
                parts.map(|x| x.trim().parse::<f32>()).collect::<std::result::Result<_, _>>().map_err(|e| Error::data(path, format!("line {}: not a word vector ({e})", i + 1)))?;
            if v.is_empty() || (dim != 0 && v.len() != dim) {
                return Err(Error::data(path, format!("line {}: {} values where the file's vectors have {dim}", i + 1, v.len())));
            }
            dim = v.len();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            vectors.insert(word.to_string(), v.iter().map(|x| if norm > 0.0 { x / norm } else { 0.0 }).collect());
        }
        Ok(WordVectors { vectors, dim })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}

/// A metric as `{"k": {"1": {"overall", "per_source"}, …}}` from each item's
/// best score over its top k (`score(prediction, gold)`, which may be
/// negative); items without predictions score 0.
fn best_over_k(predictions: &HashMap<String, Vec<String>>, gold: &[Gold], score: &dyn Fn(&str, &str) -> f64) -> Value {
    best_over_k_of(predictions, gold, &|_, p, g| score(p, g), true)
}

/// [`best_over_k`] with the item's id passed to `score`, the best being the
/// highest (`highest`) or the lowest.
fn best_over_k_of(predictions: &HashMap<String, Vec<String>>, gold: &[Gold], score: &dyn Fn(&str, &str, &str) -> f64, highest: bool) -> Value {
    let mut by_k = serde_json::Map::new();
    let sign = if highest { 1.0 } else { -1.0 };
    for k in KS {
        let mut per_source: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for g in gold {
            let best = predictions
                .get(&g.id)
                .filter(|p| !p.is_empty())
                .map_or(0.0, |p| sign * p.iter().take(k).map(|p| sign * score(&g.id, p, &g.label)).fold(f64::NEG_INFINITY, f64::max));
            per_source.entry(&g.source).or_default().push(best);
        }
        let means: BTreeMap<&str, f64> = per_source.iter().map(|(s, v)| (*s, mean(v))).collect();
        by_k.insert(k.to_string(), json!({"overall": mean(&means.values().copied().collect::<Vec<_>>()), "per_source": means}));
    }
    Value::Object(by_k)
}

/// Scores each distinct pair once: `score` gets them all in one call.
fn score_once<T>(pairs: impl Iterator<Item = (String, String)>, score: impl FnOnce(&[(&str, &str)]) -> Result<Vec<T>>) -> Result<HashMap<(String, String), T>> {
    let mut pairs: Vec<(String, String)> = pairs.collect();
    pairs.sort();
    pairs.dedup();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let scores = score(&refs)?;
    Ok(pairs.into_iter().zip(scores).collect())
}

/// Embeds each distinct text once.
fn embed_all(embedder: &dyn Embedder, texts: HashSet<String>) -> Result<HashMap<String, Vec<f32>>> {
    let texts: Vec<String> = texts.into_iter().collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(texts.iter().cloned().zip(embedder.embed(&refs)?).collect())
}

/// The four metrics (semantic and verb similarity, BLEURT, NLI), or why each was not computed.
pub fn similarity_scores(predictions: &HashMap<String, Vec<String>>, gold: &[Gold], models: &Models) -> Result<Value> {
    let (sentence, word_vectors) = (models.sentence, models.word_vectors);
    let top = |g: &Gold| predictions.get(&g.id).map(|p| &p[..p.len().min(KS[KS.len() - 1])]).unwrap_or_default();
    let semantic = match sentence {
        None => json!({"not_computed": "no sentence encoder (--sentence-model DIR; scripts/fetch-minilm fetches all-MiniLM-L6-v2)"}),
        Some((embedder, name)) => {
            let texts: HashSet<String> = gold.iter().flat_map(|g| top(g).iter().map(|p| as_text(p)).chain([as_text(&g.label)])).collect();
            let n = texts.len();
            let emb = embed_all(embedder, texts)?;
            let k = best_over_k(predictions, gold, &|p, g| dot(&emb[&as_text(p)], &emb[&as_text(g)]));
            json!({"model": name, "distinct_texts": n, "k": k})
        }
    };
    let gerund_of = |s: &str| gerund(s).unwrap_or_default();
    let verb = match (word_vectors, sentence) {
        (Some((vectors, name)), _) => {
            let k = best_over_k(predictions, gold, &|p, g| match (vectors.vectors.get(&gerund_of(p)), vectors.vectors.get(&gerund_of(g))) {
                (Some(a), Some(b)) => dot(a, b),
                _ => 0.0,
            });
            json!({"source": format!("word vectors {name}"), "dim": vectors.dim, "k": k})
        }
        (None, Some((embedder, name))) => {
            let words: HashSet<String> = gold.iter().flat_map(|g| top(g).iter().map(|p| gerund_of(p)).chain([gerund_of(&g.label)])).filter(|w| !w.is_empty()).collect();
            let emb = embed_all(embedder, words)?;
            let k = best_over_k(predictions, gold, &|p, g| match (emb.get(&gerund_of(p)), emb.get(&gerund_of(g))) {
                (Some(a), Some(b)) => dot(a, b),
                _ => 0.0,
            });
            json!({"source": format!("sentence encoder {name} on the gerunds (no --word-vectors)"), "k": k})
        }
        (None, None) => json!({"not_computed": "no --word-vectors FILE and no sentence encoder"}),
    };
    let bleurt = match models.bleurt {
        None => json!({"not_computed": "no BLEURT checkpoint (--bleurt DIR)"}),
        Some((scorer, name)) => {
            let pairs = gold.iter().flat_map(|g| top(g).iter().map(|p| (as_text(&g.label), as_text(p))));
            let scores = score_once(pairs, |refs| scorer.score(refs))?;
            let k = best_over_k(predictions, gold, &|p, g| scores[&(as_text(g), as_text(p))] as f64);
            json!({"model": name, "distinct_pairs": scores.len(), "k": k})
        }
    };
    let nli = match (models.nli, models.premises) {
        (None, _) => json!({"not_computed": "no NLI model (--nli DIR, a BartForSequenceClassification such as facebook/bart-large-mnli)"}),
        (Some(_), None) => json!({"not_computed": "the gold file gives no source `caption` for a premise"}),
        (Some((model, name)), Some(premises)) => {
            // Only items with a premise count.
            let gold: Vec<Gold> = gold.iter().filter(|g| premises.contains_key(&g.id)).cloned().collect();
            let pairs = gold.iter().flat_map(|g| top(g).iter().map(|p| (premises[&g.id].caption.clone(), premises[&g.id].hypothesis(p))));
            let probs = score_once(pairs, |refs| model.probabilities(refs))?;
            let prob = |id: &str, p: &str| probs[&(premises[id].caption.clone(), premises[id].hypothesis(p))];
            let entail = best_over_k_of(predictions, &gold, &|id, p, _| prob(id, p).0 as f64, true);
            let contradict = best_over_k_of(predictions, &gold, &|id, p, _| prob(id, p).1 as f64, false);
            json!({"model": name, "items": gold.len(), "distinct_pairs": probs.len(), "p_entailment": {"k": entail}, "p_contradiction": {"k": contradict}})
        }
    };
    Ok(json!({"semantic_similarity": semantic, "verb_similarity": verb, "bleurt": bleurt, "nli": nli}))
}

/// Every word `gold` and its top predictions need a vector for.
pub fn gerunds_needed(predictions: &HashMap<String, Vec<String>>, gold: &[Gold]) -> HashSet<String> {
    let k = KS[KS.len() - 1];
    gold.iter().flat_map(|g| predictions.get(&g.id).into_iter().flatten().take(k).filter_map(|p| gerund(p)).chain(gerund(&g.label))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot "embeddings" by first letter: equal first letters give cosine 1.
    struct ByFirstLetter;
    impl Embedder for ByFirstLetter {
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|t| (b'a'..=b'z').map(|c| (t.bytes().find(|b| b.is_ascii_alphabetic()) == Some(c)) as u8 as f32).collect()).collect())
        }
    }

    #[test]
    fn best_over_k_and_fallbacks() {
        let preds: HashMap<String, Vec<String>> = [("a".to_string(), vec!["_ lifting _".to_string(), "_ hugging _".to_string()])].into_iter().collect();
        let gold = [Gold { id: "a".into(), label: "_ hugging _".into(), source: "news".into() }, Gold { id: "b".into(), label: "_ hugging _".into(), source: "news".into() }];
        // Texts all start with "person": semantic cosine 1 for a at any k, 0 for b (no predictions).
        let models = Models { sentence: Some((&ByFirstLetter, "test")), ..Default::default() };
        let r = similarity_scores(&preds, &gold, &models).unwrap();
        assert_eq!(r["semantic_similarity"]["k"]["1"]["overall"], 0.5);
        // Gerunds: lifting vs hugging differ at k = 1, hugging matches at k = 5.
        assert_eq!(r["verb_similarity"]["k"]["1"]["overall"], 0.0);
        assert_eq!(r["verb_similarity"]["k"]["5"]["overall"], 0.5);
        assert!(r["verb_similarity"]["source"].as_str().unwrap().contains("no --word-vectors"));
        let none = similarity_scores(&preds, &gold, &Models::default()).unwrap();
        assert!(["semantic_similarity", "verb_similarity", "bleurt", "nli"].iter().all(|m| none[m]["not_computed"].is_string()));
    }

    /// Minus the length gap of the two texts: 0 for equal lengths, negative otherwise.
    struct MinusLengthGap;
    impl PairScorer for MinusLengthGap {
        fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>> {
            Ok(pairs.iter().map(|(r, c)| -(r.len() as f32 - c.len() as f32).abs()).collect())
        }
    }

    #[test]
    fn bleurt_keeps_negative_scores() {
        let preds: HashMap<String, Vec<String>> = [("a".to_string(), vec!["_ lifting _ up".to_string(), "_ hugging _".to_string()])].into_iter().collect();
        let gold = [Gold { id: "a".into(), label: "_ hugging _".into(), source: "news".into() }, Gold { id: "b".into(), label: "_ hugging _".into(), source: "news".into() }];
        let models = Models { bleurt: Some((&MinusLengthGap, "test")), ..Default::default() };
        let r = similarity_scores(&preds, &gold, &models).unwrap();
        // k = 1: "person lifting person up" is 3 longer than the gold → −3; b has none → 0.
        assert_eq!(r["bleurt"]["k"]["1"]["overall"], -1.5);
        assert_eq!(r["bleurt"]["k"]["5"]["overall"], 0.0);
        assert_eq!(r["bleurt"]["distinct_pairs"], 2);
    }

    /// Entailment 0.9 when the hypothesis's words all occur in the premise, else 0.2; contradiction 1 − that.
    struct WordsInPremise;
    impl Nli for WordsInPremise {
        fn probabilities(&self, pairs: &[(&str, &str)]) -> Result<Vec<(f32, f32)>> {
            Ok(pairs.iter().map(|(p, h)| if h.split(' ').all(|w| p.contains(w)) { (0.9, 0.1) } else { (0.2, 0.8) }).collect())
        }
    }

    #[test]
    fn nli_takes_names_and_the_best_of_each_direction() {
        let preds: HashMap<String, Vec<String>> = [("a".to_string(), vec!["_ lifting _".to_string(), "_ hugging _".to_string()])].into_iter().collect();
        let gold = [Gold { id: "a".into(), label: "_ hugging _".into(), source: "news".into() }];
        let premises: HashMap<String, Premise> =
            [("a".to_string(), Premise { caption: "Maya hugging Tom at the gala".into(), names: vec!["Maya".into(), "Tom".into()] })].into_iter().collect();
        let models = Models { nli: Some((&WordsInPremise, "test")), premises: Some(&premises), ..Default::default() };
        let r = similarity_scores(&preds, &gold, &models).unwrap();
        // k = 1: "Maya lifting Tom" is not in the premise; k = 5 adds "Maya hugging Tom", which is.
        assert_eq!(r["nli"]["p_entailment"]["k"]["1"]["overall"].as_f64().unwrap() as f32, 0.2);
        assert_eq!(r["nli"]["p_entailment"]["k"]["5"]["overall"].as_f64().unwrap() as f32, 0.9);
        assert_eq!(r["nli"]["p_contradiction"]["k"]["1"]["overall"].as_f64().unwrap() as f32, 0.8);
        assert_eq!(r["nli"]["p_contradiction"]["k"]["5"]["overall"].as_f64().unwrap() as f32, 0.1);
        assert_eq!(Premise::default().hypothesis("_ hugging _"), "person hugging person");
    }

    #[test]
    fn word_vectors_read_only_what_is_asked_and_name_bad_lines() {
        let dir = std::env::temp_dir().join(format!("hhi-wv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.txt");
        std::fs::write(&path, "hugging 1 0\nlifting 0 2\nbroken x y\n").unwrap();
        let want: HashSet<String> = ["hugging", "lifting"].iter().map(|s| s.to_string()).collect();
        let v = WordVectors::load(&path, &want).unwrap();
        assert_eq!((v.dim, v.vectors["lifting"].clone()), (2, vec![0.0, 1.0]));
        let bad: HashSet<String> = ["broken".to_string()].into_iter().collect();
        let err = WordVectors::load(&path, &bad).err().unwrap().to_string();
        assert!(err.contains("v.txt") && err.contains("line 3"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
