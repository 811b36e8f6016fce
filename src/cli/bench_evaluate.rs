//! `hhi bench evaluate`: the time `hhi evaluate` takes with a sentence
//! encoder on `--items` gold labels × `--beams` predictions, at its worst:
//! every prediction a different text (real beams repeat, and each distinct
//! text is embedded once).

use hhi::backend::Backend;
use hhi::eval::similarity::{similarity_scores, Embedder, Models};
use hhi::eval::{as_text, evaluate, Gold};
use hhi::models::bert::sentence::{OnBackend, SentenceEncoder};
use hhi::rng::Rng;
use hhi::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

const VERBS: [&str; 8] = ["hugging", "handing a trophy to", "shaking hands with", "lifting", "dancing with", "throwing a ball to", "waving at", "interviewing"];
const TAILS: [&str; 6] = ["", "at the net", "on stage", "in the rain", "after the final match", "during a press conference in Geneva"];

/// Gold labels and predictions shaped like the captioner's, all distinct.
fn synthetic(items: usize, beams: usize) -> (HashMap<String, Vec<String>>, Vec<Gold>) {
    let mut rng = Rng::new(0);
    let mut label = |n: usize| format!("_ {} _ {} {n}", VERBS[rng.below(VERBS.len())], TAILS[rng.below(TAILS.len())]);
    let gold: Vec<Gold> = (0..items).map(|i| Gold { id: i.to_string(), label: label(i), source: ["news", "web", "descriptive"][i % 3].into() }).collect();
    let predictions = (0..items).map(|i| (i.to_string(), (0..beams).map(|b| label(items + i * beams + b)).collect())).collect();
    (predictions, gold)
}

/// The distinct texts the metrics embed (labels with `_` read as "person").
pub fn texts(items: usize, beams: usize) -> Vec<String> {
    let (predictions, gold) = synthetic(items, beams);
    let mut all: Vec<String> = gold.iter().flat_map(|g| predictions[&g.id].iter().chain([&g.label]).map(|t| as_text(t))).collect();
    all.sort();
    all.dedup();
    all
}

pub fn run<B: Backend>(be: &B, model: &Path, items: usize, beams: usize, batch: usize) -> Result<Value> {
    let (predictions, gold) = synthetic(items, beams);
    let t0 = Instant::now();
    let encoder = SentenceEncoder::load(be, model)?;
    let load = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let report = evaluate(&predictions, &gold);
    let lexical = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let on = OnBackend { be, encoder: &encoder, batch };
    let models = Models { sentence: Some((&on as &dyn Embedder, "bench")), ..Default::default() };
    let sim = similarity_scores(&predictions, &gold, &models)?;
    let similarity = t2.elapsed().as_secs_f64();
    let texts = sim["semantic_similarity"]["distinct_texts"].as_u64().unwrap_or(0);
    let total = t0.elapsed().as_secs_f64();
    Ok(json!({"items": report["n"], "beams": beams, "distinct_texts": texts, "seconds": total, "load_s": load, "lexical_s": lexical,
              "similarity_s": similarity, "texts_per_s": texts as f64 / similarity, "device": be.name(), "threads": rayon::current_num_threads()}))
}
