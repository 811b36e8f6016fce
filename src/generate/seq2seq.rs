//! Encoder-decoder generation with T5: greedy or sampled decoding (the
//! processors of [`super::sampling`]) and beam search ([`super::beam`]),
//! both from batches of encoder inputs of different lengths (right-padded
//! and masked, as a tokenizer pads them for transformers).

use super::beam::{beam_search, BeamConfig, Hypothesis, StepModel};
use super::candidates::BeamPlan;
use super::{Finish, GenerateConfig, Rows};
use crate::backend::Backend;
use crate::io::tokenizer::pad_right;
use crate::models::t5::{T5Cache, T5};
use crate::rng::Rng;
use crate::{invalid, Result};

/// Encoder inputs right-padded to the longest, with their mask (None when
/// no row is padded).
fn pad_inputs(inputs: &[Vec<u32>], pad: u32) -> Result<(Vec<i32>, Option<Vec<f32>>, usize)> {
    if inputs.is_empty() || inputs.iter().any(Vec::is_empty) {
        return invalid!("every input needs at least one token");
    }
    let (ids, mask, longest) = pad_right(inputs, pad);
    let padded = inputs.iter().any(|x| x.len() < longest);
    Ok((ids, padded.then_some(mask), longest))
}

/// Greedy or sampled decoding; returns each row's new tokens (after the
/// decoder start token) and why it stopped.
pub fn generate_t5<B: Backend>(be: &B, model: &T5<B>, inputs: &[Vec<u32>], cfg: &GenerateConfig) -> Result<Vec<(Vec<u32>, Finish)>> {
    let (ids, mask, _) = pad_inputs(inputs, model.cfg.pad_token_id)?;
    let nb = inputs.len();
    let mut cache = T5Cache::new(be, model, &ids, mask.as_deref(), nb, 1, cfg.max_new_tokens.max(1))?;
    let start = model.cfg.decoder_start_token_id;
    let mut rows = Rows::new(vec![vec![start]; nb]);
    let mut rng = Rng::new(cfg.seed);
    let mut next = vec![start as i32; nb];
    for _ in 0..cfg.max_new_tokens {
        model.decode_step(be, &mut cache, &next)?;
        let plan = rows.plan(&cfg.sampling, &mut rng);
        next = rows.accept(&be.select_tokens(cache.logits(), model.cfg.vocab_size, &plan)?, cfg.eos_token_id, &|_, _| false);
        if rows.all_done() {
            break;
        }
    }
    Ok(rows.finish())
}

/// T5 with its cache, as beam search drives it.
struct T5Stepper<'a, B: Backend> {
    be: &'a B,
    model: &'a T5<B>,
    cache: T5Cache<B>,
}

impl<B: Backend> StepModel for T5Stepper<'_, B> {
    fn step(&mut self, tokens: &[u32], plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        self.model.decode_step(self.be, &mut self.cache, &ids)?;
        self.be.beam_candidates(self.cache.logits(), self.vocab(), plan)
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        self.cache.reorder(self.be, parents)
    }
    fn vocab(&self) -> usize {
        self.model.cfg.vocab_size
    }
}

/// Beam search from each input; returns the best `cfg.num_return`
/// hypotheses per input (tokens after the decoder start token), best first.
pub fn beam_search_t5<B: Backend>(be: &B, model: &T5<B>, inputs: &[Vec<u32>], cfg: &BeamConfig) -> Result<Vec<Vec<Hypothesis>>> {
    let (ids, mask, _) = pad_inputs(inputs, model.cfg.pad_token_id)?;
    let cache = T5Cache::new(be, model, &ids, mask.as_deref(), inputs.len(), cfg.num_beams.max(1), cfg.max_new_tokens.max(1))?;
    let mut stepper = T5Stepper { be, model, cache };
    let prompts = vec![vec![model.cfg.decoder_start_token_id]; inputs.len()];
    beam_search(&mut stepper, &prompts, cfg)
}
