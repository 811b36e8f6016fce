//! Hand-written model graphs. Each follows its `modeling_*.py` in
//! transformers, top to bottom, with an explicit backward.

pub mod clip;
pub mod clipcap;
pub mod config;
pub mod gpt2;
pub mod gpt_neo;
pub mod t5;

pub use config::{causal_lm_config, read_model_type, ModelType};
