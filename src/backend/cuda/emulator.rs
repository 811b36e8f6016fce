//! The kernel emulator behind the `Driver` trait: device memory is host
//! memory, kernels are kernels/*.cu compiled for the host (build.rs) and run
//! by kernels/emulator/launch.cpp with one fiber per CUDA thread, and
//! GEMMs follow cuBLAS's argument conventions on the host (emulated_gemm.rs). It
//! exists so every launcher, kernel and index computation of the CUDA
//! backend is tested against the CPU reference on machines without a GPU.

use super::driver::{DeviceInfo, Driver, GemmEx};
use super::guarded::Guarded;
use crate::{Error, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::sync::Mutex;

extern "C" {
    fn hhi_emu_launch(
        name: *const c_char,
        gx: u32,
        gy: u32,
        gz: u32,
        bx: u32,
        by: u32,
        bz: u32,
        shared_bytes: u32,
        params: *mut *mut c_void,
        param_sizes: *const usize,
        param_count: usize,
        fault: *mut c_char,
        fault_len: usize,
    ) -> i32;
}

pub struct Emulator {
    info: DeviceInfo,
    /// Every live buffer, by address (each ends at a guard page: guarded.rs).
    allocations: Mutex<HashMap<u64, Guarded>>,
}

impl Emulator {
    /// An emulated device reporting `multiprocessors` SMs: launchers that
    /// size their grids to fill a device read it (the blocks all run on the
    /// host either way).
    pub fn new(multiprocessors: u32) -> Self {
        let info = DeviceInfo { ordinal: 0, name: "kernel emulator (host threads)".into(), compute_capability: (9, 0), multiprocessors, total_memory: 0, peak_bandwidth: 0.0 };
        Emulator { info, allocations: Mutex::new(HashMap::new()) }
    }
}

impl Driver for Emulator {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn alloc(&self, bytes: usize) -> Result<u64> {
        let buf = Guarded::new(bytes).ok_or_else(|| Error::Device(format!("emulator: out of host memory for {bytes} bytes")))?;
        let ptr = buf.ptr;
        self.allocations.lock().unwrap().insert(ptr, buf);
        Ok(ptr)
    }
    fn free(&self, ptr: u64) {
        self.allocations.lock().unwrap().remove(&ptr);
    }
    fn upload(&self, dst: u64, src: &[u8]) -> Result<()> {
        // SAFETY: `dst` is an allocation of at least `src.len()` bytes (callers size it).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }
    fn download(&self, dst: &mut [u8], src: u64) -> Result<()> {
        // SAFETY: as above, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }
    fn zero(&self, ptr: u64, bytes: usize) -> Result<()> {
        // SAFETY: `ptr` addresses at least `bytes` bytes.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, bytes) };
        Ok(())
    }
    fn launch(&self, name: &str, grid: (u32, u32, u32), block: (u32, u32, u32), shared: u32, params: &mut [*mut c_void], sizes: &[usize]) -> Result<()> {
        assert_eq!(params.len(), sizes.len(), "launch of `{name}`: a size for each parameter");
        let c_name = CString::new(name).expect("kernel names have no NUL");
        let mut fault = [0 as c_char; 256];
        // SAFETY: `params` point at parameters of the sizes in `sizes` (the
        // launcher checks them against the kernel's before reading any);
        // `fault` holds fault.len() bytes.
        let rc = unsafe {
            hhi_emu_launch(
                c_name.as_ptr(),
                grid.0,
                grid.1,
                grid.2,
                block.0,
                block.1,
                block.2,
                shared,
                params.as_mut_ptr(),
                sizes.as_ptr(),
                sizes.len(),
                fault.as_mut_ptr(),
                fault.len(),
            )
        };
        match rc {
            0 => Ok(()),
            1 => Err(Error::Device(format!("emulator: no kernel named `{name}`"))),
            3 => {
                // SAFETY: the launcher wrote a NUL-terminated string into `fault`.
                let fault = unsafe { std::ffi::CStr::from_ptr(fault.as_ptr()) }.to_string_lossy();
                Err(Error::Device(format!("emulator: `{name}`: {fault}")))
            }
            _ => Err(Error::Device(format!("emulator: `{name}` deadlocked: a barrier or warp shuffle not reached by every live thread of a block"))),
        }
    }
    fn gemm(&self, g: &GemmEx) -> Result<()> {
        // SAFETY: the caller checked the shapes against the buffers.
        unsafe { super::emulated_gemm::gemm(g) };
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Launches one of kernels/emulator/selftest.cpp's kernels on one warp.
    fn run(name: &str, out: &mut [i32; 32]) -> Result<()> {
        let mut ptr = out.as_mut_ptr() as u64;
        let mut params = [&mut ptr as *mut u64 as *mut c_void];
        Emulator::new(1).launch(name, (1, 1, 1), (32, 1, 1), 0, &mut params, &[8])
    }

    #[test]
    fn a_barrier_not_every_thread_reaches_is_an_error_not_a_hang() {
        let err = run("emu_selftest_divergent_barrier", &mut [0; 32]).unwrap_err();
        assert!(err.to_string().contains("deadlocked"), "{err}");
    }

    #[test]
    fn threads_that_exit_early_leave_the_barrier() {
        let mut out = [0; 32];
        run("emu_selftest_early_exit", &mut out).unwrap();
        assert_eq!(out[..16], [1; 16]);
        assert_eq!(out[16..], [0; 16]);
    }

    /// Launch shapes a GPU refuses are refused before any thread runs (the
    /// parameters are never read): more threads than the kernel's
    /// `__launch_bounds__` (64 for this one), or beyond the device's limits.
    #[test]
    fn launches_a_gpu_would_refuse_fail() {
        let emulator = Emulator::new(1);
        for (grid, block, why) in [
            ((1, 1, 1), (128, 1, 1), "__launch_bounds__"),
            ((1, 70_000, 1), (64, 1, 1), "grid beyond"),
            ((0, 1, 1), (64, 1, 1), "empty grid"),
            ((1, 1, 1), (8, 8, 65), "block beyond"),
        ] {
            let err = emulator.launch("layernorm_backward_pipelined4_bf16", grid, block, 0, &mut [], &[]).unwrap_err().to_string();
            assert!(err.contains("launch refused") && err.contains(why), "{grid:?} {block:?}: {err}");
        }
        let err = run("emu_selftest_early_exit", &mut [0; 32]);
        assert!(err.is_ok(), "a block within the limits runs: {err:?}");
    }

    /// A launch passes exactly the kernel's parameters, each at its size, as
    /// cuLaunchKernel reads them (else the kernel would read garbage).
    #[test]
    fn parameters_of_another_number_or_size_fail_the_launch() {
        let mut out = [0i32; 32];
        let (mut ptr, mut narrow) = (out.as_mut_ptr() as u64, 0i32);
        let emulator = Emulator::new(1);
        let mut params = [&mut ptr as *mut u64 as *mut c_void, &mut narrow as *mut i32 as *mut c_void];
        let err = emulator.launch("emu_selftest_early_exit", (1, 1, 1), (32, 1, 1), 0, &mut params, &[8, 4]).unwrap_err().to_string();
        assert!(err.contains("the launch passes 2 parameters where the kernel takes 1"), "{err}");
        let err = emulator.launch("emu_selftest_early_exit", (1, 1, 1), (32, 1, 1), 0, &mut params[1..], &[4]).unwrap_err().to_string();
        assert!(err.contains("parameter 0 is 8 bytes in the kernel, 4 in the launch"), "{err}");
        assert_eq!(out, [0; 32], "no thread ran");
    }

    /// Blocks run first to last, or last to first where gx + gy + gz is odd
    /// (a GPU promises no order).
    #[test]
    fn blocks_run_in_either_order() {
        let order = |blocks: u32| {
            let mut out = vec![0i32; blocks as usize + 1];
            let mut ptr = out.as_mut_ptr() as u64;
            let mut params = [&mut ptr as *mut u64 as *mut c_void];
            Emulator::new(1).launch("emu_selftest_block_order", (blocks, 1, 1), (32, 1, 1), 0, &mut params, &[8]).unwrap();
            out.truncate(blocks as usize);
            out
        };
        assert_eq!(order(4), [0, 1, 2, 3]);
        assert_eq!(order(3), [2, 1, 0]);
    }

    #[test]
    fn a_misaligned_vector_access_fails_the_launch() {
        let err = run("emu_selftest_misaligned_copy", &mut [0; 32]).unwrap_err().to_string();
        assert!(err.contains("misaligned address: 16-byte load from") && err.contains("needs 16 bytes"), "{err}");
    }

    /// Each block finds its shared memory poisoned (0xff bytes: NaN), not
    /// holding what the previous block wrote there.
    #[test]
    fn shared_memory_a_block_never_wrote_reads_as_nan() {
        let mut out = vec![0f32; 2 * 32];
        let mut ptr = out.as_mut_ptr() as u64;
        let mut params = [&mut ptr as *mut u64 as *mut c_void];
        Emulator::new(1).launch("emu_selftest_unwritten_shared", (2, 1, 1), (32, 1, 1), 0, &mut params, &[8]).unwrap();
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v.to_bits(), u32::MAX, "block {} thread {}: {v}", i / 32, i % 32);
        }
    }

    /// A shuffle that reads a lane which exited gets NaN (a GPU's value is
    /// undefined); one between live lanes is exact.
    #[test]
    fn a_shuffle_from_an_exited_lane_reads_nan() {
        let mut out = [0i32; 32];
        run("emu_selftest_shuffle_from_exited_lanes", &mut out).unwrap();
        for (lane, v) in out.iter().enumerate().take(16) {
            assert_eq!(*v as u32, u32::MAX, "lane {lane}");
        }
        assert_eq!(out[16..], [0; 16], "exited lanes write nothing");
    }

    /// mma.sync is `.aligned`: every lane of the warp must take part.
    #[test]
    fn an_mma_by_a_partial_warp_fails_the_launch() {
        let launch = |threads: u32| {
            let mut out = vec![0f32; 64];
            let mut ptr = out.as_mut_ptr() as u64;
            let mut params = [&mut ptr as *mut u64 as *mut c_void];
            Emulator::new(1).launch("emu_selftest_mma_by_the_block", (1, 1, 1), (threads, 1, 1), 0, &mut params, &[8])
        };
        launch(64).unwrap();
        let err = launch(48).unwrap_err().to_string();
        assert!(err.contains("mma.sync by a warp with lanes that exited") && err.contains("lanes present: 0x0000ffff"), "{err}");
    }

    /// cp.async copies land at the issuing thread's wait; a warp that runs
    /// ahead without a barrier reads the other warp's copies unlanded.
    #[test]
    fn async_copies_land_at_the_wait_and_other_warps_see_them_after_a_barrier() {
        let input: Vec<f32> = (1..=128).map(|v| v as f32).collect();
        let mut out = vec![0f32; 2 * 256];
        let (mut out_ptr, mut in_ptr) = (out.as_mut_ptr() as u64, input.as_ptr() as u64);
        let mut params = [&mut out_ptr as *mut u64 as *mut c_void, &mut in_ptr as *mut u64 as *mut c_void];
        Emulator::new(1).launch("emu_selftest_cp_async_visibility", (2, 1, 1), (64, 1, 1), 0, &mut params, &[8, 8]).unwrap();
        for (block, first_warp) in [(0, 0), (1, 1)] {
            let (o, own) = (&out[256 * block..256 * (block + 1)], &input[64 * block..64 * (block + 1)]);
            for t in 0..64 {
                let other = own[(t + 32) % 64];
                assert!(o[t].is_nan(), "block {block} thread {t} read its copy before the wait: {}", o[t]);
                assert_eq!(o[64 + t], own[t], "block {block} thread {t}: its own copy after the wait");
                if t / 32 == first_warp {
                    assert_ne!(o[128 + t], other, "block {block} thread {t} ran first yet read the other warp's copy");
                } else {
                    assert_eq!(o[128 + t], other, "block {block} thread {t} ran second");
                }
                assert_eq!(o[192 + t], other, "block {block} thread {t}: the other warp's copy after the barrier");
            }
        }
    }

    /// Launches kernels/emulator/selftest.cpp's wgmma product on `threads`
    /// threads in `mode` (see there); each thread's 32 accumulators.
    fn wgmma_product(mode: i32, threads: u32) -> Result<Vec<f32>> {
        let mut out = vec![0f32; 128 * 32];
        let (mut ptr, shared, mut mode) = (out.as_mut_ptr() as u64, if mode == 5 { 2048 } else { 0 }, mode);
        let mut params = [&mut ptr as *mut u64 as *mut c_void, &mut mode as *mut i32 as *mut c_void];
        Emulator::new(1).launch("emu_selftest_wgmma_product", (1, 1, 1), (threads, 1, 1), shared, &mut params, &[8, 4])?;
        Ok(out)
    }

    /// Dynamic shared memory: the launch's bytes, poisoned at each block's
    /// start like the static storage, shared by the block's threads; more
    /// than a block may have (227 KB) is refused.
    #[test]
    fn dynamic_shared_memory_is_the_blocks_and_poisoned() {
        let mut out = vec![0f32; 2 * 64];
        let mut ptr = out.as_mut_ptr() as u64;
        let mut params = [&mut ptr as *mut u64 as *mut c_void];
        Emulator::new(1).launch("emu_selftest_dynamic_shared", (2, 1, 1), (32, 1, 1), 128, &mut params, &[8]).unwrap();
        for block in 0..2 {
            for t in 0..32 {
                assert_eq!(out[64 * block + t].to_bits(), u32::MAX, "block {block} thread {t} found no poison");
                assert_eq!(out[64 * block + 32 + t], ((t + 1) % 32) as f32, "block {block} thread {t}: its neighbour's write");
            }
        }
        let err = Emulator::new(1).launch("emu_selftest_dynamic_shared", (1, 1, 1), (32, 1, 1), 228 << 10, &mut params, &[8]).unwrap_err().to_string();
        assert!(err.contains("launch refused: more dynamic shared memory"), "{err}");
    }

    /// The emulated wgmma computes A·B with kernels/wgmma.cuh's documented
    /// layouts (PTX ISA): thread t's accumulator 4i + e is D[16·(t/32) +
    /// (t%32)/4 + 8·(e/2)][8i + 2·(t%4) + e%2], A in mma.sync's fragments,
    /// B (MN-major, unswizzled) element (k, n) at (n/8)·SBO + (k/8)·LBO +
    /// (k%8)·16 + (n%8)·2 bytes. (Whether a GPU agrees only a GPU can say:
    /// the tuning alternative attn_forward=wgmma's op tests.)
    #[test]
    fn a_wgmma_product_follows_the_documented_fragments_and_descriptors() {
        let out = wgmma_product(0, 128).unwrap();
        assert_eq!(wgmma_product(5, 128).unwrap(), out, "B in dynamic shared memory");
        for t in 0..128 {
            for j in 0..32 {
                let (i, e) = (j / 4, j % 4);
                let (row, col) = (16 * (t / 32) + t % 32 / 4 + 8 * (e / 2), 8 * i + 2 * (t % 4) + e % 2);
                let expected: i32 = (0..16).map(|k| ((3 * row + k) % 7 - 3) as i32 * ((k + col) % 5 - 2) as i32).sum();
                assert_eq!(out[32 * t + j], expected as f32, "thread {t} accumulator {j} (row {row}, column {col})");
            }
        }
    }

    /// wgmma is asynchronous: its accumulators hold NaN until the wait. It
    /// takes a whole warpgroup, a wgmma fence before it, shared memory
    /// that `cp.async` wrote fenced for it (fence.proxy.async), and operands
    /// every thread wrote before the first issue (a barrier), or the launch
    /// fails.
    #[test]
    fn wgmma_accumulators_are_nan_until_the_wait_and_misuse_fails_the_launch() {
        assert!(wgmma_product(1, 128).unwrap().iter().all(|v| v.is_nan()));
        let err = wgmma_product(2, 128).unwrap_err().to_string();
        assert!(err.contains("no fence.proxy.async"), "{err}");
        let err = wgmma_product(0, 64).unwrap_err().to_string();
        assert!(err.contains("whole warpgroups"), "{err}");
        let err = wgmma_product(3, 128).unwrap_err().to_string();
        assert!(err.contains("no wgmma.fence"), "{err}");
        let err = wgmma_product(4, 128).unwrap_err().to_string();
        assert!(err.contains("operand changed between its first issue and the wait"), "{err}");
    }
}
