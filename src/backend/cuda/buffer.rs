//! Device memory: owned buffers (back to the arena on drop) and views, which are an
//! address, a length and an element type, borrowing the buffer they came
//! from. Kernels take raw addresses and one queue orders every access, so a
//! view needs nothing else (and a read-only view is `Copy`, as the op set
//! requires). Lengths and offsets count elements of the view's type.

use super::arena::Arena;
use crate::tensor::DType;
use std::marker::PhantomData;
use std::sync::Arc;

/// `len` values of `dtype` on a device.
pub struct DeviceBuf {
    pub(super) ptr: u64,
    pub(super) len: usize,
    pub(super) dtype: DType,
    pub(super) arena: Arc<Arena>,
}

impl Drop for DeviceBuf {
    fn drop(&mut self) {
        self.arena.release(self.ptr);
    }
}

impl DeviceBuf {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn address(&self) -> u64 {
        self.ptr
    }
}

#[derive(Clone, Copy, Debug)]
pub struct CuView<'a> {
    pub ptr: u64,
    pub len: usize,
    pub dtype: DType,
    life: PhantomData<&'a DeviceBuf>,
}

#[derive(Debug)]
pub struct CuViewMut<'a> {
    pub ptr: u64,
    pub len: usize,
    pub dtype: DType,
    life: PhantomData<&'a mut DeviceBuf>,
}

/// Address of element `offset` of a view starting at `ptr`.
fn at(ptr: u64, offset: usize, dtype: DType) -> u64 {
    ptr + (offset * dtype.size()) as u64
}

impl<'a> CuView<'a> {
    pub fn of(b: &'a DeviceBuf) -> Self {
        CuView { ptr: b.ptr, len: b.len, dtype: b.dtype, life: PhantomData }
    }
    pub fn shorten<'b>(self) -> CuView<'b>
    where
        'a: 'b,
    {
        CuView { ptr: self.ptr, len: self.len, dtype: self.dtype, life: PhantomData }
    }
    pub fn slice(self, offset: usize, len: usize) -> Self {
        assert!(offset + len <= self.len, "device view [{offset}, {}) out of a view of {}", offset + len, self.len);
        CuView { ptr: at(self.ptr, offset, self.dtype), len, ..self }
    }
}

impl<'a> CuViewMut<'a> {
    pub fn of(b: &'a mut DeviceBuf) -> Self {
        CuViewMut { ptr: b.ptr, len: b.len, dtype: b.dtype, life: PhantomData }
    }
    pub fn split_at(self, mid: usize) -> (Self, Self) {
        assert!(mid <= self.len, "device view split at {mid} of a view of {}", self.len);
        let rest = CuViewMut { ptr: at(self.ptr, mid, self.dtype), len: self.len - mid, dtype: self.dtype, life: PhantomData };
        (CuViewMut { ptr: self.ptr, len: mid, dtype: self.dtype, life: PhantomData }, rest)
    }
    /// The device address of element `offset` (for kernels that take several
    /// interleaved outputs in one buffer).
    pub fn address_of(&self, offset: usize) -> u64 {
        assert!(offset <= self.len, "device address {offset} out of a view of {}", self.len);
        at(self.ptr, offset, self.dtype)
    }
    pub fn reborrow(&mut self) -> CuViewMut<'_> {
        CuViewMut { ptr: self.ptr, len: self.len, dtype: self.dtype, life: PhantomData }
    }
    pub fn freeze(self) -> CuView<'a> {
        CuView { ptr: self.ptr, len: self.len, dtype: self.dtype, life: PhantomData }
    }
}
