//! Device memory: owned buffers (freed on drop) and views, which are an
//! address and a length borrowing the buffer they came from. Kernels take raw
//! addresses and one queue orders every access, so a view needs nothing else
//! (and a read-only view is `Copy`, as the op set requires).

use super::driver::Driver;
use std::marker::PhantomData;
use std::sync::Arc;

const F32: u64 = std::mem::size_of::<f32>() as u64;

/// `len` values of `T` on a device.
pub struct DeviceBuf<T> {
    pub(super) ptr: u64,
    pub(super) len: usize,
    pub(super) driver: Arc<dyn Driver>,
    pub(super) kind: PhantomData<T>,
}

impl<T> Drop for DeviceBuf<T> {
    fn drop(&mut self) {
        self.driver.free(self.ptr);
    }
}

impl<T> DeviceBuf<T> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn address(&self) -> u64 {
        self.ptr
    }
}

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

impl<'a> CuView<'a> {
    pub fn of(b: &'a DeviceBuf<f32>) -> Self {
        CuView { ptr: b.ptr, len: b.len, life: PhantomData }
    }
    pub fn slice(self, offset: usize, len: usize) -> Self {
        assert!(offset + len <= self.len, "device view [{offset}, {}) out of a view of {}", offset + len, self.len);
        CuView { ptr: self.ptr + offset as u64 * F32, len, life: PhantomData }
    }
}

impl<'a> CuViewMut<'a> {
    pub fn of(b: &'a mut DeviceBuf<f32>) -> Self {
        CuViewMut { ptr: b.ptr, len: b.len, life: PhantomData }
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
