//! BART configuration, as `BartConfig` in transformers
//! (models/bart/configuration_bart.py), with its defaults for missing fields.

use crate::backend::Act;
use crate::models::default_fn;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

default_fn! {
    d_vocab: usize = 50265;
    d_positions: usize = 1024;
    d_layers: usize = 12;
    d_ffn: usize = 4096;
    d_heads: usize = 16;
    d_act: String = "gelu".into();
    d_model: usize = 1024;
    d_pad: u32 = 1;
    d_eos: u32 = 2;
}

#[derive(Clone, Debug, Deserialize)]
pub struct BartConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_layers")]
    pub encoder_layers: usize,
    #[serde(default = "d_ffn")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "d_heads")]
    pub encoder_attention_heads: usize,
    #[serde(default = "d_layers")]
    pub decoder_layers: usize,
    #[serde(default = "d_ffn")]
    pub decoder_ffn_dim: usize,
    #[serde(default = "d_heads")]
    pub decoder_attention_heads: usize,
    #[serde(default = "d_act")]
    pub activation_function: String,
    #[serde(default = "d_model")]
    pub d_model: usize,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "d_pad")]
    pub pad_token_id: u32,
    #[serde(default = "d_eos")]
    pub eos_token_id: u32,
    #[serde(default = "d_eos")]
    pub decoder_start_token_id: u32,
    /// Classes of the classification head (from `id2label`; 3 for MNLI).
    #[serde(skip)]
    pub labels: Vec<String>,
}

impl BartConfig {
    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let mut cfg: BartConfig = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid BART config: {e}")))?;
        if Act::from_hf(&cfg.activation_function).is_none() {
            return Err(Error::config(path, format!("activation_function `{}` is not supported (supported: {})", cfg.activation_function, Act::SUPPORTED)));
        }
        for (what, heads) in [("encoder", cfg.encoder_attention_heads), ("decoder", cfg.decoder_attention_heads)] {
            if heads == 0 || cfg.d_model == 0 || !cfg.d_model.is_multiple_of(heads) {
                return Err(Error::config(path, format!("d_model {} is not a positive multiple of {what}_attention_heads {heads}", cfg.d_model)));
            }
        }
        if [cfg.encoder_layers, cfg.decoder_layers, cfg.vocab_size, cfg.max_position_embeddings, cfg.encoder_ffn_dim, cfg.decoder_ffn_dim].contains(&0) {
            return Err(Error::config(path, "layer counts, vocab_size, max_position_embeddings and FFN widths must be positive"));
        }
        // `id2label` {"0": "contradiction", …} in index order; 3 unnamed classes without it.
        let mut labels: Vec<(usize, String)> =
            json.get("id2label").and_then(|v| v.as_object()).map(|m| m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string()))).collect()).unwrap_or_default();
        labels.sort();
        cfg.labels = if labels.is_empty() { (0..3).map(|i| format!("LABEL_{i}")).collect() } else { labels.into_iter().map(|(_, l)| l).collect() };
        Ok(cfg)
    }

    pub fn act(&self) -> Act {
        Act::from_hf(&self.activation_function).expect("validated in from_json")
    }

    /// The class whose name contains `word` (case-insensitive), e.g. "entail".
    pub fn label_index(&self, word: &str) -> Option<usize> {
        self.labels.iter().position(|l| l.to_lowercase().contains(word))
    }
}
