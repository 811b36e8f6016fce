//! T5 (`T5ForConditionalGeneration`), following transformers'
//! models/t5/modeling_t5.py: shared token embeddings (no position
//! embeddings), an encoder and a decoder of pre-norm blocks with RMS norms
//! (f32 statistics, no mean, no bias), attention without score scaling plus
//! a relative position bias computed by block 0 of each stack and shared by
//! the others (bidirectional buckets in the encoder, causal in the decoder),
//! cross-attention in the decoder, a `relu` (v1.0) or gated-GELU (v1.1)
//! feed-forward, and the head on the decoder output, scaled by d_model^-0.5
//! for tied embeddings.
//!
//! `train.rs` holds the training graph (forward with saved activations, hand-
//! written backward), `decode.rs` the encoder-decoder KV cache for generation.

pub mod buckets;
mod config;
mod decode;
mod train;
mod weights;

pub use config::T5Config;
pub use decode::T5Cache;
pub use train::{Activations, Seq2SeqBatch};
pub use weights::{declare, Weights};

use crate::backend::Backend;
use crate::rng::Rng;
use crate::Result;

crate::flat_model!(T5, T5Config, declare, Weights, "T5");

impl<B: Backend> T5<B> {
    /// Random initialisation as `T5PreTrainedModel._init_weights` (factor 1):
    /// embeddings N(0, 1); q N(0, (D·d_kv)^-½); k, v, wi, relative bias and an
    /// own head N(0, D^-½); o N(0, (H·d_kv)^-½); wo N(0, F^-½); norms 1.
    pub fn init_random(be: &B, cfg: T5Config, seed: u64) -> Result<Self> {
        let layout = Self::layout(&cfg);
        let mut rng = Rng::new(seed);
        let mut flat = vec![0f32; layout.total];
        let (d, f) = (cfg.d_model as f64, cfg.d_ff as f64);
        for part in layout.tensors() {
            let n = &part.name;
            let std = if n.ends_with("layer_norm.weight") {
                flat[part.offset..part.offset + part.numel()].fill(1.0);
                continue;
            } else if n == "shared.weight" {
                1.0
            } else if n.ends_with(".q.weight") {
                (d * cfg.d_kv as f64).powf(-0.5)
            } else if n.ends_with(".o.weight") {
                (cfg.inner() as f64).powf(-0.5)
            } else if n.ends_with(".wo.weight") {
                f.powf(-0.5)
            } else {
                d.powf(-0.5)
            };
            rng.fill_normal(&mut flat[part.offset..part.offset + part.numel()], std);
        }
        Self::from_flat(be, cfg, flat)
    }
}
