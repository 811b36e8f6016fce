//! GPT-2 (`GPT2LMHeadModel`), following transformers'
//! models/gpt2/modeling_gpt2.py: token + position embeddings, pre-LN blocks
//! (LayerNorm → fused QKV Conv1D → causal attention scaled by 1/√d → Conv1D
//! projection → residual; LayerNorm → Conv1D → gelu_new → Conv1D → residual),
//! a final LayerNorm and an LM head tied to `wte` unless configured otherwise.
//!
//! `train.rs` holds the training graph (forward with saved activations,
//! backward), `decode.rs` the KV-cache inference graph.

mod config;
mod decode;
mod train;
mod weights;

pub use config::{Gpt2Config, NeoAttention};
pub use decode::KvCache;
pub(crate) use decode::{decode_embedded, decode_tokens};
pub use train::{logits_stride, Activations, Batch, Mode};
pub(crate) use train::{trunk_backward, trunk_forward};
pub use weights::{declare, Block, Weights};

use crate::backend::Backend;
use crate::rng::Rng;
use crate::Result;

crate::flat_model!(Gpt2, Gpt2Config, declare, Weights, "GPT-2");

impl<B: Backend> Gpt2<B> {
    /// Random initialisation as `GPT2PreTrainedModel._init_weights`: N(0, 0.02)
    /// for weights and embeddings, N(0, 0.02/√(2·n_layer)) for the residual
    /// projections (GPT-2 only; GPT-Neo keeps 0.02), zero biases, unit
    /// LayerNorm gains.
    pub fn init_random(be: &B, cfg: Gpt2Config, seed: u64) -> Result<Self> {
        let layout = Self::layout(&cfg);
        let mut rng = Rng::new(seed);
        let mut flat = vec![0f32; layout.total];
        let proj_std = 0.02 / (2.0 * cfg.n_layer as f64).sqrt();
        for s in &layout.specs {
            let dst = &mut flat[s.offset..s.offset + s.numel()];
            let std = if s.name.ends_with("c_proj.weight") && cfg.neo.is_none() { proj_std } else { 0.02 };
            if s.name.contains(".ln_") {
                dst.fill(if s.name.ends_with("weight") { 1.0 } else { 0.0 });
            } else if s.shape.len() == 2 {
                rng.fill_normal(dst, std);
            }
        }
        Self::from_flat(be, cfg, flat)
    }
}
