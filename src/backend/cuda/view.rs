//! Views into device buffers: a device address and a length, borrowing the
//! buffer they came from. Kernels take raw addresses, and one stream orders
//! every access, so a view needs nothing else (and a read-only view is `Copy`,
//! as the op set requires).

use cudarc::driver::{CudaSlice, DevicePtr};
use std::marker::PhantomData;

#[derive(Clone, Copy, Debug)]
pub struct CuView<'a> {
    pub ptr: u64,
    pub len: usize,
    life: PhantomData<&'a [f32]>,
}

#[derive(Debug)]
pub struct CuViewMut<'a> {
    pub ptr: u64,
    pub len: usize,
    life: PhantomData<&'a mut [f32]>,
}

const F32: u64 = std::mem::size_of::<f32>() as u64;

/// The device address of a buffer (no event bookkeeping: tracking is off).
pub fn address<T>(b: &CudaSlice<T>) -> u64 {
    let (ptr, _no_sync) = b.device_ptr(b.stream());
    ptr
}

impl<'a> CuView<'a> {
    pub fn of(b: &'a CudaSlice<f32>) -> Self {
        CuView { ptr: address(b), len: b.len(), life: PhantomData }
    }
    pub fn slice(self, offset: usize, len: usize) -> Self {
        assert!(offset + len <= self.len, "device view [{offset}, {}) out of a view of {}", offset + len, self.len);
        CuView { ptr: self.ptr + offset as u64 * F32, len, life: PhantomData }
    }
}

impl<'a> CuViewMut<'a> {
    pub fn of(b: &'a mut CudaSlice<f32>) -> Self {
        CuViewMut { ptr: address(b), len: b.len(), life: PhantomData }
    }
    pub fn split_at(self, at: usize) -> (Self, Self) {
        assert!(at <= self.len, "device view split at {at} of a view of {}", self.len);
        let rest = CuViewMut { ptr: self.ptr + at as u64 * F32, len: self.len - at, life: PhantomData };
        (CuViewMut { ptr: self.ptr, len: at, life: PhantomData }, rest)
    }
    pub fn reborrow(&mut self) -> CuViewMut<'_> {
        CuViewMut { ptr: self.ptr, len: self.len, life: PhantomData }
    }
}
