//! Reading and writing safetensors files as maps of host tensors. Every
//! failure names the file (and the tensor where there is one).

use super::atomic::write_atomic;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub type TensorMap = BTreeMap<String, Tensor>;

pub fn load(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes)
}

pub fn parse(path: &Path, bytes: &[u8]) -> Result<TensorMap> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::Safetensors { path: path.into(), msg: e.to_string() })?;
    let mut out = TensorMap::new();
    for (name, view) in st.tensors() {
        let dtype =
            DType::from_safetensors(view.dtype()).ok_or_else(|| Error::Tensor { path: path.into(), name: name.clone(), msg: format!("unsupported dtype {:?}", view.dtype()) })?;
        let t = Tensor::from_le_bytes(dtype, view.shape().to_vec(), view.data()).ok_or_else(|| Error::Tensor {
            path: path.into(),
            name: name.clone(),
            msg: "data length does not match shape".into(),
        })?;
        out.insert(name, t);
    }
    Ok(out)
}

struct StView<'a>(&'a Tensor, Vec<u8>);

impl safetensors::View for StView<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.0.dtype().to_safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.1)
    }
    fn data_len(&self) -> usize {
        self.1.len()
    }
}

/// Writes `tensors` atomically, with the `{"format": "pt"}` metadata that
/// transformers expects.
pub fn save(path: &Path, tensors: &TensorMap) -> Result<()> {
    let views: Vec<(String, StView)> = tensors.iter().map(|(k, t)| (k.clone(), StView(t, t.to_le_bytes()))).collect();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Safetensors { path: path.into(), msg: e.to_string() })?;
    write_atomic(path, &bytes)
}
