//! BLEURT scores as bleurt-pytorch computes them for BLEURT-20 checkpoints:
//! `tokenizer(references, candidates)` (a pair per row: token types 0 then
//! 1, cut to 512 tokens), `BleurtForSequenceClassification(...).logits[:, 0]`.

use super::{Bert, BertActs};
use crate::backend::Backend;
use crate::eval::similarity::PairScorer;
use crate::io::checkpoint::ModelDir;
use crate::io::tokenizer::{pad_right, Tokenizer};
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
            let (id_rows, type_rows): (Vec<Vec<u32>>, Vec<Vec<u32>>) = chunk.iter().map(|(r, c)| self.tokenizer.encode_pair(r, c)).collect::<Result<Vec<_>>>()?.into_iter().unzip();
            let ((ids, mask, t), (types, _, _)) = (pad_right(&id_rows, 0), pad_right(&type_rows, 0));
            let b = chunk.len();
            let mut acts = BertActs::new(self.be, &self.model.cfg, b, t)?;
            self.model.forward(self.be, &mut acts, &ids, &types, &mask)?;
            let logits = self.model.scores(self.be, &mut acts)?;
            out.extend(logits.chunks(self.model.cfg.num_labels).map(|row| row[0]));
        }
        Ok(out)
    }
}
