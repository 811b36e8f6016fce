//! Natural-language inference with a BART classifier, as the zero-shot and
//! NLI pipelines of transformers use facebook/bart-large-mnli:
//! `tokenizer(premise, hypothesis)` (truncated to the model's positions),
//! softmax over the class logits, the classes found by their `id2label`
//! names (entailment, contradiction).

use super::{Bart, BartActs};
use crate::backend::Backend;
use crate::eval::similarity::Nli;
use crate::io::checkpoint::ModelDir;
use crate::io::tokenizer::{pad_right, Tokenizer};
use crate::models::ModelType;
use crate::{Error, Result};
use std::path::Path;

pub struct BartNli<'a, B: Backend> {
    be: &'a B,
    model: Bart<B>,
    tokenizer: Tokenizer,
    batch: usize,
    entail: usize,
    contradict: usize,
}

impl<'a, B: Backend> BartNli<'a, B> {
    /// Loads an NLI folder (config.json with `model_type: bart` and an
    /// `id2label` naming entailment and contradiction, model.safetensors,
    /// tokenizer.json).
    pub fn load(be: &'a B, dir: &Path, batch: usize) -> Result<Self> {
        let md = ModelDir::open_kind(dir, &[ModelType::Bart], "--nli")?;
        let model = md.load_bart(be)?;
        let (Some(entail), Some(contradict)) = (model.cfg.label_index("entail"), model.cfg.label_index("contradict")) else {
            return Err(Error::config(dir.join("config.json"), format!("id2label {:?} names no entailment and contradiction classes", model.cfg.labels)));
        };
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?.for_encoder(model.cfg.max_position_embeddings)?;
        Ok(BartNli { be, model, tokenizer, batch: batch.max(1), entail, contradict })
    }
}

impl<B: Backend> Nli for BartNli<'_, B> {
    fn probabilities(&self, pairs: &[(&str, &str)]) -> Result<Vec<(f32, f32)>> {
        let labels = self.model.cfg.labels.len();
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(self.batch) {
            let encoded = chunk.iter().map(|(p, h)| self.tokenizer.encode_pair(p, h).map(|e| e.0)).collect::<Result<Vec<_>>>()?;
            let (ids, mask, t) = pad_right(&encoded, self.model.cfg.pad_token_id);
            let mut acts = BartActs::new(self.be, &self.model.cfg, chunk.len(), t)?;
            let logits = self.model.classify(self.be, &mut acts, &ids, &mask)?;
            for row in logits.chunks(labels) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
                let sum: f32 = exp.iter().sum();
                out.push((exp[self.entail] / sum, exp[self.contradict] / sum));
            }
        }
        Ok(out)
    }
}
