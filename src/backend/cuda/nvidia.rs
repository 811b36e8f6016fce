//! The real GPU behind the `Driver` trait: cudarc's dynamically loaded driver
//! API and cuBLAS, the legacy default stream (one in-order queue), and the
//! kernel images build.rs embedded, loaded once per device.
//!
//! cudarc panics when a library it loads is missing, so `check_libraries`
//! probes for them first and turns absence into an error with instructions.

use super::driver::{DeviceInfo, Driver, Epilogue, GemmEx};
use super::kernels;
use super::lt::{self, Lt};
use crate::tensor::DType;
use crate::{Error, Result};
use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cudaDataType};
use cudarc::cublas::CudaBlas;
use cudarc::driver::result as cu;
use cudarc::driver::sys::{CUdevice_attribute as Attr, CUfunction, CUfunction_attribute, CUmodule, CUstream};
use cudarc::driver::CudaContext;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::{Arc, Mutex};

/// Fails with instructions when this machine or build cannot run CUDA at all.
pub fn check_libraries() -> Result<()> {
    if let Some(why) = kernels::MISSING {
        return Err(Error::Device(why.into()));
    }
    // SAFETY: probing only opens and closes the shared libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::Device("libcuda.so was not found: this machine has no NVIDIA driver, or its folder is not on LD_LIBRARY_PATH (scripts/gpu-check sets it)".into()));
    }
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(Error::Device(
            "libcublas.so was not found: put a CUDA toolkit's lib folder, or the nvidia/cu13/lib folder of an installed PyTorch, on LD_LIBRARY_PATH (scripts/gpu-check does this)"
                .into(),
        ));
    }
    Ok(())
}

fn err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("{what}: {e:?}"))
}

pub struct Nvidia {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    blas: CudaBlas,
    modules: Vec<CUmodule>,
    /// Kernels looked up so far, with the dynamic shared memory each is opted in to.
    functions: Mutex<HashMap<String, Function>>,
    /// cuBLASLt, made for the first product with an epilogue.
    lt: Mutex<Option<Lt>>,
}

// SAFETY: CUmodule and CUfunction are handles valid in every thread that makes
// the context current, which every call here does first.
unsafe impl Send for Nvidia {}
unsafe impl Sync for Nvidia {}

/// A loaded kernel and the most dynamic shared memory it was opted in to
/// (cuFuncSetAttribute's MAX_DYNAMIC_SHARED_SIZE_BYTES; without it a launch
/// may take 48 KB less the kernel's static shared memory).
#[derive(Clone, Copy)]
struct Function {
    handle: CUfunction,
    shared_opt_in: u32,
}

/// The legacy default stream: orders every launch, copy and cuBLAS call.
const STREAM: CUstream = std::ptr::null_mut();

impl Nvidia {
    pub fn open(ordinal: usize) -> Result<Self> {
        check_libraries()?;
        let count = CudaContext::device_count().map_err(|e| err("cuDeviceGetCount", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::Device(format!("cuda:{ordinal} does not exist: this machine has {count} CUDA device(s)")));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| err("creating the CUDA context", e))?;
        let blas = CudaBlas::new(ctx.default_stream()).map_err(|e| err("creating the cuBLAS handle", e))?;
        let info = device_info(&ctx, ordinal)?;
        let mut modules = Vec::new();
        for (name, image) in kernels::MODULES {
            // cuModuleLoadData wants an aligned image; a Vec<u64> copy is.
            let mut aligned = vec![0u64; image.len().div_ceil(8)];
            bytemuck::cast_slice_mut::<u64, u8>(&mut aligned)[..image.len()].copy_from_slice(image);
            // SAFETY: a fatbin image made by nvcc; the context is current.
            let module = unsafe { cu::module::load_data(aligned.as_ptr() as *const c_void) }
                .map_err(|e| err(&format!("loading kernels/{name}.cu on {} (compute capability {:?})", info.name, info.compute_capability), e))?;
            modules.push(module);
        }
        Ok(Nvidia { info, ctx, blas, modules, functions: Mutex::new(HashMap::new()), lt: Mutex::new(None) })
    }

    fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| err("binding the CUDA context", e))
    }

    /// The kernel `name`, looked up once in the loaded modules, opted in to
    /// `shared` bytes of dynamic shared memory the first time it asks for
    /// them (whatever its static shared memory leaves of 48 KB: the opt-in
    /// costs one call a kernel, knowing that would cost one too).
    fn function(&self, name: &str, shared: u32) -> Result<CUfunction> {
        let mut cache = self.functions.lock().unwrap();
        let f = match cache.get(name) {
            Some(&f) => f,
            None => {
                let c_name = CString::new(name).expect("kernel names have no NUL");
                // SAFETY: modules stay loaded for the life of `self`.
                let found = self.modules.iter().find_map(|&m| unsafe { cu::module::get_function(m, c_name.clone()) }.ok());
                let handle = found.ok_or_else(|| Error::Device(format!("kernel `{name}` is not in the embedded kernel images (stale build?)")))?;
                Function { handle, shared_opt_in: 0 }
            }
        };
        let f = if shared > f.shared_opt_in {
            // SAFETY: a kernel of a loaded module; the context is current.
            unsafe { cu::function::set_function_attribute(f.handle, CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared as i32) }
                .map_err(|e| err(&format!("opting `{name}` in to {shared} bytes of dynamic shared memory on {}", self.info.name), e))?;
            Function { shared_opt_in: shared, ..f }
        } else {
            f
        };
        cache.insert(name.to_string(), f);
        Ok(f.handle)
    }

    /// `g` through cuBLASLt, for its epilogue (the handle and workspace made on first use).
    fn gemm_lt(&self, g: &GemmEx) -> Result<()> {
        let mut slot = self.lt.lock().unwrap();
        if let Some(made) = slot.as_ref() {
            return made.matmul(g);
        }
        let workspace = self.alloc(lt::WORKSPACE_BYTES)?;
        match Lt::new(workspace) {
            Ok(made) => slot.insert(made).matmul(g),
            Err(e) => {
                self.free(workspace);
                Err(e)
            }
        }
    }
}

impl Drop for Nvidia {
    fn drop(&mut self) {
        if let Some(made) = self.lt.get_mut().ok().and_then(Option::take) {
            let workspace = made.workspace;
            drop(made);
            self.free(workspace);
        }
        if self.bind().is_ok() {
            for &m in &self.modules {
                // SAFETY: no function of the module is used after this.
                let _ = unsafe { cu::module::unload(m) };
            }
        }
    }
}

impl Driver for Nvidia {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    /// Stream-ordered (pool) allocation where the device supports it, so that
    /// buffers made and dropped between steps cost no device synchronisation.
    fn alloc(&self, bytes: usize) -> Result<u64> {
        self.bind()?;
        // SAFETY: plain allocation, then a queued memset of exactly its size.
        unsafe {
            let ptr = if self.ctx.has_async_alloc() { cu::malloc_async(STREAM, bytes.max(1)) } else { cu::malloc_sync(bytes.max(1)) }
                .map_err(|e| err(&format!("allocating {bytes} bytes on cuda:{}", self.info.ordinal), e))?;
            if bytes > 0 {
                cu::memset_d8_async(ptr, 0, bytes, STREAM).map_err(|e| err("cuMemsetD8", e))?;
            }
            Ok(ptr)
        }
    }
    fn free(&self, ptr: u64) {
        if self.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc` and is freed once (DeviceBuf's drop),
            // after the work queued before it.
            let _ = unsafe {
                if self.ctx.has_async_alloc() {
                    cu::free_async(ptr, STREAM)
                } else {
                    cu::free_sync(ptr)
                }
            };
        }
    }
    fn upload(&self, dst: u64, src: &[u8]) -> Result<()> {
        self.bind()?;
        // SAFETY: `dst` addresses at least `src.len()` bytes (the caller allocated it so).
        unsafe { cu::memcpy_htod_sync(dst, src) }.map_err(|e| err("copying to the device", e))
    }
    fn download(&self, dst: &mut [u8], src: u64) -> Result<()> {
        self.bind()?;
        // SAFETY: `src` addresses at least `dst.len()` bytes; the copy waits for queued work.
        unsafe { cu::memcpy_dtoh_sync(dst, src) }.map_err(|e| err("copying from the device", e))
    }
    fn zero(&self, ptr: u64, bytes: usize) -> Result<()> {
        self.bind()?;
        // SAFETY: `ptr` addresses at least `bytes` bytes.
        unsafe { cu::memset_d8_async(ptr, 0, bytes, STREAM) }.map_err(|e| err("cuMemsetD8", e))
    }
    fn launch(&self, name: &str, grid: (u32, u32, u32), block: (u32, u32, u32), shared: u32, params: &mut [*mut c_void], _sizes: &[usize]) -> Result<()> {
        self.bind()?;
        let f = self.function(name, shared)?;
        // SAFETY: the launchers in backend/cuda pass exactly the parameter list of
        // the kernel's `extern "C"` signature, with addresses of live buffers
        // sized by the same op arguments the CPU reference checks.
        unsafe { cu::launch_kernel(f, grid, block, shared, STREAM, params) }.map_err(|e| err(&format!("launching `{name}`"), e))
    }
    fn gemm(&self, g: &GemmEx) -> Result<()> {
        self.bind()?;
        if g.epilogue != Epilogue::None {
            return self.gemm_lt(g);
        }
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let ty = |d: DType| if d == DType::BF16 { cudaDataType::CUDA_R_16BF } else { cudaDataType::CUDA_R_32F };
        // SAFETY: the caller checked that the addresses cover the shapes; alpha
        // and beta are host f32 scalars (cuBLAS's default pointer mode, and the
        // scalar type of CUBLAS_COMPUTE_32F, which keeps f32 inputs in exact
        // f32 arithmetic — no TF32 — and accumulates bf16 products in f32).
        unsafe {
            cudarc::cublas::result::gemm_ex(
                *self.blas.handle(),
                op(g.trans_a),
                op(g.trans_b),
                g.m as i32,
                g.n as i32,
                g.k as i32,
                &g.alpha as *const f32 as *const c_void,
                g.a as *const c_void,
                ty(g.a_type),
                g.lda as i32,
                g.b as *const c_void,
                ty(g.b_type),
                g.ldb as i32,
                &g.beta as *const f32 as *const c_void,
                g.c as *mut c_void,
                ty(g.c_type),
                g.ldc as i32,
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| err(&format!("cublasGemmEx {g:?}"), e))
    }
    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.ctx.synchronize().map_err(|e| err("synchronize", e))
    }
}

fn device_info(ctx: &Arc<CudaContext>, ordinal: usize) -> Result<DeviceInfo> {
    let attr = |a: Attr| ctx.attribute(a).map_err(|e| err("cuDeviceGetAttribute", e));
    let memory_khz = attr(Attr::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)? as f64;
    let bus_bits = attr(Attr::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)? as f64;
    Ok(DeviceInfo {
        ordinal,
        name: ctx.name().map_err(|e| err("cuDeviceGetName", e))?,
        compute_capability: ctx.compute_capability().map_err(|e| err("compute capability", e))?,
        multiprocessors: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
        total_memory: ctx.total_mem().map_err(|e| err("cuDeviceTotalMem", e))?,
        // Double data rate: 2 transfers per memory clock, bus width in bits.
        peak_bandwidth: 2.0 * memory_khz * 1e3 * bus_bits / 8.0,
    })
}
