//! Files in and out: safetensors, Hugging Face model folders, tokenizers,
//! datasets, atomic writes (temporary file, then rename), and the cache of
//! fetched pretrained models.

pub mod atomic;
pub mod cache;
pub mod checkpoint;
pub mod dataset;
pub mod generation_config;
pub mod image;
pub mod jsonl;
pub mod safetensors;
pub mod safetensors_file;
pub mod tokenizer;
