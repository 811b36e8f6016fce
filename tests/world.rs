//! The synthetic world: files and schemas, reproducibility, the inventory's
//! statistics, learnability (a nearest-neighbour classifier on raw pixels),
//! and clean errors for bad options.

mod common;
use common::tempdir;

use hhi::world::inventory::is_hhi_label;
use hhi::world::{generate, WorldConfig};
use std::collections::BTreeMap;
use std::path::Path;

fn config(seed: u64) -> WorldConfig {
    WorldConfig { seed, inventory_seed: seed, weak: 60, test: 30, categorical: 30, web: 20, image_size: 48, noise: 0.2, contact_sheet: true }
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).collect()
}

/// Every file below `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn image_exists(dir: &Path, rel: &serde_json::Value) {
    let p = dir.join(rel.as_str().expect("image path is a string"));
    let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!((img.width(), img.height()), (48, 48));
}

#[test]
fn files_follow_the_documented_schemas() {
    let root = tempdir("world-schema");
    let dir = root.join("w");
    let stats = generate(&config(1), &dir, &|_| ()).unwrap();

    let weak = jsonl(&dir.join("weak.jsonl"));
    assert_eq!(weak.len(), 60);
    for w in &weak {
        assert_eq!(w.as_object().unwrap().len(), 4, "{w}");
        assert!(w["caption"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(is_hhi_label(w["gold"].as_str().unwrap()), "{w}");
        assert!(w["caption_label"].is_null() || is_hhi_label(w["caption_label"].as_str().unwrap()), "{w}");
        image_exists(&dir, &w["image"]);
    }
    assert!(weak.iter().any(|w| w["caption"].as_str().unwrap().contains("[NAME]")), "news captions are name-masked");
    // Most captions state what the image shows; the noisy share does not.
    let agree = weak.iter().filter(|w| w["gold"] == w["caption_label"]).count();
    assert!(agree > weak.len() / 2 && agree < weak.len(), "{agree} of {} captions state the image's interaction", weak.len());

    let test = jsonl(&dir.join("test.jsonl"));
    assert_eq!(test.len(), 30);
    for t in &test {
        assert!(is_hhi_label(t["label"].as_str().unwrap()), "{t}");
        assert!(["news", "web", "descriptive"].contains(&t["source"].as_str().unwrap()));
        assert!(t["caption"].as_str().is_some_and(|c| !c.is_empty() && !c.contains("[NAME]")));
        image_exists(&dir, &t["image"]);
    }

    let web = jsonl(&dir.join("web.jsonl"));
    assert_eq!(web.len(), 20);
    for w in &web {
        assert_eq!(w.as_object().unwrap().len(), 2, "{w}");
        assert!(w["caption"].as_str().is_some_and(|c| !c.is_empty() && !c.contains("[NAME]")));
        image_exists(&dir, &w["image"]);
    }

    let verbs: Vec<String> = stats["categorical_verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for c in jsonl(&dir.join("categorical.jsonl")) {
        assert!(verbs.contains(&c["verb"].as_str().unwrap().to_string()));
        image_exists(&dir, &c["image"]);
    }

    let fewshot = jsonl(&dir.join("fewshot.jsonl"));
    assert!(fewshot.len() >= 24);
    for f in &fewshot {
        let (caption, interaction) = (f["caption"].as_str().unwrap(), f["interaction"].as_str().unwrap());
        assert!(is_hhi_label(f["label"].as_str().unwrap()));
        // The pair is in the caption stage's form: the participants are Alex and
        // Bailey in both the interaction and the caption, and the label is the
        // interaction with the names as `_`.
        assert!(interaction.starts_with("Alex ") && interaction.contains(" Bailey"), "{f}");
        assert!(caption.contains("Alex") && caption.contains("Bailey"), "{f}");
        assert_eq!(interaction.replace("Alex", "_").replace("Bailey", "_"), f["label"].as_str().unwrap(), "{f}");
    }

    let seeds = std::fs::read_to_string(dir.join("seeds.txt")).unwrap();
    assert!(seeds.lines().all(|l| l.starts_with("[NAME] ") && l.matches("[NAME]").count() == 2), "seed lines hold two [NAME]s");
    // With the placeholder names of stage 1, every seed passes stage 1's own filter.
    let named = |l: &str| l.replacen("[NAME]", "Alex", 1).replacen("[NAME]", "Bailey", 1);
    assert!(seeds.lines().all(|l| hhi::pipeline::rules::keep_interaction(&named(l))), "{seeds}");
    assert!(std::fs::read_to_string(dir.join("corpus.txt")).unwrap().lines().count() >= 1000);
    assert!(dir.join("contact_sheet.png").exists());

    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    assert_eq!(on_disk["interactions"].as_array().map(Vec::len), stats["interactions"].as_array().map(Vec::len));
    assert_eq!(on_disk["splits"], stats["splits"]);
    assert!(stats["num_interactions"].as_u64().unwrap() >= 40);
    assert!(stats["num_gerunds"].as_u64().unwrap() >= 20);
    let weights: Vec<f64> = stats["interactions"].as_array().unwrap().iter().map(|i| i["weight"].as_f64().unwrap()).collect();
    // Zipf-like: log-weight falls linearly with log-rank at the configured slope.
    let s = stats["zipf_exponent"].as_f64().unwrap();
    for (r, w) in weights.iter().enumerate() {
        assert!(((w / weights[0]).ln() + s * ((r + 1) as f64).ln()).abs() < 1e-9);
    }
    for i in stats["interactions"].as_array().unwrap() {
        assert!(is_hhi_label(i["label"].as_str().unwrap()));
    }
    assert_eq!(stats["noise"]["configured"], 0.2);
    let per_gerund = stats["gerunds"].as_object().unwrap();
    assert_eq!(per_gerund.len() as u64, stats["num_gerunds"].as_u64().unwrap());
    assert_eq!(per_gerund.values().map(|g| g["weak"].as_u64().unwrap()).sum::<u64>(), 60);
    assert!(stats["head_tail"]["test_tail_share"].as_f64().unwrap() > 0.0);
}

#[test]
fn same_seed_same_bytes_and_other_seeds_differ() {
    let root = tempdir("world-repro");
    generate(&config(7), &root.join("a"), &|_| ()).unwrap();
    generate(&config(7), &root.join("b"), &|_| ()).unwrap();
    generate(&config(8), &root.join("c"), &|_| ()).unwrap();
    let (a, b, c) = (snapshot(&root.join("a")), snapshot(&root.join("b")), snapshot(&root.join("c")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs between two runs with the same seed");
    }
    assert_ne!(a["weak.jsonl"], c["weak.jsonl"]);
    assert_ne!(a["images/weak/000000.png"], c["images/weak/000000.png"]);
}

#[test]
fn nearest_neighbour_on_pixels_beats_chance() {
    // Learnability is measured, not assumed: 1-NN on raw pixels of the
    // categorical split (verbs), trained on 600 images, tested on 200.
    let root = tempdir("world-nn");
    let dir = root.join("w");
    let cfg = WorldConfig { categorical: 800, weak: 1, test: 1, image_size: 32, contact_sheet: false, ..config(3) };
    let stats = generate(&cfg, &dir, &|_| ()).unwrap();
    let items = jsonl(&dir.join("categorical.jsonl"));
    let data: Vec<(Vec<f32>, String)> = items
        .iter()
        .map(|c| {
            let img = image::open(dir.join(c["image"].as_str().unwrap())).unwrap().to_rgb8();
            (img.into_raw().into_iter().map(|v| v as f32).collect(), c["verb"].as_str().unwrap().to_string())
        })
        .collect();
    let (train, test) = data.split_at(600);
    let correct = test
        .iter()
        .filter(|(x, verb)| {
            let nearest = train.iter().min_by(|a, b| dist(&a.0, x).total_cmp(&dist(&b.0, x))).unwrap();
            &nearest.1 == verb
        })
        .count();
    let accuracy = correct as f64 / test.len() as f64;
    let chance = 1.0 / stats["num_gerunds"].as_f64().unwrap();
    println!("1-NN verb accuracy {accuracy:.3} (chance {chance:.3})");
    assert!(accuracy > 3.0 * chance, "1-NN accuracy {accuracy:.3} is not well above chance {chance:.3}");
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[test]
fn bad_options_fail_cleanly() {
    let root = tempdir("world-bad");
    for (cfg, msg) in [
        (WorldConfig { weak: 0, ..config(1) }, "must be positive"),
        (WorldConfig { image_size: 16, ..config(1) }, "outside"),
        (WorldConfig { image_size: 300, ..config(1) }, "outside"),
        (WorldConfig { noise: 1.5, ..config(1) }, "outside"),
    ] {
        let e = generate(&cfg, &root.join("x"), &|_| ()).unwrap_err().to_string();
        assert!(e.contains(msg), "{e}");
        assert!(!root.join("x").exists());
    }
    std::fs::create_dir_all(root.join("exists")).unwrap();
    assert!(generate(&config(1), &root.join("exists"), &|_| ()).unwrap_err().to_string().contains("already exists"));
    let e = generate(&config(1), Path::new("/proc/hhi-world"), &|_| ()).unwrap_err().to_string();
    assert!(e.contains("/proc"), "{e}");
    // Nothing half-written is left behind.
    assert!(std::fs::read_dir(&root).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("partial")));
}
