//! The parity harness: recompute what `transformers` stored in a fixture
//! folder (format: PARITY.md in the shared folder) and report the error of
//! every group found: forward, loss, backward, optimizer, generation, tokens.

mod bart;
mod bert;
mod clip;
mod clipcap;
mod common;
mod gpt2;
mod report;
mod t5;
pub mod tolerance;

pub use report::{Check, Report};

use crate::backend::Backend;
use crate::io::checkpoint::{ModelDir, TOKENIZER};
use crate::io::safetensors::{self as st, TensorMap};
use crate::io::tokenizer::Tokenizer;
use crate::models::ModelType;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub const REFERENCE: &str = "reference.safetensors";

/// The fixture's reference tensors, with errors that name the file.
pub struct Reference {
    pub path: PathBuf,
    pub tensors: TensorMap,
}

impl Reference {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    pub fn require(&self, name: &str) -> Result<&Tensor> {
        self.get(name).ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: name.into() })
    }
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        let t = self.require(name)?;
        t.to_i64().ok_or_else(|| Error::Tensor { path: self.path.clone(), name: name.into(), msg: format!("expected an integer tensor, found {}", t.dtype()) })
    }
    pub fn scalar(&self, name: &str) -> Result<f64> {
        let t = self.require(name)?;
        match t.to_f32().as_slice() {
            [x] => Ok(*x as f64),
            _ => Err(Error::Tensor { path: self.path.clone(), name: name.into(), msg: format!("expected a scalar, found shape {:?}", t.shape) }),
        }
    }
    /// The `{group}.{parameter}` tensor (e.g. `grad.transformer.wte.weight`),
    /// also under the parameter's bare name; returns the key and the values.
    pub fn per_parameter(&self, group: &str, param: &str) -> Result<(String, Vec<f32>)> {
        let key = format!("{group}.{param}");
        let bare = param.strip_prefix("transformer.").map(|b| format!("{group}.{b}"));
        let t = self.get(&key).or_else(|| bare.and_then(|b| self.get(&b))).ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: key.clone() })?;
        Ok((key, t.to_f32()))
    }

    /// Shape `[b, t]` of a 2-D tensor.
    pub fn dims2(&self, name: &str) -> Result<(usize, usize)> {
        match self.require(name)?.shape.as_slice() {
            &[b, t] => Ok((b, t)),
            s => Err(Error::Tensor { path: self.path.clone(), name: name.into(), msg: format!("expected 2 dimensions, found shape {s:?}") }),
        }
    }
}

/// Runs every check the fixture in `dir` supports on backend `be`.
pub fn run<B: Backend>(be: &B, dir: &Path, dtype: DType) -> Result<Report> {
    let model_dir = ModelDir::open(dir)?;
    let path = dir.join(REFERENCE);
    let reference = Reference { tensors: st::load(&path)?, path };
    let tol = tolerance::for_dtype(dtype);
    let mut report = Report::default();
    match model_dir.model_type {
        ModelType::Gpt2 | ModelType::GptNeo => gpt2::check(be, &model_dir, &reference, &tol, &mut report)?,
        ModelType::T5 => t5::check(be, &model_dir, &reference, &tol, &mut report)?,
        ModelType::Clip => clip::check(be, &model_dir, &reference, &tol, &mut report)?,
        ModelType::ClipCap => clipcap::check(be, &model_dir, &reference, &tol, &mut report)?,
        ModelType::Bart => bart::check(be, &model_dir, &reference, &tol, &mut report)?,
        ModelType::Bert | ModelType::Bleurt => bert::check(be, &model_dir, &reference, &tol, &mut report)?,
    }
    check_tokens(dir, &reference, &mut report)?;
    Ok(report)
}

/// `tokens.text` through `tokenizer.json` must give `tokens.ids` exactly.
fn check_tokens(dir: &Path, r: &Reference, report: &mut Report) -> Result<()> {
    if !r.has("tokens.text") || !dir.join(TOKENIZER).exists() {
        return Ok(());
    }
    let bytes: Vec<u8> = r.ints("tokens.text")?.iter().map(|&b| b as u8).collect();
    let text = String::from_utf8(bytes).map_err(|_| Error::Tensor { path: r.path.clone(), name: "tokens.text".into(), msg: "not valid UTF-8".into() })?;
    let ids: Vec<i64> = Tokenizer::load(&dir.join(TOKENIZER))?.encode(&text)?.iter().map(|&x| x as i64).collect();
    report.ids("tokens", "tokens.ids", &ids, &r.ints("tokens.ids")?, 1.0);
    Ok(())
}
