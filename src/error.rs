//! The one error type of the library. Every variant names what the user has to
//! look at (a file, a tensor, an argument); only the CLI turns errors into
//! messages and exit codes.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors { path: PathBuf, msg: String },

    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },

    #[error("{path}: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    Shape { path: PathBuf, name: String, expected: Vec<usize>, got: Vec<usize> },

    #[error("{path}: tensor `{name}`: {msg}")]
    Tensor { path: PathBuf, name: String, msg: String },

    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },

    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },

    #[error("tokenizer {path}: {msg}")]
    Tokenizer { path: PathBuf, msg: String },

    #[error("{0}")]
    Invalid(String),

    #[error("device: {0}")]
    Device(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    pub fn config(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Config { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
    pub fn data(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Data { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
}

/// Shorthand for `Err(Error::Invalid(..))` with `format!` arguments.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { Err($crate::error::Error::Invalid(format!($($arg)*))) };
}
