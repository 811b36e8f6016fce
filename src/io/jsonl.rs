//! JSONL records of the pipeline's stage files: one JSON object per
//! non-empty line, each error naming the file and the line.

use crate::{Error, Result};
use std::path::Path;

pub type Object = serde_json::Map<String, serde_json::Value>;

/// Every record with its line number; a file without records is an error.
pub fn read_objects(path: &Path) -> Result<Vec<(usize, Object)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(o)) => rows.push((i + 1, o)),
            Ok(_) => return Err(Error::data(path, format!("line {}: expected a JSON object", i + 1))),
            Err(e) => return Err(Error::data(path, format!("line {}: not JSON: {e}", i + 1))),
        }
    }
    if rows.is_empty() {
        return Err(Error::data(path, "no records (the file is empty)"));
    }
    Ok(rows)
}

/// The string field `key` of the record on `line`.
pub fn string_field(path: &Path, line: usize, o: &Object, key: &str) -> Result<String> {
    o.get(key).and_then(|v| v.as_str()).map(str::to_string).ok_or_else(|| Error::data(path, format!("line {line}: no string field `{key}`")))
}
