//! ClipCap (Mokady et al., 2021; the captioner of the HHI method): a CLIP
//! image embedding is mapped by an MLP (Linear → tanh → Linear) to a prefix
//! of `prefix_length` GPT-2 input embeddings, and GPT-2 continues the prefix
//! with the caption. It follows the official `ClipCaptionModel`
//! (github.com/rmokady/CLIP_prefix_caption, `train.py`, mapping type "mlp"),
//! whose state-dict names it keeps: `clip_project.model.{0,2}.*` for the MLP
//! and `gpt.` + GPT2LMHeadModel's names.
//!
//! `config.json`: `{"model_type": "clipcap", "prefix_length", "prefix_size",
//! "prefix_hidden_size", "gpt2": {a GPT-2 config.json}}`. `train.rs` holds
//! the training graph, `decode.rs` captioning with beam search.

mod decode;
mod train;

pub use decode::caption_beams;
pub use train::{CaptionBatch, ClipCapActs};

use crate::backend::Backend;
use crate::models::gpt2::{self, Gpt2Config};
use crate::rng::Rng;
use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct ClipCapConfig {
    /// Prefix embeddings the image becomes (10 in the method).
    pub prefix_length: usize,
    /// Width of the image embedding (CLIP's projection_dim, 512 for ViT-B/32).
    pub prefix_size: usize,
    /// The MLP's hidden width (ClipCap: prefix_length · n_embd / 2).
    pub prefix_hidden_size: usize,
    pub gpt2: Gpt2Config,
}

impl ClipCapConfig {
    /// ClipCap's default MLP for a GPT-2 of `gpt2`.
    pub fn new(prefix_length: usize, prefix_size: usize, gpt2: Gpt2Config) -> Self {
        ClipCapConfig { prefix_length, prefix_size, prefix_hidden_size: prefix_length * gpt2.n_embd / 2, gpt2 }
    }

    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let field = |name: &str| json.get(name).and_then(|v| v.as_u64()).map(|v| v as usize);
        let gpt2_json = json.get("gpt2").ok_or_else(|| Error::config(path, "no `gpt2` section (the GPT-2 config of the captioner)"))?;
        let gpt2 = Gpt2Config::from_json(path, gpt2_json)?;
        let (Some(prefix_length), Some(prefix_size)) = (field("prefix_length"), field("prefix_size")) else {
            return Err(Error::config(path, "`prefix_length` and `prefix_size` must be positive integers"));
        };
        let mut cfg = ClipCapConfig::new(prefix_length, prefix_size, gpt2);
        if let Some(hidden) = field("prefix_hidden_size") {
            cfg.prefix_hidden_size = hidden;
        }
        if cfg.prefix_length == 0 || cfg.prefix_size == 0 || cfg.prefix_hidden_size == 0 {
            return Err(Error::config(path, "prefix_length, prefix_size and prefix_hidden_size must be positive"));
        }
        if cfg.prefix_length >= cfg.gpt2.n_positions {
            return Err(Error::config(path, format!("prefix_length {} leaves no room in n_positions {}", cfg.prefix_length, cfg.gpt2.n_positions)));
        }
        Ok(cfg)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_type": "clipcap",
            "mapping_type": "mlp",
            "prefix_length": self.prefix_length,
            "prefix_size": self.prefix_size,
            "prefix_hidden_size": self.prefix_hidden_size,
            "gpt2": self.gpt2.to_json(None),
        })
    }

    /// Floats of one sample's prefix (prefix_length · n_embd).
    pub fn prefix_values(&self) -> usize {
        self.prefix_length * self.gpt2.n_embd
    }
}

pub struct Weights<T> {
    pub w1: T, // [hidden, prefix_size] (nn.Linear)
    pub b1: T, // [hidden]
    pub w2: T, // [prefix_length · C, hidden]
    pub b2: T, // [prefix_length · C]
    pub gpt: gpt2::Weights<T>,
}

pub fn declare<T>(cfg: &ClipCapConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (h, p) = (cfg.prefix_hidden_size, cfg.prefix_values());
    let w1 = take("clip_project.model.0.weight".into(), vec![h, cfg.prefix_size]);
    let b1 = take("clip_project.model.0.bias".into(), vec![h]);
    let w2 = take("clip_project.model.2.weight".into(), vec![p, h]);
    let b2 = take("clip_project.model.2.bias".into(), vec![p]);
    let gpt = gpt2::declare(&cfg.gpt2, &mut |name, shape| take(format!("gpt.{name}"), shape));
    Weights { w1, b1, w2, b2, gpt }
}

crate::flat_model!(ClipCap, ClipCapConfig, declare, Weights, "ClipCap");

impl<B: Backend> ClipCap<B> {
    /// The MLP as `nn.Linear` initialises it (uniform ±1/√fan_in for weight
    /// and bias) around the given GPT-2 parameters (flat, in GPT-2's layout).
    pub fn from_gpt2(be: &B, cfg: ClipCapConfig, gpt2_flat: &[f32], seed: u64) -> Result<Self> {
        let layout = Self::layout(&cfg);
        let mut rng = Rng::new(seed);
        let mut flat = vec![0f32; layout.total];
        let gpt_offset = layout.get("clip_project.model.2.bias").map(|s| s.offset + s.numel()).expect("declared");
        for spec in &layout.specs[..4] {
            let fan_in = if spec.name.contains(".0.") { cfg.prefix_size } else { cfg.prefix_hidden_size };
            let bound = 1.0 / (fan_in as f64).sqrt();
            flat[spec.offset..spec.offset + spec.numel()].iter_mut().for_each(|x| *x = ((2.0 * rng.uniform() - 1.0) * bound) as f32);
        }
        if gpt2_flat.len() != layout.total - gpt_offset {
            return Err(Error::Invalid(format!("GPT-2 parameters hold {} values, the captioner's GPT-2 needs {}", gpt2_flat.len(), layout.total - gpt_offset)));
        }
        flat[gpt_offset..].copy_from_slice(gpt2_flat);
        Self::from_flat(be, cfg, flat)
    }
}
