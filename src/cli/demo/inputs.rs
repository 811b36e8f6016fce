//! The files the demo prepares between stage commands: the stand-in models'
//! configs and training text, the list of interactions to caption, and the
//! prediction manifest. Each is written atomically.

use super::Sizes;
use hhi::io::atomic::write_atomic;
use hhi::io::jsonl::{read_objects, string_field};
use hhi::pipeline::synthetic::{placeholder_names, with_names};
use hhi::rng::Rng;
use hhi::{Error, Result};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// The stand-ins' configs (examples/demo/), copied where the commands read them.
const CONFIGS: [(&str, &str); 4] = [
    ("init/gpt-neo.json", include_str!("../../../examples/demo/gpt-neo.json")),
    ("init/gpt2.json", include_str!("../../../examples/demo/gpt2.json")),
    ("init/clip.json", include_str!("../../../examples/demo/clip.json")),
    ("init/t5/config.json", include_str!("../../../examples/demo/t5.json")),
];

fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> Result<()> {
    let text: String = lines.into_iter().map(|l| l + "\n").collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_atomic(path, text.as_bytes())
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// The configs, and the GPT-Neo stand-in's text (JSONL documents): the
/// world's news corpus, lists of seed interactions (stage 1's prompt form)
/// and, most of it, runs of caption pairs in stage 2's prompt form with
/// random names (copying the prompt's names into the caption is the skill
/// stage 2's filter asks for; a tiny model learns it only from many examples).
pub fn configs_and_lm_text(out: &Path, s: &Sizes, seed: u64) -> Result<()> {
    for (name, text) in CONFIGS {
        write_lines(&out.join(name), [text.trim_end().to_string()])?;
    }
    let world = out.join("world");
    let corpus = read_lines(&world.join("corpus.txt"))?;
    let seeds: Vec<String> = read_lines(&world.join("seeds.txt"))?.iter().map(|l| placeholder_names(l)).collect();
    let fewshot_path = world.join("fewshot.jsonl");
    let mut pairs = Vec::new();
    for (line, r) in read_objects(&fewshot_path)? {
        pairs.push((string_field(&fewshot_path, line, &r, "interaction")?, string_field(&fewshot_path, line, &r, "caption")?));
    }
    let mut rng = Rng::new(seed ^ 0x1e4);
    let mut docs: Vec<String> = corpus;
    for i in 0..s.lm_documents {
        if i % 4 == 0 {
            docs.push((0..10).map(|_| seeds[rng.below(seeds.len())].clone()).collect::<Vec<_>>().join("\n"));
        }
        let shots: Vec<String> = (0..4)
            .map(|_| {
                let (interaction, caption) = &pairs[rng.below(pairs.len())];
                let (named, [a, b]) = with_names(interaction, &mut rng);
                format!("Caption of image showing {named}:\n{}", caption.replace("Alex", a).replace("Bailey", b))
            })
            .collect();
        docs.push(shots.join("\n\n"));
    }
    rng.shuffle(&mut docs);
    write_lines(&out.join("lm_text.jsonl"), docs.into_iter().map(|d| json!({ "text": d }).to_string()))
}

/// Stage 2's input: the seed interactions and stage 1's new ones, each once.
pub fn all_interactions(out: &Path, _: &Sizes, _: u64) -> Result<()> {
    let mut all: BTreeSet<String> = read_lines(&out.join("world/seeds.txt"))?.iter().map(|l| placeholder_names(l)).collect();
    all.extend(read_lines(&out.join("interactions.txt"))?);
    write_lines(&out.join("all_interactions.txt"), all)
}

/// The GPT-2 stand-in's text: the synthetic labels (the language the
/// captioner writes) and the interactions they came from.
pub fn gpt2_text(out: &Path, _: &Sizes, _: u64) -> Result<()> {
    let path = out.join("captions.jsonl");
    let mut lines = Vec::new();
    for (line, r) in read_objects(&path)? {
        lines.push(string_field(&path, line, &r, "label")?);
        lines.push(string_field(&path, line, &r, "interaction")?);
    }
    if lines.is_empty() {
        return Err(Error::data(&path, "no synthetic captions survived the filters: nothing to train the GPT-2 stand-in on"));
    }
    write_lines(&out.join("gpt2_text.txt"), lines)
}

/// predict's manifest: every test and categorical image, with the id
/// evaluate looks it up by (the image path inside the world folder).
pub fn manifest(out: &Path, _: &Sizes, _: u64) -> Result<()> {
    let mut lines = Vec::new();
    for split in ["test.jsonl", "categorical.jsonl"] {
        let path = out.join("world").join(split);
        for (line, r) in read_objects(&path)? {
            let image = string_field(&path, line, &r, "image")?;
            lines.push(json!({"id": image, "image": format!("world/{image}")}).to_string());
        }
    }
    write_lines(&out.join("manifest.jsonl"), lines)
}
