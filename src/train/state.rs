//! The resumable training state: parameters, AdamW moments, step count and
//! the data generator's state, in one safetensors file written atomically, so
//! a kill at any moment leaves either the previous or the new state.

use crate::io::safetensors::{self as st, TensorRef};
use crate::io::safetensors_file::SafetensorsFile;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::path::Path;

pub const TRAIN_STATE: &str = "train_state.safetensors";

pub struct TrainState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub step: u64,
    pub rng: Rng,
}

impl TrainState {
    /// Writes the state, streaming the buffers to the file (no copies).
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.params.len();
        let rng: Vec<i64> = self.rng.state().iter().map(|&x| x as i64).collect();
        let (step, rng) = (Tensor::i64(vec![], vec![self.step as i64]), Tensor::i64(vec![4], rng));
        st::save_refs(
            path,
            vec![
                ("params".into(), TensorRef::f32(vec![n], &self.params)),
                ("adamw.m".into(), TensorRef::f32(vec![n], &self.m)),
                ("adamw.v".into(), TensorRef::f32(vec![n], &self.v)),
                ("step".into(), TensorRef::of(&step)),
                ("rng".into(), TensorRef::of(&rng)),
            ],
        )
    }

    /// Reads a state saved by `save`, each buffer straight into its vector.
    pub fn load(path: &Path, expected_params: usize) -> Result<Self> {
        let mut file = SafetensorsFile::open(path)?;
        let mut floats = |name: &str| -> Result<Vec<f32>> {
            let shape = file.shape(name).ok_or_else(|| Error::MissingTensor { path: path.into(), name: name.into() })?;
            if shape.iter().product::<usize>() != expected_params {
                return Err(Error::Shape { path: path.into(), name: name.into(), expected: vec![expected_params], got: shape.to_vec() });
            }
            let mut values = vec![0f32; expected_params];
            file.read_f32_into(name, &mut values)?;
            Ok(values)
        };
        let (params, m, v) = (floats("params")?, floats("adamw.m")?, floats("adamw.v")?);
        let mut ints = |name: &str, n: usize| -> Result<Vec<i64>> {
            match file.read(name)?.to_i64() {
                Some(v) if v.len() == n => Ok(v),
                _ => Err(Error::Tensor { path: path.into(), name: name.into(), msg: format!("expected {n} integer(s)") }),
            }
        };
        let (step, r) = (ints("step", 1)?[0] as u64, ints("rng", 4)?);
        Ok(TrainState { params, m, v, step, rng: Rng::from_state([r[0] as u64, r[1] as u64, r[2] as u64, r[3] as u64]) })
    }
}
