//! Sentence embeddings of the real pretrained all-MiniLM-L6-v2 (BERT graph,
//! WordPiece tokenizer, truncation, mean pooling, normalisation) against
//! sentence-transformers' own output for 298 texts
//! (tests/fixtures/minilm/, made by make_minilm.py). The model is fetched by
//! scripts/fetch-minilm (CI runs it); without it the test says so and passes.

mod common;
use common::repo;

use hhi::backend::cpu::Cpu;
use hhi::io::cache::minilm_dir;
use hhi::models::bert::sentence::{cosine, SentenceEncoder};

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let dir = minilm_dir();
    if !dir.join("model.safetensors").exists() {
        common::say_skipped(&format!("minilm_embeddings_match_sentence_transformers: skipped: all-MiniLM-L6-v2 is not in {} (run scripts/fetch-minilm)", dir.display()));
        return;
    }
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(repo("tests/fixtures/minilm/sentences.json")).unwrap()).unwrap();
    let want = hhi::io::safetensors::load(&repo("tests/fixtures/minilm/embeddings.safetensors")).unwrap()["embeddings"].to_f32();
    let be = Cpu;
    let encoder = SentenceEncoder::load(&be, &dir).expect("loads the fetched model");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = encoder.embed(&be, &refs, 32).expect("embeds");
    let d = encoder.dim();
    assert_eq!((got.len(), want.len()), (texts.len(), texts.len() * d));
    let (mut worst, mut at) = (1.0f32, 0);
    for (i, g) in got.iter().enumerate() {
        let w = &want[i * d..(i + 1) * d];
        let norm = cosine(w, w).sqrt();
        let c = cosine(g, w) / norm;
        if c < worst {
            (worst, at) = (c, i);
        }
    }
    println!("{} texts: lowest cosine {worst:.7} (text {at}: {:?})", texts.len(), texts[at].chars().take(40).collect::<String>());
    assert!(worst >= 0.9999, "text {at} {:?}: cosine {worst}", texts[at]);
}
