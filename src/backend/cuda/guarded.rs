//! Host memory for the kernel emulator's device buffers, each ending at an
//! inaccessible page: a buffer of n bytes occupies the last ⌈n/16⌉·16 bytes
//! before a guard page (so it starts 16-byte aligned, as every vector access
//! needs), and a kernel that reads or writes 16 or more bytes past its end
//! stops the test with a segmentation fault here — where on a GPU it would
//! fault, or silently read or corrupt a neighbour. Zero-filled, as the
//! device allocator's buffers are; the bytes around them in their mapping
//! (the head of the page before the buffer, and the up to 15 after its
//! end) hold 0xff, NaN in f32 and bf16, as a GPU's neighbouring memory
//! holds whatever it held: a kernel that reads a few elements past a
//! buffer's end or before its start, and uses them (say, multiplied by a
//! zero weight), computes NaNs. Linux (mmap); other systems get plain
//! allocations without the guard.

use std::ffi::c_void;

/// One guarded buffer: the buffer's address and the mapping that holds it.
pub struct Guarded {
    pub ptr: u64,
    mapping: (usize, usize),
}

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::c_void;
    pub const PROT_NONE: i32 = 0;
    pub const PROT_READ_WRITE: i32 = 1 | 2;
    pub const MAP_PRIVATE_ANONYMOUS: i32 = 0x02 | 0x20;
    pub const SC_PAGESIZE: i32 = 30;
    extern "C" {
        pub fn mmap(addr: *mut c_void, len: usize, prot: i32, flags: i32, fd: i32, offset: i64) -> *mut c_void;
        pub fn mprotect(addr: *mut c_void, len: usize, prot: i32) -> i32;
        pub fn munmap(addr: *mut c_void, len: usize) -> i32;
        pub fn sysconf(name: i32) -> i64;
    }
}

impl Guarded {
    /// `bytes` of zeroed memory followed by a guard page; None when the system refuses.
    #[cfg(target_os = "linux")]
    pub fn new(bytes: usize) -> Option<Self> {
        // SAFETY: sysconf only reads a constant.
        let page = usize::try_from(unsafe { sys::sysconf(sys::SC_PAGESIZE) }).ok().filter(|&p| p > 0)?;
        let data = bytes.max(1).next_multiple_of(16);
        let body = data.next_multiple_of(page);
        let len = body + page;
        // SAFETY: a fresh anonymous private mapping (zero-filled), of which only
        // the last page is then made inaccessible; the 0xff writes stay in
        // the mapping's first `body` bytes.
        unsafe {
            let base = sys::mmap(std::ptr::null_mut(), len, sys::PROT_READ_WRITE, sys::MAP_PRIVATE_ANONYMOUS, -1, 0);
            if base as isize == -1 {
                return None;
            }
            if sys::mprotect((base as usize + body) as *mut c_void, page, sys::PROT_NONE) != 0 {
                sys::munmap(base, len);
                return None;
            }
            let ptr = base as usize + body - data;
            std::ptr::write_bytes(base as *mut u8, 0xff, ptr - base as usize);
            std::ptr::write_bytes((ptr + bytes) as *mut u8, 0xff, data - bytes);
            Some(Guarded { ptr: ptr as u64, mapping: (base as usize, len) })
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(bytes: usize) -> Option<Self> {
        let layout = std::alloc::Layout::from_size_align(bytes.max(1), 256).ok()?;
        // SAFETY: a non-zero size with a valid alignment.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then(|| Guarded { ptr: ptr as u64, mapping: (layout.size(), layout.align()) })
    }
}

impl Drop for Guarded {
    #[cfg(target_os = "linux")]
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { sys::munmap(self.mapping.0 as *mut c_void, self.mapping.1) };
    }

    #[cfg(not(target_os = "linux"))]
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this size and alignment, freed once.
        unsafe { std::alloc::dealloc(self.ptr as *mut u8, std::alloc::Layout::from_size_align_unchecked(self.mapping.0, self.mapping.1)) };
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::Guarded;

    #[test]
    fn buffers_are_zeroed_16_byte_aligned_and_end_at_their_guard() {
        for bytes in [0, 1, 15, 16, 100, 4096, 5000] {
            let g = Guarded::new(bytes).unwrap();
            assert_eq!(g.ptr % 16, 0, "{bytes} bytes");
            let data = bytes.max(1).next_multiple_of(16);
            // SAFETY: the 16-byte-rounded buffer holds `data` bytes.
            let all = unsafe { std::slice::from_raw_parts(g.ptr as *const u8, data) };
            assert!(all[..bytes].iter().all(|&b| b == 0), "{bytes} bytes");
            assert!(all[bytes..].iter().all(|&b| b == 0xff), "{bytes} bytes: the tail past the end");
            assert_eq!((g.ptr as usize + data) % 4096, 0, "{bytes} bytes: the buffer ends at a page boundary");
            if !g.ptr.is_multiple_of(4096) {
                // SAFETY: the byte before the buffer lies in its mapping.
                assert_eq!(unsafe { *((g.ptr - 1) as *const u8) }, 0xff, "{bytes} bytes: before the start");
            }
        }
    }
}
