//! The synthetic HHI world: a seeded, procedural stand-in for Who's Waldo
//! (weak captions), CC-News (interaction seeds), Waldo and Wenda (test) and
//! imSitu-HHI (categorical), so that every pipeline stage runs offline and its
//! quality can be measured against known ground truth.
//!
//! `generate` writes a world folder (schemas in the README):
//! `weak.jsonl`, `seeds.txt`, `fewshot.jsonl`, `test.jsonl`,
//! `categorical.jsonl`, `corpus.txt`, `stats.json`, `images/…` and optionally
//! `contact_sheet.png`. Output is byte-identical for the same options.

pub mod canvas;
mod font;
pub mod inventory;
pub mod pose;
pub mod render;
mod sheet;
pub mod text;

use crate::pipeline::rules::{FIRST, SECOND};
use crate::rng::Rng;
use crate::{Error, Result};
use inventory::{inventory, pick_scene, sample, Interaction};
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use text::Source;

#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    /// Seed of the frequency ranking (defaults to `seed`).
    pub inventory_seed: u64,
    pub weak: usize,
    pub test: usize,
    pub categorical: usize,
    /// Web alt-text pairs for pre-training a CLIP stand-in (0: none).
    pub web: usize,
    pub image_size: u32,
    /// Share of captions whose interaction is absent or wrong.
    pub noise: f64,
    pub contact_sheet: bool,
}

impl WorldConfig {
    pub fn validate(&self) -> Result<()> {
        if self.weak == 0 || self.test == 0 || self.categorical == 0 {
            return Err(Error::Invalid("--weak, --test and --categorical must be positive".into()));
        }
        if !(32..=224).contains(&self.image_size) {
            return Err(Error::Invalid(format!("--image-size {} is outside 32..=224", self.image_size)));
        }
        if !(0.0..=0.9).contains(&self.noise) {
            return Err(Error::Invalid(format!("--noise {} is outside 0..=0.9", self.noise)));
        }
        Ok(())
    }
}

/// Share of test items drawn uniformly over the inventory rather than by
/// frequency: the test split over-represents the tail.
const TEST_UNIFORM_SHARE: f64 = 0.5;
/// Share of the frequency mass that counts as the head.
const HEAD_MASS: f64 = 0.5;
/// In-context caption pairs: forty per interaction, cycling through its
/// phrasings (paraphrases, past, passive), so that a small language
/// model trained on them (the demo's stand-in) sees varied phrasing and
/// settings and does not tie an interaction to one sentence.
const FEWSHOT: usize = 1600;
/// Per-channel pixel noise of the dataset images.
const IMAGE_NOISE: i32 = 4;
const SEED_LINES: usize = 1000;
const CORPUS_LINES: usize = 3000;

/// A generator for item `index` of a split, independent of every other item.
fn item_rng(seed: u64, split: u64, index: usize) -> Rng {
    Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (split << 56) ^ index as u64)
}

fn png_bytes(img: &image::RgbImage, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).map_err(|e| Error::data(path, format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// One rendered item: which interaction, its scene, and the image file.
struct Item {
    interaction: usize,
    scene: pose::Scene,
    image: String,
    rng: Rng,
}

/// Renders `n` images of a split in parallel; `choose` picks each item's interaction.
fn render_split(dir: &Path, name: &str, split: u64, n: usize, cfg: &WorldConfig, inv: &[Interaction], choose: &(dyn Fn(&mut Rng) -> usize + Sync)) -> Result<Vec<Item>> {
    let folder = dir.join("images").join(name);
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = item_rng(cfg.seed, split, i);
            let k = choose(&mut rng);
            let scene = pick_scene(&inv[k], &mut rng);
            let img = render::render(&inv[k].signature, scene, cfg.image_size, IMAGE_NOISE, &mut rng);
            let image = format!("images/{name}/{i:06}.png");
            let path = dir.join(&image);
            let bytes = png_bytes(&img, &path)?;
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
            Ok(Item { interaction: k, scene, image, rng })
        })
        .collect()
}

fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Generates the world into `out` (through a temporary sibling folder that is
/// renamed into place at the end, so a half-written world never looks done).
pub fn generate(cfg: &WorldConfig, out: &Path, progress: &dyn Fn(&str)) -> Result<serde_json::Value> {
    cfg.validate()?;
    if out.exists() {
        return Err(Error::io(out, std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists; choose a new folder or remove it")));
    }
    let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::Invalid(format!("{}: not a folder name", out.display())))?;
    let tmp: PathBuf = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::data(out, format!("cannot create the output folder: {e}")))?;
    let result = write_world(cfg, &tmp, progress);
    match result {
        Ok(stats) => {
            std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn write_world(cfg: &WorldConfig, dir: &Path, progress: &dyn Fn(&str)) -> Result<serde_json::Value> {
    let inv = inventory(cfg.inventory_seed);
    let n = inv.len();
    let by_weight = |rng: &mut Rng| sample(&inv, rng);
    let decoy = |k: usize, rng: &mut Rng| (k + 1 + rng.below(n - 1)) % n;

    progress(&format!("weak split: {} images", cfg.weak));
    let weak = render_split(dir, "weak", 1, cfg.weak, cfg, &inv, &by_weight)?;
    let (mut weak_noisy, mut weak_counts) = (0, vec![0usize; n]);
    let weak_lines: Vec<String> = weak
        .into_iter()
        .map(|mut it| {
            let noisy = it.rng.uniform() < cfg.noise;
            weak_noisy += noisy as usize;
            // Who's Waldo, the weak set's original, is news captions only (the
            // test set mixes three sources, as Waldo and Wenda does).
            let source = Source::News;
            let d = decoy(it.interaction, &mut it.rng);
            weak_counts[it.interaction] += 1;
            let caption = text::caption(&inv[it.interaction], &inv[d], source, noisy, true, &mut it.rng);
            // `gold` (what the image shows) and `caption_label` (what the caption
            // states) are for analysis only; no stage reads them.
            json!({"image": it.image, "caption": caption.text, "gold": inv[it.interaction].label, "caption_label": caption.stated}).to_string()
        })
        .collect();
    write_lines(&dir.join("weak.jsonl"), weak_lines)?;

    progress(&format!("test split: {} images", cfg.test));
    let test_choose = |rng: &mut Rng| if rng.uniform() < TEST_UNIFORM_SHARE { rng.below(n) } else { sample(&inv, rng) };
    let test = render_split(dir, "test", 2, cfg.test, cfg, &inv, &test_choose)?;
    let mut test_counts = vec![0usize; n];
    let mut source_counts = [0usize; 3];
    let test_lines: Vec<String> = test
        .into_iter()
        .map(|mut it| {
            test_counts[it.interaction] += 1;
            let s = it.rng.below(3);
            source_counts[s] += 1;
            let d = decoy(it.interaction, &mut it.rng);
            let caption = text::caption(&inv[it.interaction], &inv[d], Source::ALL[s], false, false, &mut it.rng).text;
            json!({"image": it.image, "caption": caption, "label": inv[it.interaction].label, "source": Source::ALL[s].name(), "scene": it.scene.name()}).to_string()
        })
        .collect();
    write_lines(&dir.join("test.jsonl"), test_lines)?;

    progress(&format!("categorical split: {} images", cfg.categorical));
    let verbs = gerunds(&inv);
    let cat_choose = |rng: &mut Rng| {
        // A verb uniformly, then one of its interactions uniformly.
        let v = &verbs[rng.below(verbs.len())];
        let ks: Vec<usize> = (0..n).filter(|&k| &inv[k].gerund == v).collect();
        ks[rng.below(ks.len())]
    };
    let cat = render_split(dir, "categorical", 3, cfg.categorical, cfg, &inv, &cat_choose)?;
    write_lines(&dir.join("categorical.jsonl"), cat.iter().map(|it| json!({"image": it.image, "verb": inv[it.interaction].gerund}).to_string()))?;

    if cfg.web > 0 {
        progress(&format!("web split: {} images", cfg.web));
        // The stand-in for CLIP's web-scale pre-training data: alt-texts
        // (as noisy as the weak captions) over every interaction equally, the
        // breadth a model pretrained on the web brings to the tail.
        let web = render_split(dir, "web", 5, cfg.web, cfg, &inv, &|rng: &mut Rng| rng.below(n))?;
        let web_lines = web.into_iter().map(|mut it| {
            let noisy = it.rng.uniform() < cfg.noise;
            let d = decoy(it.interaction, &mut it.rng);
            let caption = text::caption(&inv[it.interaction], &inv[d], Source::Web, noisy, false, &mut it.rng);
            json!({"image": it.image, "caption": caption.text}).to_string()
        });
        write_lines(&dir.join("web.jsonl"), web_lines)?;
    }

    progress("text: seeds, few-shot pairs, corpus");
    let mut rng = item_rng(cfg.seed, 4, 0);
    write_lines(
        &dir.join("seeds.txt"),
        // The interaction in stage 1's form (its label with the names back), frequency-weighted.
        (0..SEED_LINES).map(|_| inv[sample(&inv, &mut rng)].label.replacen('_', "[NAME]", 2)),
    )?;
    write_lines(
        &dir.join("fewshot.jsonl"),
        (0..FEWSHOT).map(|i| {
            let it = &inv[i % n];
            // Every interaction's pairs cycle through all its phrasings.
            let forms = text::phrasings(it);
            let c = text::news_caption_with(it, &inv[decoy(i % n, &mut rng)], forms[(i / n) % forms.len()], &mut rng);
            // The participants as Alex and Bailey, the form the caption stage's pairs take.
            let (a, b) = c.names.unwrap_or_default();
            let caption = c.text.replace(&a, FIRST).replace(&b, SECOND);
            json!({"caption": caption, "interaction": text::named_label(it, FIRST, SECOND), "label": it.label}).to_string()
        }),
    )?;
    write_lines(&dir.join("corpus.txt"), (0..CORPUS_LINES).map(|_| text::corpus_line(&inv, &mut rng)))?;

    if cfg.contact_sheet {
        progress("contact sheet");
        let path = dir.join("contact_sheet.png");
        let img = sheet::contact_sheet(&inv, cfg.seed, cfg.image_size.min(96));
        std::fs::write(&path, png_bytes(&img, &path)?).map_err(|e| Error::io(&path, e))?;
    }

    let head = inventory::head_count(&inv, HEAD_MASS);
    let per_gerund: serde_json::Map<String, serde_json::Value> = verbs
        .iter()
        .map(|g| {
            let sum = |counts: &[usize]| (0..n).filter(|&k| &inv[k].gerund == g).map(|k| counts[k]).sum::<usize>();
            (g.clone(), json!({"weak": sum(&weak_counts), "test": sum(&test_counts), "categorical": cat.iter().filter(|it| &inv[it.interaction].gerund == g).count()}))
        })
        .collect();
    let stats = json!({
        "seed": cfg.seed,
        "inventory_seed": cfg.inventory_seed,
        "image_size": cfg.image_size,
        "num_interactions": n,
        "num_gerunds": verbs.len(),
        "zipf_exponent": inventory::ZIPF_S,
        "splits": {"weak": cfg.weak, "test": cfg.test, "categorical": cfg.categorical, "web": cfg.web, "seeds": SEED_LINES, "fewshot": FEWSHOT, "corpus_lines": CORPUS_LINES},
        "noise": {"configured": cfg.noise, "weak_observed": weak_noisy as f64 / cfg.weak as f64},
        "head_tail": {"head_mass": HEAD_MASS, "head_interactions": head, "tail_interactions": n - head,
                      "test_tail_share": test_counts[head..].iter().sum::<usize>() as f64 / cfg.test as f64,
                      "weak_tail_share": weak_counts[head..].iter().sum::<usize>() as f64 / cfg.weak as f64},
        "test_sources": {"news": source_counts[0], "web": source_counts[1], "descriptive": source_counts[2]},
        "categorical_verbs": verbs,
        "gerunds": per_gerund,
        "interactions": inv.iter().enumerate().map(|(k, it)| json!({
            "label": it.label, "gerund": it.gerund, "rank": k + 1, "weight": it.weight,
            "weak": weak_counts[k], "test": test_counts[k], "head": k < head,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("stats.json");
    std::fs::write(&path, serde_json::to_string_pretty(&stats).expect("stats serialise")).map_err(|e| Error::io(&path, e))?;
    Ok(stats)
}

/// The distinct gerunds, in inventory order.
pub fn gerunds(inv: &[Interaction]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for it in inv {
        if !out.contains(&it.gerund) {
            out.push(it.gerund.clone());
        }
    }
    out
}
