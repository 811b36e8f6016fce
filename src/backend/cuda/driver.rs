//! What the CUDA backend needs from a device, as a trait with two
//! implementations: `nvidia` (the real GPU, through cudarc's driver and
//! cuBLAS bindings) and `emulator` (the same kernels compiled for the host and
//! run by one OS thread per CUDA thread, so kernel logic is tested on machines
//! without a GPU). Addresses are plain `u64`s; one in-order queue per device.

use crate::tensor::DType;
use crate::Result;
use std::ffi::c_void;

/// What a device says about itself (for `name()` and the benchmarks' peaks).
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: u32,
    pub total_memory: usize,
    /// Theoretical DRAM bandwidth in bytes/s (0 where unknown).
    pub peak_bandwidth: f64,
}

/// A column-major GEMM as cuBLAS defines it (cublasGemmEx with f32
/// accumulation): `c = alpha·op(a)·op(b) + beta·c` with `op(a)` m×k, `op(b)`
/// k×n, `c` m×n; each matrix f32 or bf16, and what cuBLASLt's epilogue does
/// to the product before c is written.
#[derive(Clone, Copy, Debug)]
pub struct GemmEx {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: u64,
    pub lda: usize,
    pub b: u64,
    pub ldb: usize,
    pub beta: f32,
    pub c: u64,
    pub ldc: usize,
    pub a_type: DType,
    pub b_type: DType,
    pub c_type: DType,
    pub epilogue: Epilogue,
}

/// cuBLASLt epilogues, applied in f32 before c is rounded. Addresses are
/// device pointers; a bias holds m values (one per row of the column-major
/// c) and `aux` is an m × n matrix of c's type, columns `ld` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// `c = alpha·ab + beta·c` (plain cublasGemmEx).
    None,
    /// `c = alpha·ab + beta·c + bias` (CUBLASLT_EPILOGUE_BIAS).
    Bias { bias: u64 },
    /// `aux = alpha·ab (+ bias)`, `c = gelu_tanh(aux)`; beta is 0
    /// (CUBLASLT_EPILOGUE_GELU_AUX_BIAS, or GELU_AUX where `bias` is 0).
    GeluAux { bias: u64, aux: u64, ld: usize },
    /// `c = gelu_tanh'(aux) ⊙ alpha·ab`; beta is 0 (CUBLASLT_EPILOGUE_DGELU).
    DGelu { aux: u64, ld: usize },
}

pub trait Driver: Send + Sync {
    fn info(&self) -> &DeviceInfo;
    /// `bytes` of zero-filled device memory.
    fn alloc(&self, bytes: usize) -> Result<u64>;
    fn free(&self, ptr: u64);
    fn upload(&self, dst: u64, src: &[u8]) -> Result<()>;
    /// Waits for queued work, then copies.
    fn download(&self, dst: &mut [u8], src: u64) -> Result<()>;
    fn zero(&self, ptr: u64, bytes: usize) -> Result<()>;
    /// Queues kernel `name` with `shared` bytes of dynamic shared memory a
    /// block; `params` point at its parameters, in order, and `sizes` give
    /// their sizes in bytes (the emulator checks them against the kernel's
    /// signature).
    fn launch(&self, name: &str, grid: (u32, u32, u32), block: (u32, u32, u32), shared: u32, params: &mut [*mut c_void], sizes: &[usize]) -> Result<()>;
    fn gemm(&self, g: &GemmEx) -> Result<()>;
    fn synchronize(&self) -> Result<()>;
}
