//! CLIP (`CLIPModel`), following transformers' models/clip/modeling_clip.py:
//! a vision tower (patch embedding as one matrix product over unfolded
//! patches, a class embedding, position embeddings, `pre_layrnorm`,
//! pre-LayerNorm blocks, `post_layernorm` on the class token, then
//! `visual_projection`) and a text tower (token + position embeddings,
//! causal blocks with a padding mask, final LayerNorm on the pooled token,
//! `text_projection`), joined by cosine similarities scaled by
//! exp(`logit_scale`) and the symmetric contrastive loss.
//!
//! Text pools at the first `eos_token_id`, or at argmax(input_ids) for
//! configs whose `eos_token_id` is 2 (older checkpoints). `train.rs` holds
//! both towers' forward and backward, `contrastive.rs` the loss.

mod config;
pub mod contrastive;
mod train;
mod weights;

pub use config::{ClipConfig, TextConfig, VisionConfig};
pub use train::{TextActs, VisionActs};
pub use weights::{declare, Weights};

use crate::backend::{Act, Backend};
use crate::nn::block::BlockSpec;
use crate::nn::WeightLayout;
use crate::rng::Rng;
use crate::Result;

crate::flat_model!(Clip, ClipConfig, declare, Weights, "CLIP");

impl<B: Backend> Clip<B> {
    /// Random initialisation after `CLIPPreTrainedModel._init_weights`
    /// (factor 1): embeddings N(0, 0.02), class embedding N(0, Dv^-½), patch
    /// embedding N(0, 0.02), q/k/v and fc2 N(0, D^-½·(2L)^-½), out_proj N(0,
    /// D^-½), fc1 N(0, (2D)^-½), projections N(0, D^-½), zero biases, unit
    /// LayerNorm gains, logit_scale = logit_scale_init_value.
    pub fn init_random(be: &B, cfg: ClipConfig, seed: u64) -> Result<Self> {
        let layout = Self::layout(&cfg);
        let mut rng = Rng::new(seed);
        let mut flat = vec![0f32; layout.total];
        for part in layout.tensors() {
            let n = part.name.as_str();
            let (d, layers) = if n.starts_with("text_model") || n.starts_with("text_projection") {
                (cfg.text_config.hidden_size as f64, cfg.text_config.num_hidden_layers as f64)
            } else {
                (cfg.vision_config.hidden_size as f64, cfg.vision_config.num_hidden_layers as f64)
            };
            let dst = &mut flat[part.offset..part.offset + part.numel()];
            let std = match n {
                "logit_scale" => {
                    dst.fill(cfg.logit_scale_init_value);
                    continue;
                }
                _ if n.contains("norm") && n.ends_with("weight") => {
                    dst.fill(1.0);
                    continue;
                }
                _ if n.ends_with("bias") => continue,
                _ if n.ends_with("class_embedding") => d.powf(-0.5),
                _ if n.contains("embedding") => 0.02,
                _ if n.contains("_proj.weight") && !n.contains("out_proj") || n.contains("fc2") => d.powf(-0.5) * (2.0 * layers).powf(-0.5),
                _ if n.contains("fc1") => (2.0 * d).powf(-0.5),
                _ => d.powf(-0.5),
            };
            rng.fill_normal(dst, std);
        }
        Self::from_flat(be, cfg, flat)
    }

    pub(crate) fn text_spec(&self) -> BlockSpec {
        let t = &self.cfg.text_config;
        BlockSpec { c: t.hidden_size, inner: t.intermediate_size, layout: WeightLayout::OutIn, act: Act::from_hf(&t.hidden_act).expect("validated"), eps: t.layer_norm_eps }
    }

    pub(crate) fn vision_spec(&self) -> BlockSpec {
        let v = &self.cfg.vision_config;
        BlockSpec { c: v.hidden_size, inner: v.intermediate_size, layout: WeightLayout::OutIn, act: Act::from_hf(&v.hidden_act).expect("validated"), eps: v.layer_norm_eps }
    }
}
