//! Resumable stage progress: `<out>.partial` holds one JSON object per
//! finished work unit, `{"index": i, "value": …}`, rewritten atomically after
//! every batch. A rerun reads it and skips those units; the stage writes its
//! real output once every unit is done and then removes the file.

use crate::io::atomic::write_atomic;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Partial {
    pub path: PathBuf,
    pub done: BTreeMap<usize, serde_json::Value>,
}

impl Partial {
    /// The progress saved next to `out` by an interrupted run (empty if none).
    pub fn load(out: &Path) -> Result<Self> {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let path = out.with_file_name(name);
        let mut done = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let bad = || Error::data(&path, format!("line {}: not saved progress of this stage (delete the file to start over)", i + 1));
                let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
                let index = v.get("index").and_then(|x| x.as_u64()).ok_or_else(bad)?;
                done.insert(index as usize, v.get("value").cloned().unwrap_or(serde_json::Value::Null));
            }
        }
        Ok(Partial { path, done })
    }

    /// Records unit `index` (call [`Partial::save`] after a batch).
    pub fn insert(&mut self, index: usize, value: serde_json::Value) {
        self.done.insert(index, value);
    }

    pub fn save(&self) -> Result<()> {
        let lines: Vec<String> = self.done.iter().map(|(i, v)| serde_json::json!({"index": i, "value": v}).to_string()).collect();
        write_atomic(&self.path, (lines.join("\n") + "\n").as_bytes())
    }

    /// Removes the file once the stage's output is written.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
