//! Training: the optimiser state, learning-rate schedule, batching of token
//! streams, checkpoints and the language-model training loop.

pub mod data;
pub mod lm;
pub mod optimizer;
pub mod state;

pub use optimizer::{clip_grad_norm, default_decay, Optimizer};
