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
pub use train::{Activations, Batch, Mode};
pub use weights::{declare, Block, Weights};

use crate::backend::Backend;
use crate::nn::{carve, carve_mut, Layout};
use crate::rng::Rng;
use crate::Result;

pub struct Gpt2<B: Backend> {
    pub cfg: Gpt2Config,
    pub layout: Layout,
    /// Every parameter, flat, in `layout` order, in the compute type.
    pub params: B::Buf,
    /// The same in f32 when the backend computes in a narrower type (bf16):
    /// what AdamW updates and checkpoints save (llm.c's master weights).
    /// Inference does not need them: see [`Gpt2::drop_master`].
    pub master: Option<B::Buf>,
}

impl<B: Backend> Gpt2<B> {
    pub fn layout(cfg: &Gpt2Config) -> Layout {
        Layout::record(|take| declare(cfg, take)).0
    }

    /// A model from a flat host buffer in `layout` order.
    pub fn from_flat(be: &B, cfg: Gpt2Config, flat: &[f32]) -> Result<Self> {
        let layout = Self::layout(&cfg);
        assert_eq!(flat.len(), layout.total, "flat parameter buffer does not match the GPT-2 layout");
        let (params, master) = crate::nn::upload_params(be, flat)?;
        Ok(Gpt2 { params, master, cfg, layout })
    }

    /// Frees the f32 master weights (for inference in a narrow type).
    pub fn drop_master(&mut self) {
        self.master = None;
    }

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
                dst.iter_mut().for_each(|x| *x = (rng.normal() * std) as f32);
            }
        }
        Self::from_flat(be, cfg, &flat)
    }

    /// Read-only views of every parameter.
    pub fn weights(&self) -> Weights<B::View<'_>> {
        carve::<B, _>(B::view(&self.params), |take| declare(&self.cfg, take))
    }

    /// Writable views of a gradient buffer laid out like the parameters.
    pub fn grad_views<'a>(&self, grads: B::ViewMut<'a>) -> Weights<B::ViewMut<'a>> {
        carve_mut::<B, _>(grads, |take| declare(&self.cfg, take))
    }

    pub fn num_params(&self) -> usize {
        self.layout.total
    }
}

impl<B: Backend> crate::nn::Parameters<B> for Gpt2<B> {
    fn param_layout(&self) -> &Layout {
        &self.layout
    }
    fn params_mut(&mut self) -> (&mut B::Buf, Option<&mut B::Buf>) {
        (&mut self.params, self.master.as_mut())
    }
    fn full_precision(&self) -> &B::Buf {
        self.master.as_ref().unwrap_or(&self.params)
    }
}
