//! Reading and writing safetensors files as maps of host tensors. Every
//! failure names the file (and the tensor where there is one).

use super::atomic::write_atomic_with;
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

/// A tensor to write: its type, shape and little-endian bytes, borrowed from
/// wherever the values lie (no copy is made to save them).
pub struct TensorRef<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

impl<'a> TensorRef<'a> {
    pub fn f32(shape: Vec<usize>, values: &'a [f32]) -> Self {
        TensorRef { dtype: DType::F32, shape, bytes: bytemuck::cast_slice(values) }
    }

    pub fn of(t: &'a Tensor) -> Self {
        TensorRef { dtype: t.dtype(), shape: t.shape.clone(), bytes: t.le_bytes() }
    }
}

/// Writes `tensors` atomically, with the `{"format": "pt"}` metadata that
/// transformers expects.
pub fn save(path: &Path, tensors: &TensorMap) -> Result<()> {
    save_refs(path, tensors.iter().map(|(name, t)| (name.clone(), TensorRef::of(t))).collect())
}

/// Writes `tensors` atomically as `save` does, streaming each tensor's bytes
/// to the file: the data as the safetensors crate lays it out (widest types
/// first, then by name, each right after the last), the header padded with
/// spaces to a multiple of 8 bytes.
pub fn save_refs(path: &Path, mut tensors: Vec<(String, TensorRef<'_>)>) -> Result<()> {
    tensors.sort_by(|(a, ta), (b, tb)| tb.dtype.size().cmp(&ta.dtype.size()).then_with(|| a.cmp(b)));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0;
    for (name, t) in &tensors {
        let end = offset + t.bytes.len();
        let entry = serde_json::json!({"dtype": format!("{:?}", t.dtype.to_safetensors()), "shape": t.shape, "data_offsets": [offset, end]});
        if header.insert(name.clone(), entry).is_some() {
            return Err(Error::Safetensors { path: path.into(), msg: format!("tensor name `{name}` given twice, or reserved") });
        }
        offset = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    write_atomic_with(path, |out| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        tensors.iter().try_for_each(|(_, t)| out.write_all(t.bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::{load, save};
    use crate::tensor::{DType, Tensor};

    #[test]
    fn saved_files_are_what_the_safetensors_crate_reads_back() {
        let path = std::env::temp_dir().join(format!("hhi-st-save-{}.safetensors", std::process::id()));
        let values: Vec<f32> = (0..35).map(|i| i as f32 / 7.0).collect();
        let tensors = super::TensorMap::from([
            ("b.weight".to_string(), Tensor::f32(vec![5, 7], values.clone())),
            ("a.half".to_string(), Tensor::f32(vec![35], values).cast_float(DType::BF16).unwrap()),
            ("c.step".to_string(), Tensor::i64(vec![], vec![-3])),
        ]);
        save(&path, &tensors).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0, "the data starts 8-byte aligned");
        // The safetensors crate's own reader checks offsets, sizes and coverage.
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, t) in &tensors {
            let view = file.tensor(name).unwrap();
            assert_eq!((view.dtype(), view.shape()), (t.dtype().to_safetensors(), &t.shape[..]), "{name}");
            assert_eq!(view.data(), t.le_bytes(), "{name}");
        }
        // Widest types first: the i64 scalar's data leads, so every tensor is aligned to its type.
        assert_eq!(file.tensor("c.step").unwrap().data().as_ptr() as usize - bytes.as_ptr() as usize, 8 + header_len as usize);
        assert_eq!(load(&path).unwrap(), tensors);
        std::fs::remove_file(&path).unwrap();
    }
}
