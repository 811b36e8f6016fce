//! Caption text: names, places, events, and captions in three styles (news
//! like Who's Waldo, web alt-text like Conceptual Captions, plain descriptive
//! like COCO), with paraphrases, tense variation, distractors, two-event
//! captions, and a controlled share of captions whose interaction is absent
//! or wrong.

use super::inventory::Interaction;
use crate::rng::Rng;

const FIRST: &[&str] = &[
    "Alex", "Bailey", "Charlie", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Keiko", "Liam", "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Marco", "Priya", "Tomas", "Aisha",
];
const LAST: &[&str] = &[
    "Garcia",
    "Okafor",
    "Novak",
    "Tanaka",
    "Schmidt",
    "Haddad",
    "Kowalski",
    "Silva",
    "Nguyen",
    "Johansson",
    "Moreau",
    "Patel",
    "Rossi",
    "Kim",
    "Adeyemi",
    "Ivanova",
    "Lopez",
    "Fischer",
    "Cohen",
    "Murphy",
    "Yilmaz",
    "Santos",
    "Dubois",
    "Larsen",
    "Mendes",
];
const PLACES: &[&str] = &["Geneva", "Lagos", "Lisbon", "Osaka", "Denver", "Nairobi", "Oslo", "Lima", "Seoul", "Madrid", "Toronto", "Cairo", "Perth", "Prague", "Austin"];
const EVENTS: &[&str] = &[
    "the annual awards ceremony",
    "the final match",
    "a charity gala",
    "a press conference",
    "the opening night",
    "a community festival",
    "the championship",
    "a campaign rally",
    "the summit",
    "a fundraiser",
];
const MONTHS: &[&str] = &["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."];
const CREDITS: &[&str] = &["Photo: AP", "(Reuters)", "Photo: staff", "(Getty Images)", "Photo by Lee Park/AFP", ""];
const NOUNS: &[&str] = &["a man", "a woman", "a player", "an athlete", "a businessman", "a young woman", "an old man", "a girl", "a boy", "a coach", "a performer"];

/// Where a caption comes from (the three sources of Waldo and Wenda).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    News,
    Web,
    Descriptive,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::News, Source::Web, Source::Descriptive];
    pub fn name(self) -> &'static str {
        match self {
            Source::News => "news",
            Source::Web => "web",
            Source::Descriptive => "descriptive",
        }
    }
}

fn pick<'a>(xs: &[&'a str], rng: &mut Rng) -> &'a str {
    xs[rng.below(xs.len())]
}

/// A real-looking full name.
pub fn full_name(rng: &mut Rng) -> String {
    format!("{} {}", pick(FIRST, rng), pick(LAST, rng))
}

pub fn first_name(rng: &mut Rng) -> &'static str {
    pick(FIRST, rng)
}

/// "{A} {verb} {B}{tail}" with the given verb phrase.
fn clause(a: &str, verb: &str, b: &str, it: &Interaction) -> String {
    if it.tail.is_empty() {
        format!("{a} {verb} {b}")
    } else {
        format!("{a} {verb} {b} {}", it.tail)
    }
}

/// The interaction in words with names: "Alex hands a trophy to Bailey".
pub fn sentence(it: &Interaction, a: &str, b: &str) -> String {
    clause(a, &it.present, b, it)
}

/// The label with names instead of `_`: "Alex handing a trophy to Bailey".
pub fn named_label(it: &Interaction, a: &str, b: &str) -> String {
    let mut parts = it.label.splitn(3, '_');
    let (_, mid, end) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    format!("{a}{mid}{b}{end}")
}

fn date(rng: &mut Rng) -> String {
    format!("{} {}, {}", pick(MONTHS, rng), 1 + rng.below(28), 2009 + rng.below(14))
}

/// A caption, the names of its two participants (news captions only), and
/// the label of the interaction it states (none when it states none; a
/// noisy caption may state another interaction than the image shows).
pub struct Caption {
    pub text: String,
    pub names: Option<(String, String)>,
    pub stated: Option<String>,
}

/// How a news caption words its interaction: one of the present-tense
/// paraphrases, the past tense, or the passive voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phrasing {
    Present(usize),
    Past,
    Passive,
}

/// Every phrasing `it` has (the passive only where it reads naturally).
pub fn phrasings(it: &Interaction) -> Vec<Phrasing> {
    let mut all: Vec<Phrasing> = (0..it.paraphrases.len()).map(Phrasing::Present).collect();
    all.push(Phrasing::Past);
    if it.passive.is_some() {
        all.push(Phrasing::Passive);
    }
    all
}

/// A quarter passive where there is one; otherwise a quarter past tense.
fn random_phrasing(it: &Interaction, rng: &mut Rng) -> Phrasing {
    if it.passive.is_some() && rng.uniform() < 0.25 {
        Phrasing::Passive
    } else if rng.below(4) == 1 {
        Phrasing::Past
    } else {
        Phrasing::Present(rng.below(it.paraphrases.len()))
    }
}

/// A caption of `it` (or, when `noisy`, one whose interaction is absent or
/// another one, `decoy`), in the style of `source`. `masked` replaces names by
/// `[NAME]`.
pub fn caption(it: &Interaction, decoy: &Interaction, source: Source, noisy: bool, masked: bool, rng: &mut Rng) -> Caption {
    captioned(it, decoy, source, noisy, masked, None, rng)
}

/// A news caption of `it` worded with `phrasing` (the few-shot pairs cover
/// every phrasing of every interaction).
pub fn news_caption_with(it: &Interaction, decoy: &Interaction, phrasing: Phrasing, rng: &mut Rng) -> Caption {
    captioned(it, decoy, Source::News, false, false, Some(phrasing), rng)
}

fn captioned(it: &Interaction, decoy: &Interaction, source: Source, noisy: bool, masked: bool, phrasing: Option<Phrasing>, rng: &mut Rng) -> Caption {
    let name = |rng: &mut Rng| if masked { "[NAME]".to_string() } else { full_name(rng) };
    let a = name(rng);
    // Two different people (a few-shot pair that named both alike would lose Bailey).
    let mut b = name(rng);
    while !masked && b == a {
        b = name(rng);
    }
    let (text, stated) = caption_text(it, decoy, source, noisy, &a, &b, masked, phrasing, rng);
    Caption { text, names: (source == Source::News).then_some((a, b)), stated: stated.map(|s| s.label.clone()) }
}

#[allow(clippy::too_many_arguments)]
fn caption_text<'a>(
    it: &'a Interaction,
    decoy: &'a Interaction,
    source: Source,
    noisy: bool,
    a: &str,
    b: &str,
    masked: bool,
    phrasing: Option<Phrasing>,
    rng: &mut Rng,
) -> (String, Option<&'a Interaction>) {
    let name = |rng: &mut Rng| if masked { "[NAME]".to_string() } else { full_name(rng) };
    let shown = if noisy && rng.uniform() < 0.5 {
        Some(decoy)
    } else if noisy {
        None
    } else {
        Some(it)
    };
    let text = match source {
        Source::News => {
            let (event, place) = (pick(EVENTS, rng), pick(PLACES, rng));
            let body = match shown {
                None => match rng.below(3) {
                    0 => format!("{a} speaks at {event} in {place}"),
                    1 => format!("{a} and {b} attend {event} in {place}"),
                    _ => format!("{a}, left, and {b} pose for photographers at {event}"),
                },
                Some(s) => match phrasing.filter(|_| std::ptr::eq(s, it)).unwrap_or_else(|| random_phrasing(s, rng)) {
                    Phrasing::Passive => format!("{b} {} {a} at {event} in {place}", s.passive.as_deref().unwrap_or(&s.present)),
                    Phrasing::Past => format!("{} at {event} on {}", clause(a, &s.past, b, s), date(rng)),
                    Phrasing::Present(k) => {
                        let verb = &s.paraphrases[k.min(s.paraphrases.len() - 1)];
                        match rng.below(3) {
                            0 => format!("{} during {event} in {place}", clause(a, verb, b, s)),
                            1 => format!("At {event} in {place}, {}", clause(a, verb, b, s)),
                            _ => format!("{} in {place} on {}", clause(a, verb, b, s), date(rng)),
                        }
                    }
                },
            };
            let second = match rng.below(10) {
                0 => format!(", while {} looks on", name(rng)),
                // A second event in the same caption (the image shows the first).
                1 => format!("; earlier, {}", clause(&name(rng), &decoy.past, &name(rng), decoy)),
                _ => String::new(),
            };
            let credit = pick(CREDITS, rng);
            format!("{body}{second}. {credit}").trim_end().to_string()
        }
        Source::Web => {
            let prefix = ["", "stock photo: ", "image may contain: ", "photo of "][rng.below(4)];
            match shown {
                None => format!("{prefix}two people at an event"),
                Some(s) => {
                    let (n1, n2) = (pick(NOUNS, rng), pick(NOUNS, rng));
                    format!("{prefix}{}", named_label(s, n1, n2).trim_start_matches("a ").trim_start_matches("an "))
                }
            }
        }
        Source::Descriptive => match shown {
            None => "Two people standing near each other.".to_string(),
            Some(s) => {
                let (n1, n2) = (pick(NOUNS, rng), pick(NOUNS, rng));
                format!("{}.", capitalize(&clause(n1, &s.present, n2, s)))
            }
        },
    };
    (text, shown)
}

/// A line of news-like running text for the language-model corpus.
pub fn corpus_line(inv: &[Interaction], rng: &mut Rng) -> String {
    let it = &inv[super::inventory::sample(inv, rng)];
    let (a, b) = (full_name(rng), full_name(rng));
    let (event, place) = (pick(EVENTS, rng), pick(PLACES, rng));
    match rng.below(4) {
        0 => format!("{} at {event} in {place} on {}.", clause(&a, &it.past, &b, it), date(rng)),
        1 => format!("{a} said the meeting with {b} in {place} went well."),
        2 => capitalize(&format!("{event} in {place} drew large crowds on {}, organisers said.", date(rng))),
        _ => format!("{}, witnesses said.", clause(&a, &it.paraphrases[rng.below(it.paraphrases.len())], &b, it)),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
