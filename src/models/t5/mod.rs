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
use crate::nn::{carve, carve_mut, upload_params, Layout};
use crate::rng::Rng;
use crate::Result;

pub struct T5<B: Backend> {
    pub cfg: T5Config,
    pub layout: Layout,
    /// Every parameter, flat, in `layout` order, in the compute type.
    pub params: B::Buf,
    /// f32 master weights when the compute type is narrower (see `Gpt2::master`).
    pub master: Option<B::Buf>,
}

impl<B: Backend> T5<B> {
    pub fn layout(cfg: &T5Config) -> Layout {
        Layout::record(|take| declare(cfg, take)).0
    }

    /// A model from a flat host buffer in `layout` order.
    pub fn from_flat(be: &B, cfg: T5Config, flat: &[f32]) -> Result<Self> {
        let layout = Self::layout(&cfg);
        assert_eq!(flat.len(), layout.total, "flat parameter buffer does not match the T5 layout");
        let (params, master) = upload_params(be, flat)?;
        Ok(T5 { cfg, layout, params, master })
    }

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
            flat[part.offset..part.offset + part.numel()].iter_mut().for_each(|x| *x = (rng.normal() * std) as f32);
        }
        Self::from_flat(be, cfg, &flat)
    }

    pub fn drop_master(&mut self) {
        self.master = None;
    }

    pub fn weights(&self) -> Weights<B::View<'_>> {
        carve::<B, _>(B::view(&self.params), |take| declare(&self.cfg, take))
    }

    pub fn grad_views<'a>(&self, grads: B::ViewMut<'a>) -> Weights<B::ViewMut<'a>> {
        carve_mut::<B, _>(grads, |take| declare(&self.cfg, take))
    }

    pub fn num_params(&self) -> usize {
        self.layout.total
    }
}

impl<B: Backend> crate::nn::Parameters<B> for T5<B> {
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
