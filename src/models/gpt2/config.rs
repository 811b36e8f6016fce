//! GPT-2 configuration, field for field as `GPT2Config` in transformers
//! (models/gpt2/configuration_gpt2.py), with its defaults for missing fields.
//! A GPT-Neo config becomes one of these plus [`NeoAttention`] (see
//! models/gpt_neo.rs): the graph is shared.

use crate::backend::Act;
use crate::nn::{Linear, WeightLayout};
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
    /// GPT-Neo's attention, absent for GPT-2.
    #[serde(skip)]
    pub neo: Option<NeoAttention>,
}

/// What GPT-Neo changes in the GPT-2 graph: unscaled scores, q/k/v and the
/// MLP as `nn.Linear` ([out, in]) with no q/k/v bias, and local layers that
/// see only the last `window_size` positions.
#[derive(Clone, Debug, PartialEq)]
pub struct NeoAttention {
    pub window_size: usize,
    /// Per layer: true for a local layer.
    pub local: Vec<bool>,
}

impl Default for Gpt2Config {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl Gpt2Config {
    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let mut cfg: Gpt2Config = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid GPT-2 config: {e}")))?;
        // GPT-2's default ids (50256) mean nothing in a smaller vocabulary: absent, they are unset.
        let vocab = cfg.vocab_size;
        for (key, id) in [("bos_token_id", &mut cfg.bos_token_id), ("eos_token_id", &mut cfg.eos_token_id)] {
            if json.get(key).is_none() && id.is_some_and(|i| i as usize >= vocab) {
                *id = None;
            }
        }
        cfg.validate().map_err(|msg| Error::config(path, msg))?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.n_embd == 0 || self.n_head == 0 || self.n_layer == 0 || self.vocab_size == 0 || self.n_positions == 0 {
            return Err("n_embd, n_head, n_layer, vocab_size and n_positions must be positive".into());
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!("n_embd ({}) is not divisible by n_head ({})", self.n_embd, self.n_head));
        }
        if Act::from_hf(&self.activation_function).is_none() {
            return Err(format!("activation_function `{}` is not supported (supported: {})", self.activation_function, Act::SUPPORTED));
        }
        for (name, id) in [("bos_token_id", self.bos_token_id), ("eos_token_id", self.eos_token_id)] {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return Err(format!("{name} {id} is outside the vocabulary of {} tokens", self.vocab_size));
            }
        }
        if let Some(neo) = &self.neo {
            if neo.local.len() != self.n_layer {
                return Err(format!("attention_types describe {} layers but num_layers is {}", neo.local.len(), self.n_layer));
            }
            if neo.window_size == 0 && neo.local.contains(&true) {
                return Err("window_size must be positive for local attention layers".into());
            }
        }
        Ok(())
    }

    pub fn act(&self) -> Act {
        Act::from_hf(&self.activation_function).expect("validated")
    }

    /// The checkpoint's weight layout: GPT-2 `Conv1D` [in, out], GPT-Neo `nn.Linear` [out, in].
    pub fn weight_layout(&self) -> WeightLayout {
        if self.neo.is_some() {
            WeightLayout::OutIn
        } else {
            WeightLayout::InOut
        }
    }

    /// A linear layer in the checkpoint's layout.
    pub fn linear(&self, inp: usize, out: usize) -> Linear {
        Linear { inp, out, layout: self.weight_layout(), out_stride: out }
    }

    /// Whether the fused q/k/v projection has a bias (GPT-Neo's has none).
    pub fn qkv_bias(&self) -> bool {
        self.neo.is_none()
    }

    /// The local-attention window of layer `l` (0: global).
    pub fn attn_window(&self, l: usize) -> usize {
        match &self.neo {
            Some(neo) if neo.local[l] => neo.window_size,
            _ => 0,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Attention score scale of layer `l` (GPT2Attention.scaling).
    pub fn attn_scale(&self, l: usize) -> f32 {
        if self.neo.is_some() {
            return 1.0;
        }
        let mut s = if self.scale_attn_weights { 1.0 / (self.head_dim() as f32).sqrt() } else { 1.0 };
        if self.scale_attn_by_inverse_layer_idx {
            s /= (l + 1) as f32;
        }
        s
    }

    /// The JSON `save_pretrained` would write: the fields above merged over the
    /// original config (unknown fields are kept).
    pub fn to_json(&self, original: Option<&serde_json::Value>) -> serde_json::Value {
        if let Some(neo) = &self.neo {
            return crate::models::gpt_neo::to_json(self, neo, original);
        }
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
