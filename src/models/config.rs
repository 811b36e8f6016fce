//! Reading a Hugging Face `config.json` far enough to know which graph to
//! build; each model parses the rest with serde defaults.

use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelType {
    Gpt2,
}

/// Graphs the pipeline will have but this build does not yet implement.
const PLANNED: &[&str] = &["gpt_neo", "t5", "clip"];

/// Reads `config.json` and returns its parsed JSON and model type.
pub fn read_model_type(path: &Path) -> Result<(serde_json::Value, ModelType)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::config(path, format!("malformed JSON: {e}")))?;
    let mt = json.get("model_type").and_then(|v| v.as_str()).ok_or_else(|| Error::config(path, "no `model_type` field"))?;
    match mt {
        "gpt2" => Ok((json, ModelType::Gpt2)),
        other if PLANNED.contains(&other) => Err(Error::config(path, format!("model_type `{other}` is not supported by this build yet (supported: gpt2)"))),
        other => Err(Error::config(path, format!("unknown model_type `{other}` (supported: gpt2)"))),
    }
}
