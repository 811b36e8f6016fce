//! Token streams for language-model training: documents tokenized and joined
//! with the end-of-text token, split into training and held-out parts, and
//! cut into random windows by a seeded generator (so `--resume` replays the
//! same order).

use crate::models::gpt2::Batch;
use crate::rng::Rng;
use crate::{invalid, Result};

pub struct TokenData {
    pub train: Vec<u32>,
    pub eval: Vec<u32>,
}

impl TokenData {
    /// Joins tokenized documents with `eot` between them and holds out the
    /// last `eval_share` of the stream (when it is long enough).
    pub fn new(docs: Vec<Vec<u32>>, eot: u32, eval_share: f64, seq: usize) -> Result<Self> {
        let mut stream = Vec::new();
        for d in docs {
            stream.extend(d);
            stream.push(eot);
        }
        if stream.len() < seq + 1 {
            return invalid!("the dataset has {} tokens, fewer than one window of --seq {} + 1", stream.len(), seq);
        }
        let held = ((stream.len() as f64 * eval_share) as usize).min(stream.len() - (seq + 1));
        let eval = if held > seq { stream.split_off(stream.len() - held) } else { Vec::new() };
        Ok(TokenData { train: stream, eval })
    }

    /// `b` random windows of `t + 1` tokens from `tokens`: inputs and next-token targets.
    pub fn batch(tokens: &[u32], b: usize, t: usize, rng: &mut Rng) -> Batch {
        let (mut ids, mut targets) = (Vec::with_capacity(b * t), Vec::with_capacity(b * t));
        for _ in 0..b {
            let start = rng.below(tokens.len() - t);
            let w = &tokens[start..start + t + 1];
            ids.extend(w[..t].iter().map(|&x| x as i32));
            targets.extend(w[1..].iter().map(|&x| x as i32));
        }
        Batch { b, t, ids, targets: Some(targets), mask: None }
    }
}
