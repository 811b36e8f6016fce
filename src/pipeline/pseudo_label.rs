//! Stage 5 of the method: the distilled T5 summarizer turns weak captions
//! into pseudo-labels. Each caption (with `summarize: ` before it) is
//! decoded with 4 beams, length penalty 2.0, no-repeat-ngram 3 and at most
//! 20 tokens; labels whose second word is not an -ing word are dropped, and
//! optionally the least confident share of the rest (the top beam's score);
//! the kept items get the method's sample weights (pipeline/rules.rs). Names
//! masked as `[NAME]` (Who's Waldo's mask) become distinct first names
//! before summarizing: the summarizer was distilled from captions with names,
//! and the mask's tokens are foreign to it.
//!
//! Weak-caption JSONL, one object per line: `{"image": PATH, "caption":
//! TEXT}` (other fields are carried through). Output JSONL: the same
//! objects plus `"label"`, `"score"` and `"weight"`, the input of train-captioner.

use super::rules::{has_gerund, sample_weights};
use crate::backend::Backend;
use crate::generate::beam::{BeamConfig, EarlyStopping};
use crate::generate::seq2seq::beam_search_t5;
use crate::io::jsonl::{read_objects, string_field, Object};
use crate::io::tokenizer::Tokenizer;
use crate::models::t5::T5;
use crate::pipeline::synthetic::{NAMES, NAME_MASK};
use crate::rng::Rng;
use crate::Result;
use std::path::Path;

pub type Record = Object;

/// The method's decoding settings for pseudo-labels.
pub fn label_search(eos: Option<u32>) -> BeamConfig {
    BeamConfig {
        num_beams: 4,
        max_new_tokens: 20,
        length_penalty: 2.0,
        early_stopping: EarlyStopping::True,
        no_repeat_ngram_size: 3,
        min_length: 0,
        min_new_tokens: 0,
        eos_token_id: eos,
        num_return: 1,
    }
}

/// Reads weak captions: every non-empty line a JSON object with a string `caption`.
pub fn read_weak(path: &Path) -> Result<Vec<Record>> {
    read_objects(path)?
        .into_iter()
        .map(|(line, record)| {
            string_field(path, line, &record, "caption")?;
            Ok(record)
        })
        .collect()
}

/// `caption` with each `[NAME]` replaced by a first name, distinct within
/// the caption and chosen from the caption's own text (so the same caption
/// always reads the same, whatever batch or run it is in).
pub fn fill_name_masks(caption: &str) -> String {
    if !caption.contains(NAME_MASK) {
        return caption.to_string();
    }
    let hash = caption.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let mut names: Vec<&str> = NAMES.to_vec();
    Rng::new(hash).shuffle(&mut names);
    let mut out = String::new();
    for (i, part) in caption.split(NAME_MASK).enumerate() {
        if i > 0 {
            out += names[(i - 1) % names.len()];
        }
        out += part;
    }
    out
}

/// One caption's summary: the top beam's text and its score (summed
/// log-probability over length^2.0, the beam search's own ranking).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub label: String,
    pub score: f32,
}

/// The summarizer's top beam for each caption (name masks filled).
pub fn summarize<B: Backend>(be: &B, t5: &T5<B>, tok: &Tokenizer, captions: &[&str], prefix: &str, search: &BeamConfig) -> Result<Vec<Summary>> {
    let ids = captions.iter().map(|c| tok.encode_with_eos(&format!("{prefix}{}", fill_name_masks(c)), t5.cfg.eos_token_id, 0)).collect::<Result<Vec<_>>>()?;
    beam_search_t5(be, t5, &ids, search)?.into_iter().map(|hyps| Ok(Summary { label: tok.decode(&hyps[0].tokens)?.trim().to_string(), score: hyps[0].score })).collect()
}

/// Drops labels without an -ing word, then the `drop_least_confident` share
/// of the rest with the lowest scores (0: none, the method's own setting;
/// ties keep the earlier caption), and weights what is left: (record,
/// summary) pairs in, records with `label`, `score` and `weight` out, in
/// input order. Most weak captions that state no interaction at all still
/// get an -ing label, but a less confident one.
pub fn finish(labelled: Vec<(Record, Summary)>, drop_least_confident: f64) -> Vec<Record> {
    let mut kept: Vec<(usize, Record, Summary)> = labelled.into_iter().enumerate().filter(|(_, (_, s))| has_gerund(&s.label)).map(|(i, (r, s))| (i, r, s)).collect();
    let drop = (drop_least_confident.clamp(0.0, 1.0) * kept.len() as f64).floor() as usize;
    kept.sort_by(|a, b| b.2.score.total_cmp(&a.2.score).then(a.0.cmp(&b.0)));
    kept.truncate(kept.len() - drop);
    kept.sort_by_key(|(i, _, _)| *i);
    let labels: Vec<String> = kept.iter().map(|(_, _, s)| s.label.clone()).collect();
    let captions: Vec<String> = kept.iter().map(|(_, r, _)| r["caption"].as_str().unwrap_or_default().to_string()).collect();
    let weights = sample_weights(&labels, &captions);
    kept.into_iter()
        .zip(weights)
        .map(|((_, mut r, s), w)| {
            r.insert("label".into(), s.label.into());
            r.insert("score".into(), serde_json::json!(s.score));
            r.insert("weight".into(), serde_json::json!(w));
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_masks_become_distinct_names_the_same_every_time() {
        let caption = "[NAME] hands flowers to [NAME] while [NAME] looks on.";
        let filled = fill_name_masks(caption);
        assert_eq!(filled, fill_name_masks(caption));
        assert!(!filled.contains("[NAME]"), "{filled}");
        let names: Vec<&str> = filled.split_whitespace().filter(|w| NAMES.contains(w)).collect();
        assert_eq!(names.len(), 3, "{filled}");
        assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2], "{filled}");
        assert_eq!(fill_name_masks("no mask here"), "no mask here");
    }

    fn record(caption: &str) -> Record {
        serde_json::json!({"image": "x.jpg", "caption": caption}).as_object().unwrap().clone()
    }

    fn summary(label: &str, score: f32) -> Summary {
        Summary { label: label.into(), score }
    }

    #[test]
    fn finish_drops_the_least_confident_share_and_keeps_input_order() {
        let scores = [-0.5, -0.1, -0.9, -0.2, -0.1, -0.3, -0.05, -0.4, -0.9, -0.15];
        let labelled: Vec<_> = scores.iter().enumerate().map(|(i, &s)| (record(&format!("c{i}")), summary("_ hugging _", s))).collect();
        // 25% of 10 is 2.5: the two lowest (-0.9 twice) go.
        let kept = finish(labelled.clone(), 0.25);
        let captions: Vec<&str> = kept.iter().map(|r| r["caption"].as_str().unwrap()).collect();
        assert_eq!(captions, ["c0", "c1", "c3", "c4", "c5", "c6", "c7", "c9"]);
        assert_eq!(kept[1]["score"].as_f64().unwrap() as f32, -0.1);
        // Only labels with an -ing word count toward the share; ties keep the earlier caption.
        let mut tied = labelled;
        tied[0].1 = summary("_ hugs _", -0.01);
        let kept = finish(tied, 0.5);
        let captions: Vec<&str> = kept.iter().map(|r| r["caption"].as_str().unwrap()).collect();
        assert_eq!(captions, ["c1", "c3", "c4", "c6", "c9"]);
    }

    #[test]
    fn finish_keeps_gerund_labels_and_weights_them() {
        let labelled = vec![
            (record("a"), summary("_ hugging _", -0.1)),
            (record("b"), summary("_ hugs _", -0.1)), // no -ing word: dropped
            (record("c"), summary("_ hugging _", -0.1)),
            (record("c"), summary("_ lifting _", -0.1)), // shares caption c
        ];
        let kept = finish(labelled, 0.0);
        let labels: Vec<&str> = kept.iter().map(|r| r["label"].as_str().unwrap()).collect();
        assert_eq!(labels, ["_ hugging _", "_ hugging _", "_ lifting _"]);
        let w: Vec<f64> = kept.iter().map(|r| r["weight"].as_f64().unwrap()).collect();
        // (1/2)^0.25, (1/2)^0.25, 1, scaled to mean 1, then ÷ 2 for the two items of caption c.
        let raw = [0.5f64.powf(0.25), 0.5f64.powf(0.25), 1.0];
        let mean = raw.iter().sum::<f64>() / 3.0;
        for (got, want) in w.iter().zip([raw[0] / mean, raw[1] / mean / 2.0, raw[2] / mean / 2.0]) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
        assert_eq!(kept[0]["image"], "x.jpg");
    }
}
