//! Training text: a plain UTF-8 file (one document per non-empty line) or a
//! JSONL file (one object per line with a string field `text`).

use crate::{Error, Result};
use std::path::Path;

pub fn read_documents(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| Error::data(path, format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to())))?;
    let jsonl = path.extension().is_some_and(|e| e == "jsonl" || e == "json");
    let mut docs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::data(path, format!("line {}: malformed JSON: {e}", n + 1)))?;
            let t = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| Error::data(path, format!("line {}: no string field `text`", n + 1)))?;
            docs.push(t.to_string());
        } else {
            docs.push(line.to_string());
        }
    }
    if docs.is_empty() {
        return Err(Error::data(path, "dataset is empty (no non-empty lines)"));
    }
    Ok(docs)
}
