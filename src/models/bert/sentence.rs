//! Sentence embeddings as sentence-transformers computes them for models like
//! `all-MiniLM-L6-v2` (modules Transformer → Pooling(mean) → Normalize):
//! tokens cut to `max_seq_length` (sentence_bert_config.json; else the
//! model's position limit), the last hidden states averaged over the
//! attention mask, then L2-normalised.

use super::{Bert, BertActs};
use crate::backend::Backend;
use crate::eval::similarity::Embedder;
use crate::io::checkpoint::ModelDir;
use crate::io::tokenizer::{pad_right, Tokenizer};
use crate::models::ModelType;
use crate::{Error, Result};
use std::path::Path;

pub struct SentenceEncoder<B: Backend> {
    pub model: Bert<B>,
    tokenizer: Tokenizer,
}

/// sentence-transformers' `max_seq_length`, if the folder says.
fn max_seq_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::config(&path, format!("malformed JSON: {e}")))?;
    Ok(json.get("max_seq_length").and_then(|v| v.as_u64()).map(|v| v as usize))
}

impl<B: Backend> SentenceEncoder<B> {
    /// Loads a sentence-transformers folder (config.json, model.safetensors,
    /// tokenizer.json; sentence_bert_config.json optional).
    pub fn load(be: &B, dir: &Path) -> Result<Self> {
        let md = ModelDir::open_kind(dir, &[ModelType::Bert], "--sentence-model")?;
        let model = md.load_bert(be)?;
        let limit = max_seq_length(dir)?.unwrap_or(model.cfg.max_position_embeddings).min(model.cfg.max_position_embeddings);
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?.for_encoder(limit)?;
        Ok(SentenceEncoder { model, tokenizer })
    }

    pub fn dim(&self) -> usize {
        self.model.cfg.hidden_size
    }

    /// Unit-length embeddings of `texts`, in order, `batch` at a time; texts
    /// are batched by token count so that little of a batch is padding.
    pub fn embed(&self, be: &B, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
        let c = self.dim();
        let encoded = texts.iter().map(|s| self.tokenizer.encode_with_special(s)).collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch.max(1)) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
            let (ids, mask, t) = pad_right(&rows, 0);
            let b = chunk.len();
            let mut acts = BertActs::new(be, &self.model.cfg, b, t)?;
            self.model.forward(be, &mut acts, &ids, &vec![0; b * t], &mask)?;
            let hidden = be.download(B::view(&acts.hidden))?;
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = mean_pool_normalized(&hidden[row * t * c..(row + 1) * t * c], &mask[row * t..(row + 1) * t], c);
            }
        }
        Ok(out)
    }
}

/// A sentence encoder on its backend, as the metrics take it.
pub struct OnBackend<'a, B: Backend> {
    pub be: &'a B,
    pub encoder: &'a SentenceEncoder<B>,
    pub batch: usize,
}

impl<B: Backend> Embedder for OnBackend<'_, B> {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.encoder.embed(self.be, texts, self.batch)
    }
}

/// Σ mask·h / max(Σ mask, 1e-9), then x / max(‖x‖, 1e-12) (sentence-transformers'
/// Pooling and `F.normalize`).
pub fn mean_pool_normalized(hidden: &[f32], mask: &[f32], c: usize) -> Vec<f32> {
    let mut sum = vec![0f64; c];
    for (h, &m) in hidden.chunks_exact(c).zip(mask) {
        sum.iter_mut().zip(h).for_each(|(s, &x)| *s += (x * m) as f64);
    }
    let count = mask.iter().map(|&m| m as f64).sum::<f64>().max(1e-9);
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    mean.iter().map(|x| (x / norm) as f32).collect()
}

/// The cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
