//! Captioning with the KV cache: the first step runs the MLP and feeds the
//! `P` prefix rows (positions 0..P) to GPT-2, later steps one caption token
//! each (positions P, P + 1, …). [`caption_beams`] drives it with the shared
//! beam search (generate/beam.rs); the method's predictions use 32 beams,
//! at most 20 tokens and summed log-probabilities (length penalty 0).

use super::ClipCap;
use crate::backend::{Act, Backend};
use crate::generate::beam::{beam_search, BeamConfig, Hypothesis, StepModel};
use crate::generate::candidates::BeamPlan;
use crate::models::gpt2::{decode_embedded, decode_tokens, KvCache};
use crate::nn::Linear;
use crate::{invalid, Result};

/// Beam search's view of a captioner: one row per (image, beam).
struct CaptionStepper<'a, B: Backend> {
    be: &'a B,
    model: &'a ClipCap<B>,
    cache: KvCache<B>,
    /// [rows, prefix_size]: each image's embedding once per beam.
    prefix: Vec<f32>,
    steps: usize,
}

impl<B: Backend> CaptionStepper<'_, B> {
    /// The MLP on every row's image embedding, plus the prefix positions,
    /// written as the cache's next `P` input rows per sequence.
    fn prefill(&mut self) -> Result<()> {
        let (be, cfg) = (self.be, &self.model.cfg);
        let (rows, p, c, hidden) = (self.cache.batch, cfg.prefix_length, cfg.gpt2.n_embd, cfg.prefix_hidden_size);
        let w = self.model.weights();
        let prefix_in = be.upload(&self.prefix)?;
        let (mut a1, mut h, mut proj) = (be.zeros(rows * hidden)?, be.zeros(rows * hidden)?, be.zeros(rows * p * c)?);
        Linear::nn_linear(cfg.prefix_size, hidden).forward(be, B::view_mut(&mut a1), B::view(&prefix_in), w.w1, Some(w.b1), rows);
        be.activation_forward(Act::Tanh, B::view_mut(&mut h), B::view(&a1));
        Linear::nn_linear(hidden, p * c).forward(be, B::view_mut(&mut proj), B::view(&h), w.w2, Some(w.b2), rows);
        let positions = be.upload_ids(&(0..rows * p).map(|r| (r % p) as i32).collect::<Vec<_>>())?;
        self.cache.set_keep(be, &vec![1.0; rows * p], p)?;
        be.embedding_forward(self.cache.input_rows(rows * p, c), &positions, w.gpt.wpe, None, c);
        be.add_assign(self.cache.input_rows(rows * p, c), B::view(&proj));
        decode_embedded(be, &cfg.gpt2, &w.gpt, &mut self.cache, p);
        Ok(())
    }
}

impl<B: Backend> StepModel for CaptionStepper<'_, B> {
    fn step(&mut self, tokens: &[u32], plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        if self.steps == 0 {
            self.prefill()?; // the beam search's one-token prompt stands for the prefix
        } else {
            let pos = (self.model.cfg.prefix_length + self.steps - 1) as i32;
            let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
            let rows = ids.len();
            decode_tokens(self.be, &self.model.cfg.gpt2, &self.model.weights().gpt, &mut self.cache, &ids, &vec![pos; rows], &vec![1.0; rows])?;
        }
        self.steps += 1;
        self.be.beam_candidates(self.cache.logits(), self.vocab(), plan)
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        self.cache.reorder(self.be, parents)
    }
    fn vocab(&self) -> usize {
        self.model.cfg.gpt2.vocab_size
    }
}

/// Beam search over captions of each image embedding (`prefixes`
/// [n, prefix_size]); the best `cfg.num_return` captions per image with
/// their scores, best first.
pub fn caption_beams<B: Backend>(be: &B, model: &ClipCap<B>, prefixes: &[f32], cfg: &BeamConfig) -> Result<Vec<Vec<Hypothesis>>> {
    let size = model.cfg.prefix_size;
    if !prefixes.len().is_multiple_of(size) {
        return invalid!("{} image-embedding values are not a whole number of {size}-wide embeddings", prefixes.len());
    }
    let (n, beams) = (prefixes.len() / size, cfg.num_beams.max(1));
    let cap = model.cfg.prefix_length + cfg.max_new_tokens.max(1);
    if cap > model.cfg.gpt2.n_positions {
        return invalid!("a prefix of {} and {} new tokens exceed n_positions {}", model.cfg.prefix_length, cfg.max_new_tokens, model.cfg.gpt2.n_positions);
    }
    let prefix: Vec<f32> = prefixes.chunks(size).flat_map(|e| std::iter::repeat_n(e, beams).flatten().copied()).collect();
    let cache = KvCache::for_config(be, &model.cfg.gpt2, n * beams, cap, model.cfg.prefix_length)?;
    let mut stepper = CaptionStepper { be, model, cache, prefix, steps: 0 };
    beam_search(&mut stepper, &vec![vec![0]; n], cfg)
}
