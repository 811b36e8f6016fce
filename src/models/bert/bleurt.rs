//! BLEURT scores as bleurt-pytorch computes them for BLEURT-20 checkpoints:
//! `tokenizer(references, candidates)` (a pair per row: token types 0 then
//! 1, cut to 512 tokens), `BleurtForSequenceClassification(...).logits[:, 0]`.

use super::{Bert, BertActs};
use crate::backend::Backend;
use crate::eval::similarity::PairScorer;
use crate::io::checkpoint::ModelDir;
use crate::io::tokenizer::Tokenizer;
use crate::models::ModelType;
use crate::Result;
use std::path::Path;

pub struct Bleurt<'a, B: Backend> {
    be: &'a B,
    model: Bert<B>,
    tokenizer: Tokenizer,
    batch: usize,
}

impl<'a, B: Backend> Bleurt<'a, B> {
    /// Loads a BLEURT folder (config.json with `model_type: bleurt`,
    /// model.safetensors, tokenizer.json).
    pub fn load(be: &'a B, dir: &Path, batch: usize) -> Result<Self> {
        let md = ModelDir::open_kind(dir, &[ModelType::Bleurt], "--bleurt")?;
        let model = md.load_bert(be)?;
        let limit = model.cfg.max_position_embeddings.min(512);
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?.for_encoder(limit)?;
        Ok(Bleurt { be, model, tokenizer, batch: batch.max(1) })
    }
}

impl<B: Backend> PairScorer for Bleurt<'_, B> {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(self.batch) {
            let encoded = chunk.iter().map(|(r, c)| self.tokenizer.encode_pair(r, c)).collect::<Result<Vec<_>>>()?;
            let (b, t) = (chunk.len(), encoded.iter().map(|e| e.0.len()).max().unwrap_or(1).max(1));
            let (mut ids, mut types, mut mask) = (vec![0i32; b * t], vec![0i32; b * t], vec![0f32; b * t]);
            for (row, (e_ids, e_types)) in encoded.iter().enumerate() {
                for (j, (&id, &ty)) in e_ids.iter().zip(e_types).enumerate() {
                    ids[row * t + j] = id as i32;
                    types[row * t + j] = ty as i32;
                    mask[row * t + j] = 1.0;
                }
            }
            let mut acts = BertActs::new(self.be, &self.model.cfg, b, t)?;
            self.model.forward(self.be, &mut acts, &ids, &types, &mask)?;
            let logits = self.model.scores(self.be, &mut acts)?;
            out.extend(logits.chunks(self.model.cfg.num_labels).map(|row| row[0]));
        }
        Ok(out)
    }
}
