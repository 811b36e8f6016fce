//! Opening a CUDA device: checks that the driver and cuBLAS libraries exist
//! (cudarc would panic on a missing library), creates the context, stream and
//! cuBLAS handle, loads the embedded kernel images, and launches kernels by
//! name. Launch failures do not abort the op that caused them: the first one
//! is kept ("sticky", like CUDA's own errors) and returned by the next call
//! that can fail (a download, a synchronisation).

use super::kernels;
use crate::{Error, Result};
use cudarc::cublas::CudaBlas;
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the device says about itself (for `name()` and the benchmarks' peaks).
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: u32,
    pub total_memory: usize,
    /// Theoretical DRAM bandwidth in bytes/s (2 × memory clock × bus width).
    pub peak_bandwidth: f64,
}

pub struct Runtime {
    pub info: DeviceInfo,
    pub stream: Arc<CudaStream>,
    pub blas: CudaBlas,
    modules: Vec<Arc<CudaModule>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    error: Mutex<Option<String>>,
}

fn device_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("{what}: {e:?}"))
}

/// Fails with instructions when this machine cannot run CUDA at all.
pub fn check_libraries() -> Result<()> {
    if let Some(why) = kernels::MISSING {
        return Err(Error::Device(why.into()));
    }
    // SAFETY: probing only opens and closes the shared libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::Device(
            "libcuda.so was not found: this machine has no NVIDIA driver, or its folder is not on LD_LIBRARY_PATH (scripts/gpu-check sets it)".into(),
        ));
    }
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(Error::Device(
            "libcublas.so was not found: put a CUDA toolkit's lib folder, or the nvidia/cu13/lib folder of an installed PyTorch, on LD_LIBRARY_PATH (scripts/gpu-check does this)"
                .into(),
        ));
    }
    Ok(())
}

impl Runtime {
    pub fn open(ordinal: usize) -> Result<Self> {
        check_libraries()?;
        let count = CudaContext::device_count().map_err(|e| device_err("cuDeviceGetCount", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::Device(format!("cuda:{ordinal} does not exist: this machine has {count} CUDA device(s)")));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| device_err("creating the CUDA context", e))?;
        // One stream orders everything, so cudarc's per-buffer events are not needed.
        // SAFETY: called before any buffer of this context exists.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| device_err("creating the cuBLAS handle", e))?;
        let info = device_info(&ctx, ordinal)?;
        let modules = kernels::MODULES
            .iter()
            .map(|(name, image)| {
                ctx.load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))
                    .map_err(|e| device_err(&format!("loading kernels/{name}.cu on {} (compute capability {:?})", info.name, info.compute_capability), e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Runtime { info, stream, blas, modules, functions: Mutex::new(HashMap::new()), error: Mutex::new(None) })
    }

    /// The kernel `name`, looked up once in the loaded modules.
    pub fn function(&self, name: &'static str) -> Option<CudaFunction> {
        let mut cache = self.functions.lock().unwrap();
        if let Some(f) = cache.get(name) {
            return Some(f.clone());
        }
        let found = self.modules.iter().find_map(|m| m.load_function(name).ok())?;
        cache.insert(name, found.clone());
        Some(found)
    }

    /// Keeps the first error; later ones are usually its consequences.
    pub fn record(&self, what: &str, e: impl std::fmt::Debug) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(format!("{what}: {e:?}"));
        }
    }

    /// Waits for the device and reports the first recorded failure, if any.
    pub fn sync(&self) -> Result<()> {
        if let Err(e) = self.stream.synchronize() {
            self.record("synchronize", e);
        }
        match self.error.lock().unwrap().clone() {
            Some(msg) => Err(Error::Device(format!("cuda:{}: {msg}", self.info.ordinal))),
            None => Ok(()),
        }
    }

    /// Launches `name` with `args` (each pushed by reference, as the kernel's
    /// parameters in order).
    pub fn launch(&self, name: &'static str, cfg: LaunchConfig, args: &[&dyn KernelArg]) {
        let Some(f) = self.function(name) else {
            self.record(&format!("kernel `{name}`"), "not found in the embedded kernel images (stale build?)");
            return;
        };
        let mut builder = self.stream.launch_builder(&f);
        for a in args {
            a.push(&mut builder);
        }
        // SAFETY: the launchers in backend/cuda pass exactly the parameter list
        // of the kernel's `extern "C"` signature, with pointers into live buffers
        // sized by the same op arguments the CPU reference checks.
        if let Err(e) = unsafe { builder.launch(cfg) } {
            self.record(&format!("launching `{name}`"), e);
        }
    }

    /// A 1-D launch over `n` items with a grid-stride loop: at most 32 blocks
    /// per multiprocessor.
    pub fn grid_for(&self, n: usize, block: u32) -> LaunchConfig {
        let blocks = n.div_ceil(block as usize).clamp(1, 32 * self.info.multiprocessors as usize);
        LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 }
    }
}

fn device_info(ctx: &Arc<CudaContext>, ordinal: usize) -> Result<DeviceInfo> {
    let attr = |a: Attr| ctx.attribute(a).map_err(|e| device_err("cuDeviceGetAttribute", e));
    let memory_khz = attr(Attr::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)? as f64;
    let bus_bits = attr(Attr::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)? as f64;
    Ok(DeviceInfo {
        ordinal,
        name: ctx.name().map_err(|e| device_err("cuDeviceGetName", e))?,
        compute_capability: ctx.compute_capability().map_err(|e| device_err("compute capability", e))?,
        multiprocessors: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
        total_memory: ctx.total_mem().map_err(|e| device_err("cuDeviceTotalMem", e))?,
        peak_bandwidth: 2.0 * memory_khz * 1e3 * bus_bits / 8.0,
    })
}

/// A kernel parameter: anything cudarc can push by reference.
pub trait KernelArg {
    fn push<'a>(&'a self, builder: &mut cudarc::driver::LaunchArgs<'a>);
}

impl<T: DeviceRepr> KernelArg for T {
    fn push<'a>(&'a self, builder: &mut cudarc::driver::LaunchArgs<'a>) {
        builder.arg(self);
    }
}
