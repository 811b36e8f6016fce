//! Host tensors: contiguous row-major data with a shape and a dtype. These are
//! what checkpoints and fixtures hold; the compute path converts them to the
//! backend's buffers (f32 on the CPU reference backend).

use half::{bf16, f16};

mod dtype;
pub use dtype::DType;

/// The element storage of a host tensor, one variant per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data: Data::F32(data) }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data: Data::I64(data) }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn dtype(&self) -> DType {
        match &self.data {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::BF16(_) => DType::BF16,
            Data::F16(_) => DType::F16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::U8(_) => DType::U8,
        }
    }

    /// The values as f32 (floating dtypes widen or round, integers convert).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as i64, or `None` for floating dtypes.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::I32(v) => Some(v.iter().map(|&x| x as i64).collect()),
            Data::I64(v) => Some(v.clone()),
            Data::U8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            _ => None,
        }
    }

    /// Little-endian bytes, as safetensors stores them.
    pub fn le_bytes(&self) -> &[u8] {
        match &self.data {
            Data::F32(v) => bytemuck::cast_slice(v),
            Data::F64(v) => bytemuck::cast_slice(v),
            Data::BF16(v) => bytemuck::cast_slice(v),
            Data::F16(v) => bytemuck::cast_slice(v),
            Data::I32(v) => bytemuck::cast_slice(v),
            Data::I64(v) => bytemuck::cast_slice(v),
            Data::U8(v) => v,
        }
    }

    /// Decodes little-endian bytes of `dtype`; `None` when the length is wrong.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Option<Self> {
        let n: usize = shape.iter().product();
        if bytes.len() != n * dtype.size() {
            return None;
        }
        // `pod_collect_to_vec` copies, so unaligned input is fine.
        let data = match dtype {
            DType::F32 => Data::F32(bytemuck::pod_collect_to_vec(bytes)),
            DType::F64 => Data::F64(bytemuck::pod_collect_to_vec(bytes)),
            DType::BF16 => Data::BF16(bytemuck::pod_collect_to_vec(bytes)),
            DType::F16 => Data::F16(bytemuck::pod_collect_to_vec(bytes)),
            DType::I32 => Data::I32(bytemuck::pod_collect_to_vec(bytes)),
            DType::I64 => Data::I64(bytemuck::pod_collect_to_vec(bytes)),
            DType::U8 => Data::U8(bytes.to_vec()),
        };
        Some(Tensor { shape, data })
    }

    /// Converts floating data to `dtype` (used to save bf16/f16 checkpoints).
    pub fn cast_float(&self, dtype: DType) -> Option<Tensor> {
        let v = self.to_f32();
        let data = match dtype {
            DType::F32 => Data::F32(v),
            DType::BF16 => Data::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::F16 => Data::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            _ => return None,
        };
        Some(Tensor { shape: self.shape.clone(), data })
    }
}
