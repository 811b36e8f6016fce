//! report.html: one self-contained page (images inlined as base64 PNG, loss
//! curves as inline SVG, no scripts) with the demo's numbers beside the
//! majority-class baseline, head versus tail interactions, and examples.

use super::report::TestItem;
use hhi::io::jsonl::read_objects;
use hhi::{Error, Result};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}th{background:#f3f3f3}.ok{color:#060}.bad{color:#a00}\
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:8px;width:240px;font-size:13px}\
.card img{width:128px;height:128px;image-rendering:pixelated}.plots{display:flex;flex-wrap:wrap;gap:16px}";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn image_tag(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => format!("<img src=\"data:image/png;base64,{}\" alt=\"\">", base64(&bytes)),
        Err(_) => format!("<p>(missing {})</p>", escape(&path.display().to_string())),
    }
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// A loss curve from a log.jsonl (`loss` per line) as an SVG polyline.
fn plot(title: &str, path: &Path) -> String {
    let losses: Vec<f64> = read_objects(path).map(|rows| rows.iter().filter_map(|(_, r)| r.get("loss").and_then(Value::as_f64)).collect()).unwrap_or_default();
    if losses.is_empty() {
        return format!("<div><b>{title}</b><p>(no log)</p></div>");
    }
    let (w, h) = (320.0, 160.0);
    let (lo, hi) = losses.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let span = (hi - lo).max(1e-9);
    let n = (losses.len() - 1).max(1) as f64;
    let points: String = losses.iter().enumerate().map(|(i, l)| format!("{:.1},{:.1} ", 30.0 + (w - 40.0) * i as f64 / n, 10.0 + (h - 30.0) * (hi - l) / span)).collect();
    format!(
        "<div><b>{title}</b><br><svg width=\"{w}\" height=\"{h}\" style=\"border:1px solid #ddd\"><polyline fill=\"none\" stroke=\"#2266cc\" stroke-width=\"1.5\" points=\"{points}\"/>\
         <text x=\"2\" y=\"14\" font-size=\"10\">{hi:.2}</text><text x=\"2\" y=\"{}\" font-size=\"10\">{lo:.2}</text><text x=\"{}\" y=\"{}\" font-size=\"10\">{} {}</text></svg></div>",
        h - 18.0,
        w - 90.0,
        h - 4.0,
        losses.len(),
        if title.contains("pre-training") { "steps" } else { "epochs" }
    )
}

fn row(cells: &[String]) -> String {
    format!("<tr>{}</tr>", cells.iter().map(|c| format!("<td>{c}</td>")).collect::<String>())
}

pub fn page(out: &Path, report: &Value, items: &[TestItem]) -> Result<String> {
    let (p, c, k) = (&report["pseudo_labels"], &report["captioner"], &report["evaluation"]["k"]);
    let mut h = format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>hhi demo report</title><style>{STYLE}</style></head><body>");
    let _ = write!(h, "<h1>hhi demo</h1><p>The method of <i>Learning Human-Human Interactions in Images from Weak Textual Supervision</i> on the synthetic world, with stand-in models trained from scratch. Every number is measured on this run.</p>");
    let _ = write!(h, "<h2>Captioner on the test images ({} items, {} of tail interactions)</h2><table><tr><th>metric</th><th>captioner</th><th>majority-class baseline (<code>{}</code>)</th></tr>", c["n"], c["n_tail"], escape(c["majority_label"].as_str().unwrap_or("")));
    h += &row(&["gerund accuracy, top 1".into(), pct(&c["top1_gerund_accuracy"]), pct(&c["majority_baseline"])]);
    h += &row(&["gerund accuracy, top 5".into(), pct(&c["top5_gerund_accuracy"]), pct(&c["majority_baseline"])]);
    h += &row(&["exact match, top 1".into(), pct(&c["exact_match"]), pct(&report["evaluation"]["majority_baseline"]["exact_match"])]);
    h += &row(&["verb accuracy, categorical set".into(), pct(&report["categorical"]["verb_accuracy"]), "–".into()]);
    h += "</table><h3>Head versus tail interactions</h3><table><tr><th></th><th>top 1</th><th>top 5</th></tr>";
    h += &row(&["head".into(), pct(&c["head_top1_gerund_accuracy"]), pct(&c["head_top5_gerund_accuracy"])]);
    h += &row(&["tail".into(), pct(&c["tail_top1_gerund_accuracy"]), pct(&c["tail_top5_gerund_accuracy"])]);
    h += "</table><h3>hhi evaluate (best of the top k, averaged per source then over sources)</h3><table><tr><th>k</th><th>exact match</th><th>gerund accuracy</th><th>semantic similarity</th><th>verb similarity</th><th>BLEU-4</th><th>word F1</th></tr>";
    let sim = &report["evaluation"]["similarity"];
    let similarity = |key: &str, kk: &str| sim[key]["k"][kk]["overall"].as_f64().map_or("not computed".into(), |x| format!("{x:.3}"));
    for kk in ["1", "5", "8"] {
        let o = &k[kk]["overall"];
        h += &row(&[
            kk.into(),
            pct(&o["exact_match"]),
            pct(&o["gerund_accuracy"]),
            similarity("semantic_similarity", kk),
            similarity("verb_similarity", kk),
            format!("{:.3}", o["bleu4"].as_f64().unwrap_or(0.0)),
            format!("{:.3}", o["word_f1"].as_f64().unwrap_or(0.0)),
        ]);
    }
    h += "</table><p>";
    for (key, name) in [("semantic_similarity", "Semantic similarity"), ("verb_similarity", "Verb similarity")] {
        let how =
            sim[key]["not_computed"].as_str().map(|why| format!("not computed: {why}")).or_else(|| sim[key]["model"].as_str().or(sim[key]["source"].as_str()).map(String::from));
        let _ = write!(h, "{name}: {}. ", escape(&how.unwrap_or_default()));
    }
    let (corpus, div) = (&report["evaluation"]["corpus"]["overall"], &report["evaluation"]["diversity"]);
    let f = |v: &Value, digits: usize| v.as_f64().map_or("–".into(), |x| format!("{x:.digits$}"));
    let _ = write!(
        h,
        "Top prediction over the corpus: BLEU-4 {} (sacrebleu), ROUGE-L {}, CIDEr-D {}. Diversity of the top predictions: {} distinct labels and {} gerunds (gold: {} and {}), distinct-2 {} (gold {}).</p>",
        f(&corpus["bleu4_corpus"], 1),
        f(&corpus["rouge_l"], 3),
        f(&corpus["cider_d"], 3),
        div["predictions"]["labels"],
        div["predictions"]["gerunds"],
        div["gold"]["labels"],
        div["gold"]["gerunds"],
        f(&div["predictions"]["distinct_2"], 3),
        f(&div["gold"]["distinct_2"], 3)
    );
    let _ = write!(h, "<h2>Pseudo-labels ({} of {} weak captions)</h2><table><tr><th>against</th><th>exact match</th><th>gerund accuracy</th></tr>", p["n"], p["weak_captions"]);
    h += &row(&["the interaction the caption states".into(), pct(&p["exact_match"]), pct(&p["gerund_accuracy"])]);
    let stated = &p["where_stated"];
    h += &row(&[format!("the same, over the {} captions that state one", stated["n"]), pct(&stated["exact_match"]), pct(&stated["gerund_accuracy"])]);
    h += &row(&["the interaction the image shows".into(), pct(&p["against_image"]["exact_match"]), pct(&p["against_image"]["gerund_accuracy"])]);
    h += "</table><h2>Training</h2><div class=\"plots\">";
    for (title, log) in [
        ("GPT-Neo stand-in pre-training", "neo/log.jsonl"),
        ("summarizer (T5) distillation", "summarizer/log.jsonl"),
        ("CLIP stand-in pre-training", "clip/log.jsonl"),
        ("GPT-2 stand-in pre-training", "gpt2/log.jsonl"),
        ("captioner (ClipCap)", "captioner/log.jsonl"),
    ] {
        h += &plot(title, &out.join(log));
    }
    h += "</div><h2>Test images: gold label and top-5 predictions</h2><div class=\"cards\">";
    for it in items.iter().take(16) {
        let preds: String = it
            .predictions
            .iter()
            .take(5)
            .map(|p| format!("<li class=\"{}\">{}</li>", if hhi::eval::metrics::gerund_match(p, &it.label) { "ok" } else { "bad" }, escape(p)))
            .collect();
        let _ = write!(h, "<div class=\"card\">{}<br>gold: <b>{}</b><ol>{preds}</ol></div>", image_tag(&out.join("world").join(&it.image)), escape(&it.label));
    }
    h += "</div><h2>Weak captions and their pseudo-labels</h2><div class=\"cards\">";
    let pseudo = read_objects(&out.join("pseudo_labels.jsonl")).map_err(|e| Error::Invalid(e.to_string()))?;
    for (_, r) in pseudo.iter().take(8) {
        let s = |k: &str| escape(r.get(k).and_then(Value::as_str).unwrap_or("–"));
        let image = r.get("image").and_then(Value::as_str).unwrap_or("");
        let image = if Path::new(image).is_absolute() { Path::new(image).to_path_buf() } else { out.join(image) };
        let _ = write!(h, "<div class=\"card\">{}<br>{}<br>pseudo-label: <b>{}</b><br>image shows: {}</div>", image_tag(&image), s("caption"), s("label"), s("gold"));
    }
    let timings: String = report["timings_s"].as_object().into_iter().flatten().map(|(k, v)| row(&[escape(k), format!("{v} s")])).collect();
    let _ = write!(h, "</div><h2>Timings</h2><table>{timings}</table></body></html>");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_rfc_4648() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x10]), "//4AEA==");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
