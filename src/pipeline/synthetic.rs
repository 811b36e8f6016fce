//! Stages 1 to 3 of the method: a causal language model (GPT-Neo 1.3B in
//! the paper) writes new interactions from few-shot prompts of seed
//! interactions, then synthetic captions for them from in-context
//! (interaction, caption) pairs; the text rules turn each caption's
//! interaction into an HHI label (pipeline/rules.rs). Sampling settings are
//! the official code's (../shared/DESIGN.md).

use super::rules::{keep_interaction, to_label, without_trailing_pp, FIRST, SECOND};
use crate::backend::Backend;
use crate::generate::sampling::SamplingConfig;
use crate::generate::{generate, GenerateConfig};
use crate::io::tokenizer::Tokenizer;
use crate::models::gpt2::Gpt2;
use crate::rng::Rng;
use crate::{invalid, Result};
use std::collections::HashSet;

/// The name mask of Who's Waldo captions and of the world's seed lines.
pub const NAME_MASK: &str = "[NAME]";

/// First names the caption stage gives the participants.
pub const NAMES: &[&str] = &[
    "Aaron", "Abigail", "Adam", "Alice", "Amara", "Andre", "Anna", "Ben", "Carla", "Carlos", "Chen", "Chloe", "Daniel", "David", "Elena", "Emma", "Farid", "Grace", "Hannah",
    "Ivan", "James", "Jamal", "Julia", "Kai", "Laura", "Leo", "Lucas", "Maria", "Mateo", "Maya", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rosa", "Samuel", "Sara", "Tom",
    "Yuki", "Zoe",
];

/// The language model and the ids whose text holds a newline (lines end generations).
pub struct Writer<'a, B: Backend> {
    pub be: &'a B,
    pub model: &'a Gpt2<B>,
    pub tok: &'a Tokenizer,
    newline_ids: HashSet<u32>,
}

impl<'a, B: Backend> Writer<'a, B> {
    pub fn new(be: &'a B, model: &'a Gpt2<B>, tok: &'a Tokenizer) -> Result<Self> {
        let mut newline_ids = HashSet::new();
        for id in 0..model.cfg.vocab_size as u32 {
            if tok.decode(&[id]).is_ok_and(|t| t.contains('\n')) {
                newline_ids.insert(id);
            }
        }
        Ok(Writer { be, model, tok, newline_ids })
    }

    /// One sampled line per prompt: the continuation up to its first newline, trimmed.
    pub fn lines(&self, prompts: &[String], sampling: SamplingConfig, max_new_tokens: usize, seed: u64) -> Result<Vec<String>> {
        let ids = prompts.iter().map(|p| self.tok.encode(p)).collect::<Result<Vec<_>>>()?;
        let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
        let room = self.model.cfg.n_positions.saturating_sub(longest);
        if room == 0 {
            return invalid!("a prompt of {longest} tokens leaves no room in the model's n_positions ({}): use fewer shots", self.model.cfg.n_positions);
        }
        let cfg = GenerateConfig { max_new_tokens: max_new_tokens.min(room), sampling, eos_token_id: self.model.cfg.eos_token_id, seed };
        let stop = |_row: usize, new: &[u32]| new.last().is_some_and(|t| self.newline_ids.contains(t));
        generate(self.be, self.model, &ids, &cfg, &stop)?
            .into_iter()
            .map(|(tokens, _)| Ok(self.tok.decode(&tokens)?.split('\n').next().unwrap_or_default().trim().to_string()))
            .collect()
    }
}

/// Stage 1's sampling: top-p 0.95, temperature 1.0, no-repeat-ngram 3.
pub fn interaction_sampling() -> SamplingConfig {
    SamplingConfig { do_sample: true, temperature: 1.0, top_k: 0, top_p: 0.95, repetition_penalty: 1.0, no_repeat_ngram_size: 3 }
}

/// Stage 2's sampling: top-p 0.95, temperature 0.7, no-repeat-ngram 3.
pub fn caption_sampling() -> SamplingConfig {
    SamplingConfig { temperature: 0.7, ..interaction_sampling() }
}

/// Stage 1's prompt: `shots` random seed interactions, one per line, then an
/// empty line for the model to fill.
pub fn interaction_prompt(seeds: &[String], shots: usize, rng: &mut Rng) -> String {
    let mut order: Vec<usize> = (0..seeds.len()).collect();
    rng.shuffle(&mut order);
    order.iter().take(shots).map(|&i| format!("{}\n", seeds[i])).collect()
}

/// Stage 1's filter plus de-duplication against what is already known.
pub fn new_interaction(line: &str, known: &HashSet<String>) -> bool {
    keep_interaction(line) && !known.contains(line.trim())
}

/// A seed line's `[NAME]` placeholders as stage 1 reads them: Alex, then Bailey.
pub fn placeholder_names(line: &str) -> String {
    line.replacen(NAME_MASK, FIRST, 1).replacen(NAME_MASK, SECOND, 1)
}

/// `interaction` with the placeholders Alex and Bailey replaced by two
/// distinct random first names; returns the text and the names.
pub fn with_names(interaction: &str, rng: &mut Rng) -> (String, [&'static str; 2]) {
    let a = NAMES[rng.below(NAMES.len())];
    let b = loop {
        let b = NAMES[rng.below(NAMES.len())];
        if b != a {
            break b;
        }
    };
    let named: Vec<String> = interaction
        .split_whitespace()
        .map(|w| {
            let core = w.trim_end_matches(|c: char| !c.is_alphanumeric());
            let tail = &w[core.len()..];
            match core {
                c if c == FIRST => format!("{a}{tail}"),
                c if c == SECOND => format!("{b}{tail}"),
                _ => w.to_string(),
            }
        })
        .collect();
    (named.join(" "), [a, b])
}

/// Stage 2's prompt: `shots` random (interaction, caption) pairs as
/// `Caption of image showing {interaction}:\n{caption}\n\n` (names made
/// random), then `Caption of image showing {target}:\n`.
pub fn caption_prompt(fewshot: &[(String, String)], shots: usize, target: &str, rng: &mut Rng) -> String {
    let mut order: Vec<usize> = (0..fewshot.len()).collect();
    rng.shuffle(&mut order);
    let mut prompt = String::new();
    for &i in order.iter().take(shots) {
        let (interaction, caption) = &fewshot[i];
        let (named, [a, b]) = with_names(interaction, rng);
        let caption = caption.replace(FIRST, a).replace(SECOND, b);
        prompt += &format!("Caption of image showing {named}:\n{caption}\n\n");
    }
    prompt + &format!("Caption of image showing {target}:\n")
}

/// A kept synthetic caption: stage 2's name-presence filter, then stage 3's
/// label rules; `None` when a rule rejects it.
pub fn caption_record(interaction: &str, named: &str, names: [&str; 2], caption: &str) -> Option<serde_json::Value> {
    if caption.is_empty() || !names.iter().all(|n| caption.contains(n)) {
        return None;
    }
    let label = to_label(named, &names)?;
    let no_pp = without_trailing_pp(&label);
    Some(serde_json::json!({"interaction": interaction, "names": names, "caption": caption, "label": label, "label_no_pp": no_pp}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_replace_the_placeholders_only() {
        let mut rng = Rng::new(3);
        let (named, [a, b]) = with_names("Alex handing a trophy to Bailey.", &mut rng);
        assert_ne!(a, b);
        assert_eq!(named, format!("{a} handing a trophy to {b}."));
    }

    #[test]
    fn captions_must_name_both_participants() {
        let names = ["Maria", "Tom"];
        let kept = caption_record("Alex hugging Bailey", "Maria hugging Tom", names, "Maria hugs Tom after the final.").unwrap();
        assert_eq!(kept["label"], "_ hugging _");
        assert!(caption_record("Alex hugging Bailey", "Maria hugging Tom", names, "Maria celebrates after the final.").is_none());
    }

    #[test]
    fn prompts_have_the_official_form() {
        let mut rng = Rng::new(1);
        let fewshot = vec![("Alex hugging Bailey".to_string(), "Alex hugs Bailey at the airport.".to_string())];
        let p = caption_prompt(&fewshot, 10, "Maria lifting Tom", &mut rng);
        assert!(p.starts_with("Caption of image showing ") && p.ends_with("\n\nCaption of image showing Maria lifting Tom:\n"), "{p}");
        assert!(!p.contains("Alex") && !p.contains("Bailey"), "{p}");
        let seeds: Vec<String> = (0..12).map(|i| format!("Alex hugging Bailey {i}")).collect();
        assert_eq!(interaction_prompt(&seeds, 10, &mut rng).lines().count(), 10);
    }
}
