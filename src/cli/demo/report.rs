//! The demo's report: report.json (the headline numbers the issue names,
//! timings, and evaluate's full output) and a self-contained report.html
//! (thumbnails inlined, tables, loss curves as inline SVG).

use hhi::eval::metrics::{exact_match, gerund_match};
use hhi::io::atomic::write_atomic;
use hhi::io::jsonl::{read_objects, string_field};
use hhi::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

/// Seconds per step, kept across invocations (a rerun keeps earlier steps' times).
pub struct Timings(Map<String, Value>);

impl Timings {
    pub fn load(out: &Path) -> Result<Self> {
        let path = out.join("timings.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Timings).map_err(|e| Error::data(&path, e.to_string())),
            Err(_) => Ok(Timings(Map::new())),
        }
    }
    /// A step's time in this invocation: it replaces an earlier one (the
    /// step ran whole), or, for a step that resumes itself, adds to it.
    pub fn record(&mut self, step: &str, seconds: f64, resumed: bool) {
        let before = if resumed { self.0.get(step).and_then(Value::as_f64).unwrap_or(0.0) } else { 0.0 };
        self.0.insert(step.to_string(), json!(((before + seconds) * 10.0).round() / 10.0));
    }
    pub fn save(&self, out: &Path) -> Result<()> {
        write_atomic(&out.join("timings.json"), Value::Object(self.0.clone()).to_string().as_bytes())
    }
}

fn objects(path: &Path) -> Result<Vec<Map<String, Value>>> {
    Ok(read_objects(path)?.into_iter().map(|(_, o)| o).collect())
}

fn share(hits: usize, n: usize) -> f64 {
    hits as f64 / n.max(1) as f64
}

/// Pseudo-labels against what each weak caption states (the summarizer's
/// job; a caption that states no interaction makes any label wrong), the
/// same over the captions that state one, and against what the image shows.
fn pseudo_label_scores(out: &Path) -> Result<Value> {
    let rows = objects(&out.join("pseudo_labels.jsonl"))?;
    let field = |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let score = |rows: &[&Map<String, Value>], truth: &str| {
        let em = rows.iter().filter(|r| exact_match(&field(r, "label"), &field(r, truth))).count();
        let ger = rows.iter().filter(|r| !field(r, truth).is_empty() && gerund_match(&field(r, "label"), &field(r, truth))).count();
        (share(em, rows.len()), share(ger, rows.len()))
    };
    let all: Vec<_> = rows.iter().collect();
    let stated: Vec<_> = rows.iter().filter(|r| !field(r, "caption_label").is_empty()).collect();
    let ((em, ger), (em_img, ger_img), (em_st, ger_st)) = (score(&all, "caption_label"), score(&all, "gold"), score(&stated, "caption_label"));
    let weak = read_objects(&out.join("world/weak.jsonl"))?.len();
    Ok(json!({"exact_match": em, "gerund_accuracy": ger, "n": rows.len(), "weak_captions": weak,
              "where_stated": {"exact_match": em_st, "gerund_accuracy": ger_st, "n": stated.len()},
              "against_image": {"exact_match": em_img, "gerund_accuracy": ger_img}}))
}

pub struct TestItem {
    pub image: String,
    pub label: String,
    pub predictions: Vec<String>,
}

fn test_items(out: &Path) -> Result<Vec<TestItem>> {
    let mut preds: HashMap<String, Vec<String>> = HashMap::new();
    for r in objects(&out.join("predictions.jsonl"))? {
        let texts = r.get("predictions").and_then(Value::as_array).map(|p| p.iter().filter_map(|x| x["text"].as_str().map(String::from)).collect()).unwrap_or_default();
        preds.insert(r.get("id").and_then(Value::as_str).unwrap_or("").to_string(), texts);
    }
    let path = out.join("world/test.jsonl");
    let mut items = Vec::new();
    for (line, r) in read_objects(&path)? {
        let image = string_field(&path, line, &r, "image")?;
        let predictions = preds.get(&image).cloned().unwrap_or_default();
        items.push(TestItem { label: string_field(&path, line, &r, "label")?, image, predictions });
    }
    Ok(items)
}

fn top_k_gerund(items: &[&TestItem], k: usize) -> f64 {
    share(items.iter().filter(|it| it.predictions.iter().take(k).any(|p| gerund_match(p, &it.label))).count(), items.len())
}

/// The captioner's scores over all test items (not per source), head and
/// tail apart; `baseline` is `hhi evaluate`'s majority-label baseline.
fn captioner_scores(out: &Path, items: &[TestItem], baseline: &Value) -> Result<Value> {
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(out.join("world/stats.json")).map_err(|e| Error::io(out.join("world/stats.json"), e))?)
        .map_err(|e| Error::data(out.join("world/stats.json"), e.to_string()))?;
    let tail: HashSet<String> =
        stats["interactions"].as_array().into_iter().flatten().filter(|i| i["head"] == false).filter_map(|i| i["label"].as_str().map(String::from)).collect();
    let all: Vec<&TestItem> = items.iter().collect();
    let tail_items: Vec<&TestItem> = items.iter().filter(|it| tail.contains(&it.label)).collect();
    let head_items: Vec<&TestItem> = items.iter().filter(|it| !tail.contains(&it.label)).collect();
    let exact = share(items.iter().filter(|it| it.predictions.first().is_some_and(|p| exact_match(p, &it.label))).count(), items.len());
    Ok(json!({
        "top1_gerund_accuracy": top_k_gerund(&all, 1), "top5_gerund_accuracy": top_k_gerund(&all, 5), "exact_match": exact,
        "majority_baseline": baseline["gerund_accuracy"], "majority_label": baseline["label"],
        "tail_top5_gerund_accuracy": top_k_gerund(&tail_items, 5), "head_top5_gerund_accuracy": top_k_gerund(&head_items, 5),
        "tail_top1_gerund_accuracy": top_k_gerund(&tail_items, 1), "head_top1_gerund_accuracy": top_k_gerund(&head_items, 1),
        "n": items.len(), "n_tail": tail_items.len(),
    }))
}

/// Writes report.json and report.html; returns a one-paragraph summary.
pub fn write(out: &Path, timings: &Timings) -> Result<String> {
    let items = test_items(out)?;
    let evaluation: Value = serde_json::from_str(&std::fs::read_to_string(out.join("evaluation.json")).map_err(|e| Error::io(out.join("evaluation.json"), e))?)
        .map_err(|e| Error::data(out.join("evaluation.json"), e.to_string()))?;
    let mut captioner = captioner_scores(out, &items, &evaluation["majority_baseline"])?;
    // Beside the gerund accuracy: the top prediction's similarity to the gold label (null where not computed).
    for key in ["semantic_similarity", "verb_similarity"] {
        captioner[format!("top1_{key}")] = evaluation["similarity"][key]["k"]["1"]["overall"].clone();
    }
    let report = json!({
        "pseudo_labels": pseudo_label_scores(out)?,
        "captioner": captioner,
        "categorical": {"verb_accuracy": evaluation["categorical"]["verb_accuracy"], "n": evaluation["categorical"]["n"]},
        "timings_s": Value::Object(timings.0.clone()),
        "total_s": timings.0.values().filter_map(Value::as_f64).sum::<f64>(),
        "evaluation": evaluation,
    });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report).expect("json").as_bytes())?;
    write_atomic(&out.join("report.html"), super::html::page(out, &report, &items)?.as_bytes())?;
    let (p, c) = (&report["pseudo_labels"], &report["captioner"]);
    let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.3}"));
    let mut s = String::new();
    let _ = write!(
        s,
        "pseudo-labels: gerund accuracy {} ({} of {} weak captions labelled)\ncaptioner: top-1 gerund accuracy {} (majority baseline {}), top-5 {}, tail top-5 {}, exact match {}, semantic similarity {}, verb similarity {}\ncategorical verb accuracy {}\ntotal {:.0} s",
        f(&p["gerund_accuracy"]), p["n"], p["weak_captions"], f(&c["top1_gerund_accuracy"]), f(&c["majority_baseline"]), f(&c["top5_gerund_accuracy"]), f(&c["tail_top5_gerund_accuracy"]),
        f(&c["exact_match"]), f(&c["top1_semantic_similarity"]), f(&c["top1_verb_similarity"]), f(&report["categorical"]["verb_accuracy"]), report["total_s"].as_f64().unwrap_or(0.0)
    );
    Ok(s)
}
