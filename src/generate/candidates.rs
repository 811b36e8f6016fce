//! One beam-search step's candidates, row by row: a row (one running beam)
//! scores every next token by its log-probability after beam search's
//! logits processors (n-gram bans, the EOS ban before the minimum length)
//! plus the beam's running score, and keeps its `n` best. transformers takes
//! each item's best 2K over all K beams' rows; those are among the rows' own
//! best 2K, so a device backend computes these per row and only they come
//! back (`Backend::beam_candidates`, kernels/sampling.cu's beam_candidates),
//! not the logits. `candidates_on_host` is the reference.

use super::sampling::banned_ngram_tokens;

/// What one beam-search step asks of each row's logits.
#[derive(Clone, Debug)]
pub struct BeamPlan {
    /// Candidates wanted per row (2 × beams, as transformers' top-2K).
    pub n: usize,
    pub rows: Vec<BeamRow>,
}

#[derive(Clone, Debug, Default)]
pub struct BeamRow {
    /// The beam's running score (its summed log-probabilities), added to
    /// every candidate's log-probability.
    pub score: f32,
    /// Tokens set to −∞ after the log-softmax.
    pub banned: Vec<u32>,
}

impl BeamRow {
    /// The row of a beam whose tokens so far are `seq` (`generated` of them
    /// new): its no-repeat-ngram bans, and EOS while `seq` is shorter than
    /// `min_length` or fewer than `min_new_tokens` are new.
    pub fn new(score: f32, seq: &[u32], generated: usize, no_repeat_ngram_size: usize, eos: Option<u32>, min_length: usize, min_new_tokens: usize) -> Self {
        let mut banned = banned_ngram_tokens(seq, no_repeat_ngram_size);
        if let Some(eos) = eos.filter(|_| seq.len() < min_length || generated < min_new_tokens) {
            banned.push(eos);
        }
        BeamRow { score, banned }
    }
}

/// The reference: each row's `plan.n` best (score, token) from `logits`
/// ([rows, vocab] with rows = plan.rows.len()), best first, ties lower token first.
pub fn candidates_on_host(logits: &[f32], vocab: usize, plan: &BeamPlan) -> Vec<Vec<(f32, u32)>> {
    plan.rows
        .iter()
        .zip(logits.chunks(vocab))
        .map(|(row, x)| {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_z = max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
            let mut logp: Vec<f32> = x.iter().map(|&v| v - log_z).collect();
            for &t in &row.banned {
                if let Some(v) = logp.get_mut(t as usize) {
                    *v = f32::NEG_INFINITY;
                }
            }
            best_n(logp.into_iter().map(|v| v + row.score).zip(0..).collect(), plan.n).into_iter().map(|(v, t)| (v, t as u32)).collect()
        })
        .collect()
}

/// The `n` best (value, index) pairs: largest value first (`total_cmp`),
/// ties lower index first — a total order, so the result is unique. A
/// partial selection, then a sort of the `n` (linear in the pairs).
pub fn best_n(mut pairs: Vec<(f32, usize)>, n: usize) -> Vec<(f32, usize)> {
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if n < pairs.len() {
        pairs.select_nth_unstable_by(n, order);
        pairs.truncate(n);
    }
    pairs.sort_unstable_by(order);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn best_n_is_the_head_of_a_full_sort() {
        let mut rng = Rng::new(3);
        // Few distinct values: many ties, broken by index.
        let values: Vec<f32> = (0..5000).map(|_| rng.below(40) as f32 - 20.0).collect();
        let mut sorted: Vec<(f32, usize)> = values.iter().copied().zip(0..).collect();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for n in [0, 1, 7, 64, 4999, 5000, 6000] {
            let pairs = values.iter().copied().zip(0..).collect();
            assert_eq!(best_n(pairs, n), sorted[..n.min(5000)], "n = {n}");
        }
    }

    #[test]
    fn candidates_are_log_probabilities_plus_the_running_score_without_banned_tokens() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, 0.5, -1.0];
        let plan = BeamPlan { n: 3, rows: vec![BeamRow { score: -2.0, banned: vec![2] }, BeamRow { score: 0.0, banned: vec![] }] };
        let got = candidates_on_host(&logits, 3, &plan);
        let z0 = (1f32.exp() + 3f32.exp() + 2f32.exp()).ln();
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert_eq!(got[0].iter().map(|c| c.1).collect::<Vec<_>>(), [1, 0, 2]);
        assert!(close(got[0][0].0, 3.0 - z0 - 2.0) && close(got[0][1].0, 1.0 - z0 - 2.0) && got[0][2].0 == f32::NEG_INFINITY, "{got:?}");
        // Row 1 bans nothing: all three tokens, best first.
        assert_eq!(got[1].iter().map(|c| c.1).collect::<Vec<_>>(), [0, 1, 2]);
        let eos_banned = BeamRow::new(0.0, &[5, 6], 1, 0, Some(9), 3, 0);
        assert_eq!(eos_banned.banned, [9], "EOS banned while the sequence is shorter than min_length");
        assert!(BeamRow::new(0.0, &[5, 6, 7], 2, 0, Some(9), 3, 2).banned.is_empty());
    }
}
