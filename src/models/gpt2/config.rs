//! GPT-2 configuration, field for field as `GPT2Config` in transformers
//! (models/gpt2/configuration_gpt2.py), with its defaults for missing fields.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

fn d_vocab() -> usize {
    50257
}
fn d_positions() -> usize {
    1024
}
fn d_embd() -> usize {
    768
}
fn d_layer() -> usize {
    12
}
fn d_head() -> usize {
    12
}
fn d_act() -> String {
    "gelu_new".into()
}
fn d_eps() -> f32 {
    1e-5
}
fn d_true() -> bool {
    true
}
fn d_token() -> Option<u32> {
    Some(50256)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Gpt2Config {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_positions")]
    pub n_positions: usize,
    #[serde(default = "d_embd")]
    pub n_embd: usize,
    #[serde(default = "d_layer")]
    pub n_layer: usize,
    #[serde(default = "d_head")]
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "d_act")]
    pub activation_function: String,
    #[serde(default = "d_eps")]
    pub layer_norm_epsilon: f32,
    #[serde(default = "d_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "d_true")]
    pub tie_word_embeddings: bool,
    #[serde(default = "d_token")]
    pub bos_token_id: Option<u32>,
    #[serde(default = "d_token")]
    pub eos_token_id: Option<u32>,
}

impl Default for Gpt2Config {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl Gpt2Config {
    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let cfg: Gpt2Config = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid GPT-2 config: {e}")))?;
        cfg.validate().map_err(|msg| Error::config(path, msg))?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.n_embd == 0 || self.n_head == 0 || self.n_layer == 0 || self.vocab_size == 0 || self.n_positions == 0 {
            return Err("n_embd, n_head, n_layer, vocab_size and n_positions must be positive".into());
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!("n_embd ({}) is not divisible by n_head ({})", self.n_embd, self.n_head));
        }
        if !matches!(self.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast") {
            return Err(format!("activation_function `{}` is not supported (supported: gelu_new, gelu_pytorch_tanh)", self.activation_function));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Attention score scale of layer `l` (GPT2Attention.scaling).
    pub fn attn_scale(&self, l: usize) -> f32 {
        let mut s = if self.scale_attn_weights { 1.0 / (self.head_dim() as f32).sqrt() } else { 1.0 };
        if self.scale_attn_by_inverse_layer_idx {
            s /= (l + 1) as f32;
        }
        s
    }

    /// The JSON `save_pretrained` would write: the fields above merged over the
    /// original config (unknown fields are kept).
    pub fn to_json(&self, original: Option<&serde_json::Value>) -> serde_json::Value {
        let mut out = original.cloned().unwrap_or_else(|| serde_json::json!({}));
        let ours = serde_json::to_value(self).expect("config serialises");
        if let (Some(o), Some(ours)) = (out.as_object_mut(), ours.as_object()) {
            for (k, v) in ours {
                o.insert(k.clone(), v.clone());
            }
            o.insert("model_type".into(), "gpt2".into());
            o.entry("architectures").or_insert(serde_json::json!(["GPT2LMHeadModel"]));
        }
        out
    }
}
