//! Where fetched pretrained models live: `$HHI_CACHE`, else
//! `$XDG_CACHE_HOME/hhi`, else `~/.cache/hhi` (scripts/fetch-minilm writes
//! there).

use std::path::PathBuf;

pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HHI_CACHE").or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("hhi"))).or_else(|| var("HOME").map(|h| h.join(".cache/hhi"))).unwrap_or_else(|| PathBuf::from(".cache/hhi"))
}

/// The folder scripts/fetch-minilm unpacks sentence-transformers/all-MiniLM-L6-v2 into.
pub fn minilm_dir() -> PathBuf {
    cache_dir().join("all-MiniLM-L6-v2")
}
