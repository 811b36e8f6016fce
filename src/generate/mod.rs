//! Autoregressive generation with the KV cache: batched prompts of different
//! lengths, greedy or sampled decoding (temperature, top-k, top-p), repetition
//! penalty, no-repeat-ngram, EOS and stop strings, seeded and reproducible.

pub mod beam;
pub mod candidates;
pub mod sampling;
pub mod seq2seq;

use crate::backend::Backend;
use crate::models::gpt2::{Gpt2, KvCache};
use crate::rng::Rng;
use crate::{invalid, Result};
pub use sampling::{SamplingConfig, TokenPlan};

#[derive(Clone, Debug)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    pub sampling: SamplingConfig,
    /// Stop a row when it emits this token (the token is kept).
    pub eos_token_id: Option<u32>,
    pub seed: u64,
}

/// Why a row stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Length,
    Eos,
    Stop,
}

/// Generates for every prompt; returns the new tokens of each row and why it
/// stopped. `stop(row, new_tokens)` is asked after every token (stop strings).
pub fn generate<B: Backend>(be: &B, model: &Gpt2<B>, prompts: &[Vec<u32>], cfg: &GenerateConfig, stop: &dyn Fn(usize, &[u32]) -> bool) -> Result<Vec<(Vec<u32>, Finish)>> {
    let nb = prompts.len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if nb == 0 || prompts.iter().any(Vec::is_empty) {
        return invalid!("every prompt needs at least one token");
    }
    let cap = longest + cfg.max_new_tokens;
    let mut cache = KvCache::new(be, model, nb, cap, longest)?;
    // Left-pad: row b's real tokens sit at the end of the prompt block.
    let (mut ids, mut pos, mut keep) = (vec![0i32; nb * longest], vec![0i32; nb * longest], vec![0f32; nb * longest]);
    for (b, p) in prompts.iter().enumerate() {
        let pad = longest - p.len();
        for (j, &tok) in p.iter().enumerate() {
            ids[b * longest + pad + j] = tok as i32;
            pos[b * longest + pad + j] = j as i32;
            keep[b * longest + pad + j] = 1.0;
        }
    }
    let mut rows = Rows::new(prompts.to_vec());
    let mut rng = Rng::new(cfg.seed);
    if cfg.max_new_tokens > 0 {
        model.decode_into(be, &mut cache, &ids, &pos, &keep)?;
    }
    let vocab = model.cfg.vocab_size;
    for step in 0..cfg.max_new_tokens {
        let plan = rows.plan(&cfg.sampling, &mut rng);
        // The backend chooses where the logits are: only ids come back.
        let next = rows.accept(&be.select_tokens(cache.logits(), vocab, &plan)?, cfg.eos_token_id, stop);
        if step + 1 == cfg.max_new_tokens || rows.all_done() {
            break;
        }
        let pos: Vec<i32> = rows.history.iter().map(|h| h.len() as i32 - 1).collect();
        model.decode_into(be, &mut cache, &next, &pos, &vec![1.0; nb])?;
    }
    Ok(rows.finish())
}

/// Per-row decoding state shared by the decoder-only and the seq2seq loops:
/// each row's tokens so far, its new tokens, and why it stopped.
pub(crate) struct Rows {
    pub history: Vec<Vec<u32>>,
    out: Vec<(Vec<u32>, Option<Finish>)>,
}

impl Rows {
    pub fn new(history: Vec<Vec<u32>>) -> Self {
        let out = vec![(Vec::new(), None); history.len()];
        Rows { history, out }
    }

    /// The next step's plan: finished rows are skipped.
    pub fn plan(&self, sampling: &SamplingConfig, rng: &mut Rng) -> TokenPlan {
        let histories: Vec<Option<&[u32]>> = self.history.iter().zip(&self.out).map(|(h, o)| o.1.is_none().then_some(h.as_slice())).collect();
        TokenPlan::new(sampling, &histories, rng)
    }

    /// Appends each running row's chosen token, stops rows at EOS or when
    /// `stop(row, new_tokens)` says so; returns the ids to feed next (0 for
    /// finished rows).
    pub fn accept(&mut self, chosen: &[u32], eos: Option<u32>, stop: &dyn Fn(usize, &[u32]) -> bool) -> Vec<i32> {
        let mut next = vec![0i32; self.out.len()];
        for (b, out) in self.out.iter_mut().enumerate() {
            if out.1.is_some() {
                continue;
            }
            let tok = chosen[b];
            self.history[b].push(tok);
            out.0.push(tok);
            next[b] = tok as i32;
            if eos == Some(tok) {
                out.1 = Some(Finish::Eos);
            } else if stop(b, &out.0) {
                out.1 = Some(Finish::Stop);
            }
        }
        next
    }

    pub fn all_done(&self) -> bool {
        self.out.iter().all(|o| o.1.is_some())
    }

    pub fn finish(self) -> Vec<(Vec<u32>, Finish)> {
        self.out.into_iter().map(|(t, f)| (t, f.unwrap_or(Finish::Length))).collect()
    }
}
