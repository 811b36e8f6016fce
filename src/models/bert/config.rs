//! BERT configuration, as `BertConfig` in transformers
//! (models/bert/configuration_bert.py), with its defaults for missing fields;
//! also BLEURT's (`BleurtConfig` of the bleurt-pytorch package: BERT with an
//! optional narrower embedding projected to the width, a pooler and a
//! regression head).

use crate::backend::Act;
use crate::models::default_fn;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

default_fn! {
    d_vocab: usize = 30522;
    d_hidden: usize = 768;
    d_layers: usize = 12;
    d_heads: usize = 12;
    d_inner: usize = 3072;
    d_act: String = "gelu".into();
    d_positions: usize = 512;
    d_types: usize = 2;
    d_eps: f32 = 1e-12;
    d_position_type: String = "absolute".into();
    d_labels: usize = 1;
}

/// Which checkpoint family: the bare encoder, or BLEURT's scorer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Variant {
    /// `BertModel` (sentence-transformers folders; `bert.`-prefixed names load too).
    #[default]
    Bert,
    /// `BleurtForSequenceClassification`: names under `bleurt.`, then
    /// `pooler` → tanh → `classifier`.
    Bleurt,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_inner")]
    pub intermediate_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_types")]
    pub type_vocab_size: usize,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "d_position_type")]
    pub position_embedding_type: String,
    /// BLEURT: embeddings this wide, projected to `hidden_size` (None: the width).
    #[serde(default)]
    pub embedding_size: Option<usize>,
    /// BLEURT: outputs of the classifier (1: the score).
    #[serde(default = "d_labels")]
    pub num_labels: usize,
    #[serde(skip)]
    pub variant: Variant,
}

impl BertConfig {
    pub fn from_json(path: &Path, json: &serde_json::Value, variant: Variant) -> Result<Self> {
        let mut cfg: BertConfig = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid BERT config: {e}")))?;
        cfg.variant = variant;
        // transformers stores the label count as `id2label`, not `num_labels`.
        if let Some(labels) = json.get("id2label").and_then(|v| v.as_object()).filter(|m| !m.is_empty() && json.get("num_labels").is_none()) {
            cfg.num_labels = labels.len();
        }
        if cfg.embedding_size == Some(0) || cfg.num_labels == 0 {
            return Err(Error::config(path, "embedding_size and num_labels must be positive"));
        }
        if Act::from_hf(&cfg.hidden_act).is_none() {
            return Err(Error::config(path, format!("hidden_act `{}` is not supported (supported: {})", cfg.hidden_act, Act::SUPPORTED)));
        }
        if cfg.position_embedding_type != "absolute" {
            return Err(Error::config(path, format!("position_embedding_type `{}` is not supported (only `absolute`)", cfg.position_embedding_type)));
        }
        let (c, h) = (cfg.hidden_size, cfg.num_attention_heads);
        if c == 0 || h == 0 || !c.is_multiple_of(h) {
            return Err(Error::config(path, format!("hidden_size {c} is not a positive multiple of num_attention_heads {h}")));
        }
        if [cfg.num_hidden_layers, cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size, cfg.intermediate_size].contains(&0) {
            return Err(Error::config(path, "num_hidden_layers, vocab_size, max_position_embeddings, type_vocab_size and intermediate_size must be positive"));
        }
        Ok(cfg)
    }

    /// The width of the embeddings (before any projection).
    pub fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    pub fn act(&self) -> Act {
        Act::from_hf(&self.hidden_act).expect("validated in from_json")
    }
}
