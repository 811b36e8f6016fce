//! The interaction inventory: labels in the paper's form (`_ handing a trophy
//! to _`), built compositionally from verb frames and objects, each with the
//! words captions need (present, past, passive) and a visual signature, and
//! Zipf-distributed frequencies so that tail interactions are rare.

use super::pose::{Prop, Scene, Signature};
use crate::rng::Rng;

/// One interaction the world can show and describe.
#[derive(Clone, Debug)]
pub struct Interaction {
    /// `_ handing a trophy to _`, matching `^_ [^ ]*ing [^_]*_[^_]*$`.
    pub label: String,
    pub gerund: String,
    /// "{A} hands a trophy to {B}": the text between the names, present tense.
    pub present: String,
    /// Past tense, same shape.
    pub past: String,
    /// Paraphrases of `present` used in captions (the first is `present`).
    pub paraphrases: Vec<String>,
    /// Text after the second name (`up` in `_ helping _ up`), often empty.
    pub tail: String,
    /// Passive voice, "{B} is handed a trophy by {A}", where it reads naturally.
    pub passive: Option<String>,
    pub signature: Signature,
    /// Relative frequency (sums to 1 over the inventory).
    pub weight: f64,
}

/// A person verb: (gerund, present, past, extra paraphrases, tail).
type Row = (&'static str, &'static str, &'static str, &'static [&'static str], &'static str);

/// A verb frame with objects: (gerund, present, past, paraphrase, preposition,
/// objects with their props). The paraphrase is the frame's own ("gives" is
/// handing, not showing or kicking), so that a caption's words decide its
/// interaction except in the captions the world makes noisy on purpose.
type ObjectFrame = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static [(&'static str, Prop)]);

/// Verbs taking an object (`{verb} {object} to`): frame × objects.
const OBJECT_FRAMES: &[ObjectFrame] = &[
    ("handing", "hands", "handed", "gives", "to", &[("a trophy", Prop::Trophy), ("flowers", Prop::Flowers), ("a microphone", Prop::Microphone), ("a document", Prop::Document)]),
    ("throwing", "throws", "threw", "tosses", "to", &[("a ball", Prop::Ball), ("flowers", Prop::Flowers)]),
    ("showing", "shows", "showed", "presents", "to", &[("a trophy", Prop::Trophy), ("a document", Prop::Document), ("a camera", Prop::Camera)]),
    ("passing", "passes", "passed", "relays", "to", &[("a ball", Prop::Ball), ("a baton", Prop::Baton)]),
    ("kicking", "kicks", "kicked", "boots", "to", &[("a ball", Prop::Ball)]),
];

/// Games: `_ playing {game} with _`.
const GAMES: &[(&str, Prop)] = &[("chess", Prop::Chessboard), ("tennis", Prop::Racket), ("basketball", Prop::Ball)];

/// Verbs whose object is the other person.
const PERSON_VERBS: &[Row] = &[
    ("shaking", "shakes hands with", "shook hands with", &["greets", "clasps hands with"], ""),
    ("hugging", "hugs", "hugged", &["embraces", "throws her arms around"], ""),
    ("carrying", "carries", "carried", &["lifts and carries"], ""),
    ("chasing", "chases", "chased", &["runs after"], ""),
    ("interviewing", "interviews", "interviewed", &["questions", "speaks with"], ""),
    ("helping", "helps", "helped", &["pulls"], "up"),
    ("photographing", "photographs", "photographed", &["takes a picture of"], ""),
    ("kissing", "kisses", "kissed", &["gives a kiss to"], ""),
    ("dancing", "dances with", "danced with", &["waltzes with"], ""),
    ("boxing", "boxes with", "boxed with", &["spars with"], ""),
    ("wrestling", "wrestles", "wrestled", &["grapples with"], ""),
    ("tackling", "tackles", "tackled", &["brings down"], ""),
    ("high-fiving", "high-fives", "high-fived", &["slaps hands with"], ""),
    ("pushing", "pushes", "pushed", &["shoves"], ""),
    ("pulling", "pulls", "pulled", &["drags"], ""),
    ("comforting", "comforts", "comforted", &["consoles"], ""),
    ("arguing", "argues with", "argued with", &["quarrels with"], ""),
    ("feeding", "feeds", "fed", &["gives food to"], ""),
    ("lifting", "lifts", "lifted", &["raises"], ""),
    ("teaching", "teaches", "taught", &["instructs"], ""),
    ("congratulating", "congratulates", "congratulated", &["applauds"], ""),
    ("pointing", "points at", "pointed at", &["gestures at"], ""),
    ("waving", "waves at", "waved at", &["waves to"], ""),
    ("crowning", "crowns", "crowned", &["places a crown on"], ""),
    ("holding", "holds hands with", "held hands with", &["walks hand in hand with"], ""),
];

/// Passives of object frames: "{B} is handed {object} by {A}".
const OBJECT_PASSIVES: &[(&str, &str)] = &[("handing", "is handed"), ("showing", "is shown"), ("passing", "is passed")];

/// Passives of person verbs: "{B} is hugged by {A}" (the tail goes inside).
const PERSON_PASSIVES: &[(&str, &str)] = &[
    ("hugging", "is hugged by"),
    ("carrying", "is carried by"),
    ("chasing", "is chased by"),
    ("interviewing", "is interviewed by"),
    ("helping", "is helped up by"),
    ("photographing", "is photographed by"),
    ("kissing", "is kissed by"),
    ("tackling", "is tackled by"),
    ("pushing", "is pushed by"),
    ("pulling", "is pulled by"),
    ("comforting", "is comforted by"),
    ("feeding", "is fed by"),
    ("lifting", "is lifted by"),
    ("teaching", "is taught by"),
    ("congratulating", "is congratulated by"),
    ("crowning", "is crowned by"),
];

/// Zipf exponent of the interaction frequencies.
pub const ZIPF_S: f64 = 1.1;

/// Builds the inventory; `seed` decides which interactions are frequent.
pub fn inventory(seed: u64) -> Vec<Interaction> {
    let mut items = Vec::new();
    for &(gerund, present, past, paraphrase, prep, objects) in OBJECT_FRAMES {
        for &(object, prop) in objects {
            items.push(Interaction {
                label: format!("_ {gerund} {object} {prep} _"),
                gerund: gerund.into(),
                present: format!("{present} {object} {prep}"),
                past: format!("{past} {object} {prep}"),
                paraphrases: vec![format!("{present} {object} {prep}"), format!("{paraphrase} {object} {prep}")],
                tail: String::new(),
                passive: OBJECT_PASSIVES.iter().find(|(g, _)| *g == gerund).map(|(_, p)| format!("{p} {object} by")),
                signature: Signature::for_object(gerund, prop),
                weight: 0.0,
            });
        }
    }
    for &(game, prop) in GAMES {
        items.push(Interaction {
            label: format!("_ playing {game} with _"),
            gerund: "playing".into(),
            present: format!("plays {game} with"),
            past: format!("played {game} with"),
            paraphrases: vec![format!("plays {game} with"), format!("plays a game of {game} against")],
            tail: String::new(),
            passive: None,
            signature: Signature::for_object("playing", prop),
            weight: 0.0,
        });
    }
    for &(gerund, present, past, extra, tail) in PERSON_VERBS {
        let label = if tail.is_empty() { format!("_ {gerund} {}_", object_words(present)) } else { format!("_ {gerund} _ {tail}") };
        let mut paraphrases = vec![present.to_string()];
        paraphrases.extend(extra.iter().map(|s| s.to_string()));
        let passive = PERSON_PASSIVES.iter().find(|(g, _)| *g == gerund).map(|(_, p)| p.to_string());
        items.push(Interaction {
            label,
            gerund: gerund.into(),
            present: present.into(),
            past: past.into(),
            paraphrases,
            tail: tail.into(),
            passive,
            signature: Signature::for_person(gerund),
            weight: 0.0,
        });
    }
    // Zipf weights over a seeded ranking.
    let mut rng = Rng::new(seed ^ 0x1_4E7E_4A77);
    let mut order: Vec<usize> = (0..items.len()).collect();
    rng.shuffle(&mut order);
    let z: f64 = (1..=items.len()).map(|r| (r as f64).powf(-ZIPF_S)).sum();
    for (rank, &i) in order.iter().enumerate() {
        items[i].weight = ((rank + 1) as f64).powf(-ZIPF_S) / z;
    }
    items.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    items
}

/// "shakes hands with" → "hands with " (the words after the verb), "hugs" → "".
fn object_words(present: &str) -> String {
    match present.split_once(' ') {
        Some((_, rest)) => format!("{rest} "),
        None => String::new(),
    }
}

/// The paper's label form (defined with the pipeline's other text rules).
pub use crate::pipeline::rules::is_hhi_label;

/// The interactions making up `head_mass` of the frequency mass (the head);
/// the rest is the tail.
pub fn head_count(items: &[Interaction], head_mass: f64) -> usize {
    let mut cum = 0.0;
    for (i, it) in items.iter().enumerate() {
        cum += it.weight;
        if cum >= head_mass {
            return i + 1;
        }
    }
    items.len()
}

/// A scene for an interaction: its preferred scenes most of the time.
pub fn pick_scene(it: &Interaction, rng: &mut Rng) -> Scene {
    let prefs = &it.signature.scenes;
    if !prefs.is_empty() && rng.uniform() < 0.7 {
        prefs[rng.below(prefs.len())]
    } else {
        Scene::ALL[rng.below(Scene::ALL.len())]
    }
}

/// Samples an interaction index by weight.
pub fn sample(items: &[Interaction], rng: &mut Rng) -> usize {
    let u = rng.uniform();
    let mut cum = 0.0;
    for (i, it) in items.iter().enumerate() {
        cum += it.weight;
        if u < cum {
            return i;
        }
    }
    items.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_the_paper_form() {
        let inv = inventory(0);
        assert!(inv.len() >= 40, "{} interactions", inv.len());
        let gerunds: std::collections::BTreeSet<_> = inv.iter().map(|i| i.gerund.clone()).collect();
        assert!(gerunds.len() >= 20, "{} gerunds", gerunds.len());
        for it in &inv {
            assert!(is_hhi_label(&it.label), "{}", it.label);
        }
        let labels: std::collections::BTreeSet<_> = inv.iter().map(|i| i.label.clone()).collect();
        assert_eq!(labels.len(), inv.len(), "labels must be unique");
        assert!(!is_hhi_label("_ hugs _") && !is_hhi_label("Alex hugging _") && !is_hhi_label("_ hugging _ and _"));
    }

    #[test]
    fn a_verb_phrase_names_one_interaction() {
        let mut seen = std::collections::HashMap::new();
        for it in inventory(0) {
            for phrase in it.paraphrases.iter().chain([&it.past]).chain(&it.passive) {
                let key = format!("{phrase} _ {}", it.tail);
                if let Some(other) = seen.insert(key.clone(), it.label.clone()) {
                    assert_eq!(other, it.label, "\"{key}\" describes two interactions");
                }
            }
        }
    }

    #[test]
    fn frequencies_are_zipf() {
        let inv = inventory(3);
        let total: f64 = inv.iter().map(|i| i.weight).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(inv.windows(2).all(|w| w[0].weight >= w[1].weight));
        assert!(inv[0].weight / inv[inv.len() - 1].weight > 40.0);
        assert_ne!(inventory(3)[0].label, inventory(4)[0].label, "the seed should change the ranking (for these seeds)");
    }
}
