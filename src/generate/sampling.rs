//! Choosing the next token from one row of logits, with the logits
//! processors of transformers' `generate` in its order: repetition penalty,
//! no-repeat-ngram, then (when sampling) temperature, top-k and top-p.
//!
//! A decoding step is described by a [`TokenPlan`] (what each row has seen,
//! which tokens it may not produce, its random number), so that a backend
//! can choose the tokens where the logits are (`Backend::select_tokens`:
//! only ids come back from a GPU); [`select_on_host`] is the reference.

use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct SamplingConfig {
    /// Greedy (argmax) when false.
    pub do_sample: bool,
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    /// 1.0 disables top-p.
    pub top_p: f32,
    /// 1.0 disables the penalty.
    pub repetition_penalty: f32,
    /// 0 disables the n-gram ban.
    pub no_repeat_ngram_size: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig { do_sample: false, temperature: 1.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, no_repeat_ngram_size: 0 }
    }
}

/// One row's part of a decoding step.
#[derive(Clone, Debug, Default)]
pub struct RowPlan {
    /// Finished rows are skipped (their token is 0).
    pub active: bool,
    /// Distinct tokens seen so far, for the repetition penalty (empty when off).
    pub seen: Vec<u32>,
    /// Tokens that would repeat an n-gram (no-repeat-ngram).
    pub banned: Vec<u32>,
    /// The uniform number in [0, 1) that picks a sampled token.
    pub uniform: f32,
}

/// A decoding step for every row of a batch.
#[derive(Clone, Debug)]
pub struct TokenPlan {
    pub cfg: SamplingConfig,
    pub rows: Vec<RowPlan>,
}

impl TokenPlan {
    /// The plan for rows with these histories (`None`: finished). Draws one
    /// uniform per active row, in row order, only when sampling.
    pub fn new(cfg: &SamplingConfig, histories: &[Option<&[u32]>], rng: &mut Rng) -> Self {
        let rows = histories
            .iter()
            .map(|h| match h {
                None => RowPlan::default(),
                Some(history) => {
                    let mut seen = if cfg.repetition_penalty != 1.0 { history.to_vec() } else { Vec::new() };
                    seen.sort_unstable();
                    seen.dedup();
                    let banned = if cfg.no_repeat_ngram_size > 0 { banned_ngram_tokens(history, cfg.no_repeat_ngram_size) } else { Vec::new() };
                    let uniform = if cfg.do_sample { rng.uniform() as f32 } else { 0.0 };
                    RowPlan { active: true, seen, banned, uniform }
                }
            })
            .collect();
        TokenPlan { cfg: cfg.clone(), rows }
    }
}

/// The reference: each active row of `logits` ([rows, vocab], processed in
/// place) gets its token; inactive rows get 0.
pub fn select_on_host(logits: &mut [f32], vocab: usize, plan: &TokenPlan) -> Vec<u32> {
    plan.rows.iter().enumerate().map(|(r, row)| if row.active { next_token(&mut logits[r * vocab..(r + 1) * vocab], row, &plan.cfg) } else { 0 }).collect()
}

/// Applies the processors to `logits` (in place) and picks a token.
pub fn next_token(logits: &mut [f32], row: &RowPlan, cfg: &SamplingConfig) -> u32 {
    for &t in &row.seen {
        let x = &mut logits[t as usize];
        *x = if *x < 0.0 { *x * cfg.repetition_penalty } else { *x / cfg.repetition_penalty };
    }
    for &t in &row.banned {
        logits[t as usize] = f32::NEG_INFINITY;
    }
    if !cfg.do_sample {
        return argmax(logits) as u32;
    }
    if cfg.temperature != 1.0 {
        logits.iter_mut().for_each(|x| *x /= cfg.temperature);
    }
    if cfg.top_k > 0 && cfg.top_k < logits.len() {
        top_k(logits, cfg.top_k);
    }
    if cfg.top_p < 1.0 {
        top_p(logits, cfg.top_p);
    }
    sample(logits, row.uniform) as u32
}

/// The first index of the largest value, as `torch.argmax`.
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Tokens that would repeat an n-gram already in `history`.
pub fn banned_ngram_tokens(history: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || history.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &history[history.len() + 1 - n..];
    history.windows(n).filter(|w| &w[..n - 1] == prefix).map(|w| w[n - 1]).collect()
}

/// Keeps the `k` largest logits (and ties with the k-th), as TopKLogitsWarper.
fn top_k(logits: &mut [f32], k: usize) {
    let mut sorted = logits.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    logits.iter_mut().filter(|x| **x < kth).for_each(|x| *x = f32::NEG_INFINITY);
}

/// Keeps the smallest set of tokens whose probability reaches `p`, as
/// TopPLogitsWarper (ascending sort; drop while the cumulative mass ≤ 1 − p).
fn top_p(logits: &mut [f32], p: f32) {
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let mut cum = 0.0f32;
    for (rank, &i) in order.iter().enumerate() {
        cum += probs[i];
        if cum > 1.0 - p || rank + 1 == order.len() {
            break;
        }
        logits[i] = f32::NEG_INFINITY;
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// The first token whose cumulative probability exceeds `u`.
fn sample(logits: &[f32], u: f32) -> usize {
    let probs = softmax(logits);
    let mut cum = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        cum += p;
        if u < cum {
            return i;
        }
    }
    argmax(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_ban_finds_continuations() {
        // history "1 2 3 1 2": a 3-gram ban forbids 3 after "1 2".
        assert_eq!(banned_ngram_tokens(&[1, 2, 3, 1, 2], 3), vec![3]);
        assert!(banned_ngram_tokens(&[1, 2], 3).is_empty());
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let mut l = vec![(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        top_p(&mut l, 0.7);
        assert!(l[0].is_finite() && l[1].is_finite() && l[2] == f32::NEG_INFINITY);
    }

    #[test]
    fn top_k_keeps_k() {
        let mut l = vec![1.0, 3.0, 2.0, 0.0];
        top_k(&mut l, 2);
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 2);
        assert!(l[1].is_finite() && l[2].is_finite());
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        // CTRL's penalty: seen tokens' logits are divided by p when positive, multiplied when negative.
        let cfg = SamplingConfig { repetition_penalty: 2.0, ..Default::default() };
        let plan = TokenPlan::new(&cfg, &[Some(&[0, 1, 1])], &mut Rng::new(0));
        assert_eq!(plan.rows[0].seen, vec![0, 1]);
        let mut l = vec![2.0, -2.0, 1.0];
        next_token(&mut l, &plan.rows[0], &cfg);
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }
}
