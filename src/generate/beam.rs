//! Beam search as transformers' `generate(num_beams=K)` runs it
//! (generation/utils.py, `_beam_search` and its helpers), step for step and
//! in f32, so that beams and their order match: each step takes the top 2K
//! continuations of all running beams by accumulated log-probability; the
//! best K that did not just finish keep running; those of the top K that
//! finished (EOS or the length limit) enter the K finished slots with their
//! length-penalised score; the search stops when no running beam can beat
//! the finished ones (`early_stopping`), every slot of every batch item is
//! finished (`early_stopping=True`), or the length limit is reached.
//!
//! The model is behind [`StepModel`]: it appends the last token of each row,
//! returns each row's best 2K candidates (`candidates.rs`: on a device
//! backend only those leave the device, not the logits) and reorders its
//! cache when beams are reselected, so T5 and the captioner share this file.

use super::candidates::{best_n, BeamPlan, BeamRow};
use crate::{invalid, Result};

/// transformers' `early_stopping`: `true`, `false` or `"never"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyStopping {
    True,
    False,
    Never,
}

#[derive(Clone, Debug)]
pub struct BeamConfig {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    /// Scores are divided by (generated length)^length_penalty.
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    /// 0 disables the n-gram ban.
    pub no_repeat_ngram_size: usize,
    /// EOS is banned while the sequence (prompt included) is shorter.
    pub min_length: usize,
    /// EOS is banned until this many tokens are generated.
    pub min_new_tokens: usize,
    pub eos_token_id: Option<u32>,
    /// Hypotheses returned per batch item (≤ num_beams), best first.
    pub num_return: usize,
}

/// A model that beam search can drive.
pub trait StepModel {
    /// Appends one token per row (`batch · num_beams` rows) and returns each
    /// row's best `plan.n` next tokens with their scores, best first
    /// (`Backend::beam_candidates` on the next-token logits).
    fn step(&mut self, tokens: &[u32], plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>>;
    /// Row r continues from row `parents[r]`: reorder the cache.
    fn reorder(&mut self, parents: &[usize]) -> Result<()>;
    fn vocab(&self) -> usize;
}

/// A finished (or best unfinished) beam: the tokens after the prompt and its
/// length-penalised score.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    pub score: f32,
    /// False for a slot no finished beam ever filled.
    pub finished: bool,
}

/// transformers' stand-in score for "impossible" (added, not assigned).
const NEG: f32 = -1.0e9;

/// One batch item's search state.
struct Item {
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    finished: Vec<Hypothesis>,
    improvable: bool,
}

/// Runs beam search from `prompts` (one decoder prompt per batch item, all
/// of the same length; the model has already consumed nothing) and returns
/// `num_return` hypotheses per item, best first.
pub fn beam_search(model: &mut impl StepModel, prompts: &[Vec<u32>], cfg: &BeamConfig) -> Result<Vec<Vec<Hypothesis>>> {
    let (k, vocab) = (cfg.num_beams.max(1), model.vocab());
    if prompts.iter().any(Vec::is_empty) {
        return invalid!("beam search needs at least one prompt token per item");
    }
    let prompt_len = prompts.first().map_or(0, Vec::len);
    let max_len = prompt_len + cfg.max_new_tokens;
    let mut items: Vec<Item> = prompts
        .iter()
        .map(|p| Item {
            running: vec![p.clone(); k],
            running_scores: (0..k).map(|i| if i == 0 { 0.0 } else { NEG }).collect(),
            finished: vec![Hypothesis { tokens: p.clone(), score: NEG, finished: false }; k],
            improvable: true,
        })
        .collect();
    // The first step feeds the prompt (its last token; the model holds the rest).
    let mut feed: Vec<u32> = items.iter().flat_map(|it| it.running.iter().map(|s| *s.last().expect("non-empty prompt"))).collect();
    let mut cur_len = prompt_len;
    if cfg.max_new_tokens == 0 {
        return Ok(items.into_iter().map(|it| it.finished.into_iter().take(cfg.num_return.clamp(1, k)).map(|h| Hypothesis { tokens: Vec::new(), ..h }).collect()).collect());
    }
    loop {
        let rows = items.iter().flat_map(|item| {
            item.running
                .iter()
                .zip(&item.running_scores)
                .map(|(seq, &score)| BeamRow::new(score, seq, cur_len - prompt_len, cfg.no_repeat_ngram_size, cfg.eos_token_id, cfg.min_length, cfg.min_new_tokens))
        });
        let per_row = model.step(&feed, &BeamPlan { n: 2 * k, rows: rows.collect() })?;
        if per_row.len() != feed.len() {
            return invalid!("beam search: the model returned candidates for {} rows, not {}", per_row.len(), feed.len());
        }
        let mut all_hit = true;
        let mut parents = Vec::with_capacity(items.len() * k);
        for (bi, item) in items.iter_mut().enumerate() {
            // The item's best 2K over its K rows, as if over all K · vocab
            // scores: index beam · vocab + token orders ties as that would.
            let pooled = (0..k).flat_map(|beam| per_row[bi * k + beam].iter().map(move |&(score, token)| (score, beam * vocab + token as usize)));
            let top = best_n(pooled.collect(), 2 * k);
            let candidates: Vec<(f32, usize, Vec<u32>, bool)> = top
                .iter()
                .map(|&(score, idx)| {
                    let (beam, token) = (idx / vocab, (idx % vocab) as u32);
                    let mut seq = item.running[beam].clone();
                    seq.push(token);
                    let hit = cfg.eos_token_id == Some(token) || cur_len + 1 >= max_len;
                    (score, beam, seq, hit)
                })
                .collect();
            all_hit &= candidates.iter().all(|c| c.3);
            // Running beams: the best K that did not just finish.
            let penalised: Vec<f32> = candidates.iter().map(|c| c.0 + if c.3 { NEG } else { -0.0 }).collect();
            let next = top_k(&penalised, k);
            item.running = next.iter().map(|&(_, c)| candidates[c].2.clone()).collect();
            item.running_scores = next.iter().map(|&(s, _)| s).collect();
            parents.extend(next.iter().map(|&(_, c)| bi * k + candidates[c].1));
            update_finished(item, &candidates, cur_len + 1 - prompt_len, k, cfg);
        }
        cur_len += 1;
        for item in items.iter_mut() {
            item.improvable = item.improvable && still_improvable(item, cur_len - prompt_len, max_len - prompt_len, cfg);
        }
        let any_improvable = items.iter().any(|it| it.improvable);
        let all_full = cfg.early_stopping == EarlyStopping::True && items.iter().all(|it| it.finished.iter().all(|h| h.finished));
        if !any_improvable || all_full || all_hit {
            break;
        }
        model.reorder(&parents)?;
        feed = items.iter().flat_map(|it| it.running.iter().map(|s| *s.last().expect("non-empty"))).collect();
    }
    Ok(items
        .into_iter()
        .map(|it| it.finished.into_iter().take(cfg.num_return.clamp(1, k)).map(|h| Hypothesis { tokens: h.tokens[prompt_len..].to_vec(), ..h }).collect())
        .collect())
}

/// The `n` largest values with their indices, largest first (ties: lower
/// index first).
fn top_k(values: &[f32], n: usize) -> Vec<(f32, usize)> {
    best_n(values.iter().copied().zip(0..).collect(), n)
}

/// transformers' `_update_finished_beams`: candidates among the top K that
/// just finished compete with the finished slots on their length-penalised
/// score; everything else is pushed below by −1e9 steps.
fn update_finished(item: &mut Item, candidates: &[(f32, usize, Vec<u32>, bool)], generated: usize, k: usize, cfg: &BeamConfig) {
    let denom = (generated as f64).powf(cfg.length_penalty as f64) as f32;
    let full = cfg.early_stopping == EarlyStopping::True && item.finished.iter().all(|h| h.finished);
    let mut merged: Vec<Hypothesis> = item.finished.clone();
    for (c, (score, _, seq, hit)) in candidates.iter().enumerate() {
        let just_finished = *hit && c < k;
        let mut s = score / denom;
        s += if full { NEG } else { -0.0 };
        s += if item.improvable { -0.0 } else { NEG };
        s += if just_finished { -0.0 } else { NEG };
        merged.push(Hypothesis { tokens: seq.clone(), score: s, finished: just_finished });
    }
    let scores: Vec<f32> = merged.iter().map(|h| h.score).collect();
    item.finished = top_k(&scores, k).into_iter().map(|(_, i)| merged[i].clone()).collect();
}

/// transformers' `_check_early_stop_heuristic` for one batch item: can the
/// best running beam still beat the worst finished one?
fn still_improvable(item: &Item, generated: usize, max_generated: usize, cfg: &BeamConfig) -> bool {
    let length = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0 { max_generated } else { generated };
    let best = item.running_scores[0] / (length as f64).powf(cfg.length_penalty as f64) as f32;
    let worst = item.finished.iter().map(|h| h.score).fold(f32::INFINITY, f32::min);
    item.finished.iter().any(|h| best > if h.finished { worst } else { NEG })
}
