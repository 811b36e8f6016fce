//! The backend's handle on a device: a `Driver`, the arena its buffers come
//! from, and the sticky first error.
//! Ops cannot return errors (the op set is infallible, as on the CPU), so a
//! failed launch is kept, and returned by the next call that can fail (a
//! download, a synchronisation), like CUDA's own sticky errors.

use super::arena::Arena;
use super::driver::{DeviceInfo, Driver};
use crate::{Error, Result};
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// The most parameters a kernel takes (select_tokens: 13).
const MAX_KERNEL_ARGS: usize = 16;

pub struct Runtime {
    pub driver: Arc<dyn Driver>,
    pub arena: Arc<Arena>,
    error: Mutex<Option<String>>,
}

/// A kernel parameter, passed by address. Implemented only for the value
/// types kernels take (not for references: a blanket impl would also cover
/// `&dyn KernelArg` and hand the kernel the address of a pointer).
pub trait KernelArg {
    fn address(&self) -> *mut c_void {
        self as *const Self as *const c_void as *mut c_void
    }
}

impl KernelArg for u64 {}
impl KernelArg for i64 {}
impl KernelArg for i32 {}
impl KernelArg for f32 {}

impl Runtime {
    pub fn new(arena: Arena) -> Self {
        Runtime { driver: arena.driver().clone(), arena: Arc::new(arena), error: Mutex::new(None) }
    }

    pub fn info(&self) -> &DeviceInfo {
        self.driver.info()
    }

    /// Keeps the first error; later ones are usually its consequences.
    pub fn record(&self, e: impl std::fmt::Display) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e.to_string());
        }
    }

    /// Waits for the device and reports the first recorded failure, if any.
    pub fn sync(&self) -> Result<()> {
        if let Err(e) = self.driver.synchronize() {
            self.record(e);
        }
        match self.error.lock().unwrap().clone() {
            Some(msg) => Err(Error::Device(format!("cuda:{}: {msg}", self.info().ordinal))),
            None => Ok(()),
        }
    }

    pub fn launch(&self, name: &str, grid: (u32, u32, u32), block: (u32, u32, u32), args: &[&dyn KernelArg]) {
        self.launch_shared(name, grid, block, 0, args)
    }

    /// A launch whose blocks each take `shared` bytes of dynamic shared
    /// memory (the kernel's HHI_DYNAMIC_SHARED; the GPU's driver opts the
    /// kernel in to them).
    pub fn launch_shared(&self, name: &str, grid: (u32, u32, u32), block: (u32, u32, u32), shared: u32, args: &[&dyn KernelArg]) {
        // On the stack: a launch is on every op's path.
        let (mut params, mut sizes) = ([std::ptr::null_mut::<c_void>(); MAX_KERNEL_ARGS], [0usize; MAX_KERNEL_ARGS]);
        assert!(args.len() <= MAX_KERNEL_ARGS, "kernel `{name}` takes more than {MAX_KERNEL_ARGS} parameters");
        for ((p, size), a) in params.iter_mut().zip(&mut sizes).zip(args) {
            *p = a.address();
            *size = std::mem::size_of_val(*a);
        }
        if let Err(e) = self.driver.launch(name, grid, block, shared, &mut params[..args.len()], &sizes[..args.len()]) {
            self.record(e);
        }
    }

    /// A 1-D launch of 256-thread blocks over `n` items with a grid-stride
    /// loop: at most 32 blocks per multiprocessor.
    pub fn launch_1d(&self, name: &str, n: usize, args: &[&dyn KernelArg]) {
        if n > 0 {
            let blocks = n.div_ceil(256).clamp(1, 32 * self.info().multiprocessors.max(1) as usize);
            self.launch(name, (blocks as u32, 1, 1), (256, 1, 1), args);
        }
    }
}
