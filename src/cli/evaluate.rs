//! `hhi evaluate`: predictions (from `hhi predict`) against gold labels,
//! printed as a table and optionally written as JSON (eval/mod.rs), with the
//! model-based similarity metrics where their models are given
//! (eval/similarity.rs).

use super::DeviceArg;
use hhi::eval::similarity::{gerunds_needed, similarity_scores, Embedder, Models, Nli, PairScorer, Premise, WordVectors};
use hhi::eval::{evaluate, verb_accuracy, Gold, KS};
use hhi::io::atomic::write_atomic;
use hhi::models::bart::nli::BartNli;
use hhi::models::bert::bleurt::Bleurt;
use hhi::models::bert::sentence::{OnBackend, SentenceEncoder};
use hhi::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Predictions JSONL: {"id", "predictions": [{"text", "score"}, ...]} (best first).
    #[arg(long)]
    predictions: PathBuf,
    /// Gold JSONL: {"id", "label", "source"} (`source` optional; without `id`,
    /// items are matched by `image`, as `hhi world`'s test.jsonl and `hhi predict` write it).
    #[arg(long)]
    gold: PathBuf,
    /// Categorical gold JSONL: {"id" or "image", "verb"}; adds verb accuracy (top-1 gerund = verb).
    #[arg(long)]
    categorical: Option<PathBuf>,
    /// Write the full report (every number) here as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A sentence-transformers BERT folder (e.g. all-MiniLM-L6-v2, which
    /// scripts/fetch-minilm puts in ~/.cache/hhi/all-MiniLM-L6-v2): adds
    /// semantic similarity (and verb similarity without --word-vectors).
    #[arg(long)]
    sentence_model: Option<PathBuf>,
    /// GloVe-format word vectors (`word v1 … vn` per line, as
    /// glove-wiki-gigaword-200): verb similarity as the cosine of the gerunds.
    #[arg(long)]
    word_vectors: Option<PathBuf>,
    /// A BLEURT checkpoint folder (bleurt-pytorch's BLEURT-20 format:
    /// `model_type: bleurt`, model.safetensors, tokenizer.json): adds
    /// BLEURT(gold, prediction).
    #[arg(long)]
    bleurt: Option<PathBuf>,
    /// An NLI folder (`BartForSequenceClassification`, e.g. facebook/bart-large-mnli:
    /// `model_type: bart`, model.safetensors, tokenizer.json): P(entailment)
    /// and P(contradiction) of each prediction given the item's source
    /// `caption` in the gold file (`_` filled from its `names`, else "person").
    #[arg(long)]
    nli: Option<PathBuf>,
    /// Texts (BLEURT, NLI: pairs) per model batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

/// Each non-empty line of a JSONL file, parsed, with its line number.
fn lines(path: &Path) -> Result<Vec<(usize, serde_json::Value)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let rows: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map(|v| (i + 1, v)).map_err(|e| Error::data(path, format!("line {}: not JSON: {e}", i + 1))))
        .collect::<Result<_>>()?;
    if rows.is_empty() {
        return Err(Error::data(path, "no records (the file is empty)"));
    }
    Ok(rows)
}

/// An item's key: its `id`, else its `image` path (as `hhi world` and `hhi predict` write it).
fn item_id(path: &Path, line: usize, v: &serde_json::Value) -> Result<String> {
    field(path, line, v, "id").or_else(|_| field(path, line, v, "image")).map_err(|_| Error::data(path, format!("line {line}: no `id` or `image` field")))
}

fn field(path: &Path, line: usize, v: &serde_json::Value, name: &str) -> Result<String> {
    match v.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) if name == "id" && !other.is_null() => Ok(other.to_string()),
        _ => Err(Error::data(path, format!("line {line}: no string field `{name}`"))),
    }
}

pub fn run(a: Args) -> Result<()> {
    let mut predictions: HashMap<String, Vec<String>> = HashMap::new();
    for (line, v) in lines(&a.predictions)? {
        let preds = v.get("predictions").and_then(|p| p.as_array()).ok_or_else(|| Error::data(&a.predictions, format!("line {line}: no `predictions` list")))?;
        let texts = preds.iter().map(|p| p.get("text").and_then(|t| t.as_str()).map(String::from)).collect::<Option<Vec<_>>>();
        let texts = texts.ok_or_else(|| Error::data(&a.predictions, format!("line {line}: a prediction without a string `text`")))?;
        predictions.insert(item_id(&a.predictions, line, &v)?, texts);
    }
    let gold = lines(&a.gold)?
        .into_iter()
        .map(|(line, v)| {
            let source = v.get("source").and_then(|s| s.as_str()).unwrap_or("all").to_string();
            Ok(Gold { id: item_id(&a.gold, line, &v)?, label: field(&a.gold, line, &v, "label")?, source })
        })
        .collect::<Result<Vec<_>>>()?;
    // NLI premises: each gold item's source caption and names, where given.
    let mut premises: HashMap<String, Premise> = HashMap::new();
    for (line, v) in lines(&a.gold)? {
        if let Some(caption) = v.get("caption").and_then(|c| c.as_str()) {
            let names = v.get("names").and_then(|n| n.as_array()).map(|n| n.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
            premises.insert(item_id(&a.gold, line, &v)?, Premise { caption: caption.to_string(), names });
        }
    }
    let mut report = evaluate(&predictions, &gold);
    let vectors = match &a.word_vectors {
        Some(path) => Some(WordVectors::load(path, &gerunds_needed(&predictions, &gold))?),
        None => None,
    };
    let vectors_name = a.word_vectors.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let [sentence_name, bleurt_name, nli_name] = [&a.sentence_model, &a.bleurt, &a.nli].map(|d| d.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
    report["similarity"] = hhi::on_device!(a.device.device, a.device.dtype(), |be| {
        let encoder = a.sentence_model.as_ref().map(|dir| SentenceEncoder::load(be, dir)).transpose()?;
        let on = encoder.as_ref().map(|encoder| OnBackend { be, encoder, batch: a.batch });
        let bleurt = a.bleurt.as_ref().map(|dir| Bleurt::load(be, dir, a.batch)).transpose()?;
        let nli = a.nli.as_ref().map(|dir| BartNli::load(be, dir, a.batch)).transpose()?;
        let models = Models {
            sentence: on.as_ref().map(|on| (on as &dyn Embedder, sentence_name.as_str())),
            word_vectors: vectors.as_ref().map(|v| (v, vectors_name.as_str())),
            bleurt: bleurt.as_ref().map(|b| (b as &dyn PairScorer, bleurt_name.as_str())),
            nli: nli.as_ref().map(|n| (n as &dyn Nli, nli_name.as_str())),
            premises: (!premises.is_empty()).then_some(&premises),
        };
        similarity_scores(&predictions, &gold, &models)?
    });
    if let Some(path) = &a.categorical {
        let verbs = lines(path)?.into_iter().map(|(line, v)| Ok((item_id(path, line, &v)?, field(path, line, &v, "verb")?))).collect::<Result<Vec<_>>>()?;
        report["categorical"] = serde_json::json!({"verb_accuracy": verb_accuracy(&predictions, &verbs), "n": verbs.len()});
    }
    print_table(&report);
    if let Some(out) = &a.out {
        write_atomic(out, serde_json::to_string_pretty(&report).expect("serialises").as_bytes())?;
    }
    Ok(())
}

fn print_table(r: &serde_json::Value) {
    say!("{} items, {} without predictions", r["n"], r["missing_predictions"]);
    say!("{:<8} {:>12} {:>16} {:>8} {:>8}", "k", "exact match", "gerund accuracy", "BLEU-4", "word F1");
    for k in KS {
        let o = &r["k"][k.to_string()]["overall"];
        let f = |name: &str| o[name].as_f64().unwrap_or(0.0);
        say!("{:<8} {:>12.3} {:>16.3} {:>8.3} {:>8.3}", k, f("exact_match"), f("gerund_accuracy"), f("bleu4"), f("word_f1"));
    }
    let c = &r["corpus"]["overall"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    say!("top prediction, corpus: BLEU-4 {:.2} (sacrebleu), ROUGE-L {:.3}, CIDEr-D {:.3}", f(&c["bleu4_corpus"]), f(&c["rouge_l"]), f(&c["cider_d"]));
    let (p, g) = (&r["diversity"]["predictions"], &r["diversity"]["gold"]);
    say!(
        "diversity (top prediction / gold): {} / {} labels, {} / {} gerunds, distinct-1 {:.3} / {:.3}, distinct-2 {:.3} / {:.3}",
        p["labels"],
        g["labels"],
        p["gerunds"],
        g["gerunds"],
        f(&p["distinct_1"]),
        f(&g["distinct_1"]),
        f(&p["distinct_2"]),
        f(&g["distinct_2"])
    );
    for (key, label) in [("semantic_similarity", "semantic similarity"), ("verb_similarity", "verb similarity"), ("bleurt", "BLEURT")] {
        let m = &r["similarity"][key];
        match m["not_computed"].as_str() {
            Some(why) => say!("{label}: not computed ({why})"),
            None => {
                say!("{label} (k = 1 / 5 / 8): {}", KS.iter().map(|k| format!("{:.3}", m["k"][k.to_string()]["overall"].as_f64().unwrap_or(0.0))).collect::<Vec<_>>().join(" / "))
            }
        }
    }
    let nli = &r["similarity"]["nli"];
    match nli["not_computed"].as_str() {
        Some(why) => say!("NLI: not computed ({why})"),
        None => {
            let at = |key: &str| KS.iter().map(|k| format!("{:.3}", nli[key]["k"][k.to_string()]["overall"].as_f64().unwrap_or(0.0))).collect::<Vec<_>>().join(" / ");
            say!("NLI (k = 1 / 5 / 8): P(entailment) {} (highest), P(contradiction) {} (lowest)", at("p_entailment"), at("p_contradiction"));
        }
    }
    let m = &r["majority_baseline"];
    say!(
        "majority baseline ({}): exact match {:.3}, gerund accuracy {:.3}",
        m["label"].as_str().unwrap_or("-"),
        m["exact_match"].as_f64().unwrap_or(0.0),
        m["gerund_accuracy"].as_f64().unwrap_or(0.0)
    );
    if let Some(v) = r["categorical"]["verb_accuracy"].as_f64() {
        say!("categorical verb accuracy: {v:.3} ({} items)", r["categorical"]["n"]);
    }
}
