//! Reading a Hugging Face `config.json` far enough to know which graph to
//! build; each model parses the rest with serde defaults.

use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelType {
    Gpt2,
    GptNeo,
    T5,
    Clip,
    ClipCap,
    Bert,
    Bleurt,
    Bart,
}

impl ModelType {
    /// The `model_type` string of its config.json.
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Gpt2 => "gpt2",
            ModelType::GptNeo => "gpt_neo",
            ModelType::T5 => "t5",
            ModelType::Clip => "clip",
            ModelType::ClipCap => "clipcap",
            ModelType::Bert => "bert",
            ModelType::Bleurt => "bleurt",
            ModelType::Bart => "bart",
        }
    }

    /// Decoder-only language models (one graph: models/gpt2, models/gpt_neo).
    pub fn is_causal_lm(self) -> bool {
        matches!(self, ModelType::Gpt2 | ModelType::GptNeo)
    }
}

const SUPPORTED: &str = "gpt2, gpt_neo, t5, clip, clipcap, bert, bleurt, bart";

/// Reads `config.json` and returns its parsed JSON and model type.
pub fn read_model_type(path: &Path) -> Result<(serde_json::Value, ModelType)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::config(path, format!("malformed JSON: {e}")))?;
    let mt = json.get("model_type").and_then(|v| v.as_str()).ok_or_else(|| Error::config(path, "no `model_type` field"))?;
    match mt {
        "gpt2" => Ok((json, ModelType::Gpt2)),
        "gpt_neo" => Ok((json, ModelType::GptNeo)),
        "t5" => Ok((json, ModelType::T5)),
        "clip" => Ok((json, ModelType::Clip)),
        "clipcap" => Ok((json, ModelType::ClipCap)),
        "bert" => Ok((json, ModelType::Bert)),
        "bleurt" => Ok((json, ModelType::Bleurt)),
        "bart" => Ok((json, ModelType::Bart)),
        other => Err(Error::config(path, format!("unknown model_type `{other}` (supported: {SUPPORTED})"))),
    }
}

/// The decoder config of a GPT-2 or GPT-Neo `config.json`.
pub fn causal_lm_config(path: &Path, json: &serde_json::Value, model_type: ModelType) -> Result<super::gpt2::Gpt2Config> {
    match model_type {
        ModelType::Gpt2 => super::gpt2::Gpt2Config::from_json(path, json),
        ModelType::GptNeo => super::gpt_neo::config_from_json(path, json),
        other => Err(Error::config(path, format!("model_type `{}` is not a causal language model", other.name()))),
    }
}
