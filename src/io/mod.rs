//! Files in and out: safetensors, Hugging Face model folders, tokenizers,
//! datasets, and atomic writes (temporary file, then rename).

pub mod atomic;
pub mod checkpoint;
pub mod dataset;
pub mod generation_config;
pub mod image;
pub mod jsonl;
pub mod safetensors;
pub mod tokenizer;
