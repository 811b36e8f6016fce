//! The text rules of the method (DESIGN.md's stage table, after the official
//! code): which generated interactions to keep (stage 1), how a named
//! interaction becomes an HHI label (stage 3), the label without trailing
//! participant-free prepositional phrases, the -ing filter on pseudo-labels
//! and their sample weights (stage 5).

use std::collections::HashMap;

/// The placeholder names of stage 1's prompts.
pub const FIRST: &str = "Alex";
pub const SECOND: &str = "Bailey";

/// Prepositions that open a phrase the no-PP label variant drops.
const PREPOSITIONS: &[&str] = &[
    "in", "on", "at", "near", "by", "under", "over", "inside", "outside", "during", "after", "before", "behind", "beside", "across", "through", "around", "along", "from", "into",
    "onto", "for", "while", "as", "above", "below", "between", "against", "among", "amid",
];

fn is_gerund(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    w.len() > 3 && w.ends_with("ing")
}

/// Stage 1's filter on a generated interaction: `^Alex .* Bailey` with one of
/// each name, an -ing word, no other capital letters, and not ending in
/// " the" or " a".
pub fn keep_interaction(line: &str) -> bool {
    let line = line.trim();
    let count = |name: &str| line.split(|c: char| !c.is_alphanumeric()).filter(|w| *w == name).count();
    let starts = line.strip_prefix(FIRST).is_some_and(|rest| rest.starts_with(' '));
    let capitals = line.chars().filter(|c| c.is_uppercase()).count();
    starts
        && line.contains(&format!(" {SECOND}"))
        && count(FIRST) == 1
        && count(SECOND) == 1
        && line.split_whitespace().any(|w| w != FIRST && w != SECOND && is_gerund(w))
        && capitals == 2
        && !line.ends_with(" the")
        && !line.ends_with(" a")
}

/// Whether a label has the paper's form `^_ [^ ]*ing [^_]*_[^_]*$`: a
/// placeholder, an -ing word, then exactly one more placeholder.
pub fn is_hhi_label(label: &str) -> bool {
    let Some(rest) = label.strip_prefix("_ ") else { return false };
    let Some((verb, rest)) = rest.split_once(' ') else { return false };
    verb.ends_with("ing") && rest.matches('_').count() == 1
}

/// Stage 3: the interaction with each of `names` replaced by `_` (whole
/// words), kept when it has at most two participants and the label form.
pub fn to_label(interaction: &str, names: &[&str]) -> Option<String> {
    let words: Vec<String> = interaction
        .split_whitespace()
        .map(|w| {
            let core = w.trim_end_matches(|c: char| !c.is_alphanumeric());
            match names.contains(&core) {
                true => format!("_{}", &w[core.len()..]),
                false => w.to_string(),
            }
        })
        .collect();
    let label = words.join(" ");
    let label = label.trim_end_matches(['.', '!', ',', ';']).to_string();
    (label.matches('_').count() <= 2 && is_hhi_label(&label)).then_some(label)
}

/// The label without a participant-free prepositional phrase after its last
/// placeholder ("_ handing a trophy to _ on stage" → "_ handing a trophy to _");
/// `None` when there is none to drop.
pub fn without_trailing_pp(label: &str) -> Option<String> {
    let last = label.rfind('_')?;
    let tail = label[last + 1..].trim();
    let first = tail.split_whitespace().next()?;
    PREPOSITIONS.contains(&first).then(|| label[..=last].to_string())
}

/// Stage 5's filter on a pseudo-label: its second word is an -ing word.
pub fn has_gerund(label: &str) -> bool {
    label.split_whitespace().nth(1).is_some_and(is_gerund)
}

/// Stage 5's sample weights: (1 / label frequency)^0.25, scaled to mean 1,
/// then divided by the number of items sharing the item's caption.
pub fn sample_weights(labels: &[String], captions: &[String]) -> Vec<f32> {
    assert_eq!(labels.len(), captions.len(), "one caption per label");
    let mut label_count: HashMap<&str, usize> = HashMap::new();
    let mut caption_count: HashMap<&str, usize> = HashMap::new();
    labels.iter().for_each(|l| *label_count.entry(l).or_default() += 1);
    captions.iter().for_each(|c| *caption_count.entry(c).or_default() += 1);
    let raw: Vec<f64> = labels.iter().map(|l| (1.0 / label_count[l.as_str()] as f64).powf(0.25)).collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    raw.iter().zip(captions).map(|(w, c)| (w / mean / caption_count[c.as_str()] as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_one_keeps_only_clean_interactions() {
        assert!(keep_interaction("Alex handing a trophy to Bailey"));
        assert!(keep_interaction("Alex hugging Bailey after the match"));
        for bad in [
            "Bailey handing a trophy to Alex",          // wrong order
            "Alex handing a trophy to Bailey and Alex", // a name twice
            "Alex hands a trophy to Bailey",            // no -ing word
            "Alex greeting Bailey in Paris",            // another capital
            "Alex handing Bailey the",                  // ends in " the"
            "Alex handing Bailey a",                    // ends in " a"
            "Alexandra hugging Bailey",                 // not the name
        ] {
            assert!(!keep_interaction(bad), "kept {bad:?}");
        }
    }

    #[test]
    fn labels_replace_names_and_keep_the_form() {
        assert_eq!(to_label("Alex handing a trophy to Bailey.", &["Alex", "Bailey"]).as_deref(), Some("_ handing a trophy to _"));
        assert_eq!(to_label("Maya hugging Liam's sister", &["Maya", "Liam"]).as_deref(), None, "a possessive is not a participant slot");
        assert_eq!(to_label("Maya carrying Liam", &["Maya", "Liam", "Rosa"]).as_deref(), Some("_ carrying _"));
        assert_eq!(to_label("Maya hugging Liam and Rosa", &["Maya", "Liam", "Rosa"]), None, "three participants");
        assert_eq!(to_label("Maya hugs Liam", &["Maya", "Liam"]), None, "no -ing word after the first placeholder");
    }

    #[test]
    fn trailing_prepositional_phrases_are_dropped() {
        assert_eq!(without_trailing_pp("_ handing a trophy to _ on stage").as_deref(), Some("_ handing a trophy to _"));
        assert_eq!(without_trailing_pp("_ hugging _"), None);
        assert_eq!(without_trailing_pp("_ hugging _ tightly"), None);
    }

    #[test]
    fn sample_weights_favour_rare_labels_and_split_shared_captions() {
        let labels: Vec<String> = ["_ hugging _", "_ hugging _", "_ hugging _", "_ hugging _", "_ feeding _"].map(String::from).to_vec();
        let captions: Vec<String> = ["a", "b", "c", "c", "d"].map(String::from).to_vec();
        let w = sample_weights(&labels, &captions);
        // raw: 4 × 0.25^0.25 and 1 × 1; mean-1 scaling, then ÷2 for caption "c".
        let raw = [0.25f64.powf(0.25); 4];
        let mean = (raw.iter().sum::<f64>() + 1.0) / 5.0;
        let want = [raw[0] / mean, raw[1] / mean, raw[2] / mean / 2.0, raw[3] / mean / 2.0, 1.0 / mean];
        for (g, e) in w.iter().zip(want) {
            assert!((*g as f64 - e).abs() < 1e-6, "{w:?} vs {want:?}");
        }
        assert!(has_gerund("_ feeding _") && !has_gerund("_ feeds _") && !has_gerund("_"));
    }
}
