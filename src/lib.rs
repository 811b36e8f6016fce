//! hhi: learning human-human interactions in images from weak textual supervision
//! (Alper & Averbuch-Elor, ICCV 2023), on a compute engine written from scratch.
//!
//! The crate is layered bottom-up: `tensor` (host tensors and dtypes), `backend`
//! (the op set, CPU reference implementation), `nn` (flat parameter layouts and
//! layer helpers), `models` (hand-written graphs with forward and backward),
//! `io` (checkpoints, tokenizers, datasets), `train`, `generate` and `parity`.
//! See DESIGN.md in the shared folder for the architecture.

pub mod backend;
pub mod error;
pub mod eval;
pub mod generate;
pub mod io;
pub mod models;
pub mod nn;
pub mod parity;
pub mod pipeline;
pub mod rng;
pub mod tensor;
pub mod train;
pub mod world;

pub use error::{Error, Result};

// Tensor data is read from and written to files (safetensors) and devices in
// place, in the host's byte order, which must be the formats' little-endian.
#[cfg(target_endian = "big")]
compile_error!("hhi assumes a little-endian host");
