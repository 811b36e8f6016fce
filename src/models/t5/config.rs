//! T5 configuration, as `T5Config` in transformers
//! (models/t5/configuration_t5.py), with its defaults for missing fields.
//!
//! Two fields need care. `feed_forward_proj` is `ACT` or `gated-ACT`
//! (`gated-gelu` means gelu_new: T5 v1.1). And the decoder output is scaled
//! by d_model^-0.5 before the head only for tied embeddings: transformers 5
//! always ties the head to `shared` and records the scaling as
//! `scale_decoder_outputs` (false where the original config said
//! `tie_word_embeddings: false`); checkpoints saved by older versions may
//! instead carry their own `lm_head.weight`, which is then used.

use crate::backend::Act;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

fn d_vocab() -> usize {
    32128
}
fn d_model() -> usize {
    512
}
fn d_kv() -> usize {
    64
}
fn d_ff() -> usize {
    2048
}
fn d_layers() -> usize {
    6
}
fn d_heads() -> usize {
    8
}
fn d_buckets() -> usize {
    32
}
fn d_distance() -> usize {
    128
}
fn d_eps() -> f32 {
    1e-6
}
fn d_proj() -> String {
    "relu".into()
}
fn d_pad() -> Option<u32> {
    Some(0)
}
fn d_eos() -> Option<serde_json::Value> {
    Some(1.into())
}

#[derive(Clone, Debug, Deserialize)]
struct T5Json {
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_model")]
    d_model: usize,
    #[serde(default = "d_kv")]
    d_kv: usize,
    #[serde(default = "d_ff")]
    d_ff: usize,
    #[serde(default = "d_layers")]
    num_layers: usize,
    #[serde(default)]
    num_decoder_layers: Option<usize>,
    #[serde(default = "d_heads")]
    num_heads: usize,
    #[serde(default = "d_buckets")]
    relative_attention_num_buckets: usize,
    #[serde(default = "d_distance")]
    relative_attention_max_distance: usize,
    #[serde(default = "d_eps")]
    layer_norm_epsilon: f32,
    #[serde(default = "d_proj")]
    feed_forward_proj: String,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    scale_decoder_outputs: Option<bool>,
    #[serde(default = "d_pad")]
    pad_token_id: Option<u32>,
    #[serde(default = "d_eos")]
    eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    decoder_start_token_id: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    pub num_decoder_layers: usize,
    pub num_heads: usize,
    pub num_buckets: usize,
    pub max_distance: usize,
    pub eps: f32,
    /// The feed-forward activation and whether it is gated (`gated-ACT`).
    pub act: Act,
    pub gated: bool,
    /// Multiply the decoder output by d_model^-0.5 before the head.
    pub scale_decoder_outputs: bool,
    /// The checkpoint has its own `lm_head.weight` (else the head is `shared`).
    pub separate_head: bool,
    pub pad_token_id: u32,
    pub eos_token_id: Option<u32>,
    pub decoder_start_token_id: u32,
    /// The original JSON, written back on save.
    pub json: serde_json::Value,
}

impl T5Config {
    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let j: T5Json = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid T5 config: {e}")))?;
        let parts: Vec<&str> = j.feed_forward_proj.split('-').collect();
        let (gated, act_name) = match parts.as_slice() {
            [act] => (false, *act),
            ["gated", act] => (true, *act),
            _ => return Err(Error::config(path, format!("feed_forward_proj `{}` is not `ACT` or `gated-ACT`", j.feed_forward_proj))),
        };
        // transformers: `gated-gelu` (T5 v1.1) is the tanh GELU.
        let act_name = if j.feed_forward_proj == "gated-gelu" { "gelu_new" } else { act_name };
        let act = Act::from_hf(act_name)
            .ok_or_else(|| Error::config(path, format!("feed_forward_proj `{}`: unknown activation `{act_name}` (supported: {})", j.feed_forward_proj, Act::SUPPORTED)))?;
        let eos = match &j.eos_token_id {
            Some(serde_json::Value::Array(ids)) => ids.first().and_then(|x| x.as_u64()).map(|x| x as u32),
            Some(x) => x.as_u64().map(|x| x as u32),
            None => None,
        };
        let pad = j.pad_token_id.unwrap_or(0);
        let cfg = T5Config {
            vocab_size: j.vocab_size,
            d_model: j.d_model,
            d_kv: j.d_kv,
            d_ff: j.d_ff,
            num_layers: j.num_layers,
            num_decoder_layers: j.num_decoder_layers.unwrap_or(j.num_layers),
            num_heads: j.num_heads,
            num_buckets: j.relative_attention_num_buckets,
            max_distance: j.relative_attention_max_distance,
            eps: j.layer_norm_epsilon,
            act,
            gated,
            scale_decoder_outputs: j.scale_decoder_outputs.unwrap_or(j.tie_word_embeddings.unwrap_or(true)),
            separate_head: false,
            pad_token_id: pad,
            eos_token_id: eos,
            decoder_start_token_id: j.decoder_start_token_id.unwrap_or(pad),
            json: json.clone(),
        };
        if [cfg.vocab_size, cfg.d_model, cfg.d_kv, cfg.d_ff, cfg.num_layers, cfg.num_decoder_layers, cfg.num_heads, cfg.num_buckets].contains(&0) {
            return Err(Error::config(path, "vocab_size, d_model, d_kv, d_ff, num_layers, num_decoder_layers, num_heads and relative_attention_num_buckets must be positive"));
        }
        if cfg.max_distance < 2 * (cfg.num_buckets / 4).max(1) {
            return Err(Error::config(path, "relative_attention_max_distance must exceed half the exact buckets"));
        }
        Ok(cfg)
    }

    /// Width of the attention projections (heads · d_kv).
    pub fn inner(&self) -> usize {
        self.num_heads * self.d_kv
    }
}
