//! A model folder's `generation_config.json` (transformers'
//! `GenerationConfig`): the decoding defaults `generate` would use, so that
//! `hhi` decodes a checkpoint the way transformers does unless told
//! otherwise on the command line.

use crate::generate::beam::{BeamConfig, EarlyStopping};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

pub const GENERATION_CONFIG: &str = "generation_config.json";

fn d_one() -> usize {
    1
}
fn d_max_length() -> usize {
    20
}
fn d_one_f() -> f32 {
    1.0
}

#[derive(Clone, Debug, Deserialize)]
pub struct GenerationDefaults {
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    #[serde(default = "d_max_length")]
    pub max_length: usize,
    #[serde(default)]
    pub min_length: usize,
    #[serde(default)]
    pub min_new_tokens: Option<usize>,
    #[serde(default = "d_one")]
    pub num_beams: usize,
    #[serde(default = "d_one_f")]
    pub length_penalty: f32,
    #[serde(default)]
    pub no_repeat_ngram_size: usize,
    #[serde(default)]
    pub early_stopping: Option<serde_json::Value>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

impl Default for GenerationDefaults {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl GenerationDefaults {
    /// Reads `generation_config.json` in `dir`; transformers' defaults where it is absent.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(GENERATION_CONFIG);
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::config(&path, format!("invalid generation config: {e}")))
    }

    /// New tokens allowed after a decoder prompt of `prompt_len` tokens.
    pub fn new_tokens(&self, prompt_len: usize) -> usize {
        self.max_new_tokens.unwrap_or(self.max_length.saturating_sub(prompt_len))
    }

    pub fn early_stopping(&self) -> EarlyStopping {
        match &self.early_stopping {
            Some(serde_json::Value::Bool(true)) => EarlyStopping::True,
            Some(serde_json::Value::String(s)) if s == "never" => EarlyStopping::Never,
            _ => EarlyStopping::False,
        }
    }

    /// The first EOS id, where set.
    pub fn eos(&self) -> Option<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Array(ids)) => ids.first().and_then(|x| x.as_u64()).map(|x| x as u32),
            Some(x) => x.as_u64().map(|x| x as u32),
            None => None,
        }
    }

    /// Beam search as `generate(num_beams=…)` would run it with these defaults.
    pub fn beam(&self, num_beams: usize, prompt_len: usize, model_eos: Option<u32>) -> BeamConfig {
        BeamConfig {
            num_beams,
            max_new_tokens: self.new_tokens(prompt_len),
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping(),
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            min_length: self.min_length,
            min_new_tokens: self.min_new_tokens.unwrap_or(0),
            eos_token_id: self.eos().or(model_eos),
            num_return: 1,
        }
    }
}
