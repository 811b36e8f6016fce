//! The CUDA backend: the op set on one device, in f32 or bf16 (f32 master
//! weights, moments, gradients and statistics), with kernels from
//! `kernels/*.cu` (compiled by build.rs) and cuBLAS for matrix products.
//! Each op checks shapes and element types on the host, then launches;
//! launches are asynchronous and a failure surfaces at the next download or
//! `synchronize`.
//!
//! The device is a `Driver`: a real GPU (`nvidia`) or the kernel emulator
//! (`emulator`: the same kernels compiled for the host), on which the tests
//! check every launcher and kernel against the CPU reference.
//!
//! Status: compiled (nvcc + ptxas for sm_80 and sm_90a) and tested on the
//! emulator on every change; run on H100 and H200 GPUs by
//! `scripts/gpu-check` (every op and fixture against the CPU, last on
//! 2026-11-26): a kernel changed since is verified only on the emulator
//! until the next GPU run.

mod arena;
mod buffer;
mod driver;
#[cfg(hhi_emu)]
mod emulated_gemm;
#[cfg(hhi_emu)]
mod emulator;
mod gemm;
#[cfg(hhi_emu)]
mod guarded;
pub mod kernels;
mod lt;
mod nvidia;
mod ops;
mod runtime;
mod select;
mod tuning;

pub use buffer::{CuView, CuViewMut, DeviceBuf};
pub use driver::DeviceInfo;
pub use nvidia::check_libraries;

use super::{AttnShape, DecaySegment};
use crate::tensor::DType;
use crate::{Error, Result};
use arena::Arena;
use runtime::{KernelArg, Runtime};
use std::sync::{Arc, Mutex};
use tuning::{AttnBackward, WgmmaForward};

pub struct Cuda {
    rt: Runtime,
    /// Parameters and activations: f32 or bf16.
    dtype: DType,
    /// One float for reductions read back by the host (Σx²).
    scalar: Mutex<DeviceBuf>,
    /// The AdamW decay segments as (offset, len, decay) triples, uploaded
    /// once and reused while the segment list stays the same.
    segments: Mutex<Option<(Vec<DecaySegment>, DeviceBuf)>>,
    /// Token selection's f32 scratch for processed logits, and its i32
    /// staging buffer for per-step inputs and outputs (both grow, never shrink).
    select_work: Mutex<Option<DeviceBuf>>,
    select_io: Mutex<Option<DeviceBuf>>,
    /// Two-launch column sums' per-block partial sums: the fused LayerNorm
    /// backwards' dw/db, `column_sums_launch`'s (grows, never shrinks; ops
    /// on the one stream take turns with it).
    column_partials: Mutex<Option<DeviceBuf>>,
    /// The tensor-core attention backward's per-query Di and lse bases (likewise).
    attn_rows: Mutex<Option<DeviceBuf>>,
    /// The decode attention's per-chunk softmax states (likewise).
    attn_chunks: Mutex<Option<DeviceBuf>>,
    /// Launch shapes (HHI_CUDA_TUNE overrides them in tuning runs).
    tuning: tuning::Tuning,
}

impl Cuda {
    /// Opens `cuda:ordinal` computing in `dtype` (f32 or bf16): a clear error,
    /// never a panic, when the machine has no driver, no cuBLAS, no such
    /// device, or this build has no kernels.
    ///
    /// With `HHI_CUDA_EMULATOR=N` set, `cuda:0` is the kernel emulator
    /// reporting N multiprocessors instead (every kernel run on the host, a
    /// thousand times slower or more): `scripts/gpu-check --dry-run` runs
    /// the GPU check's commands on it, on a machine without a GPU.
    pub fn new(ordinal: usize, dtype: DType) -> Result<Self> {
        if let Some(multiprocessors) = emulator_requested(ordinal)? {
            return Self::emulated_on(dtype, multiprocessors).map_err(Error::Device);
        }
        Self::on(Arena::pooled(Arc::new(nvidia::Nvidia::open(ordinal)?), GPU_MIN_CHUNK), dtype)
    }

    /// The same backend on the kernel emulator (host threads), where this
    /// build has one (build.rs compiles it when a C++20 compiler is present),
    /// each buffer its own allocation ending at a guard page.
    pub fn emulated(dtype: DType) -> std::result::Result<Self, String> {
        Self::emulated_with(dtype, None, 1)
    }

    /// The emulated backend with its buffers carved from chunks of at least
    /// `min_chunk` bytes, as on a GPU (tests of the arena).
    pub fn emulated_pooled(dtype: DType, min_chunk: usize) -> std::result::Result<Self, String> {
        Self::emulated_with(dtype, Some(min_chunk), 1)
    }

    /// The emulated backend reporting `multiprocessors` SMs (one by
    /// default), so that launches sized to fill a device take the many-block
    /// forms they take on a GPU.
    pub fn emulated_on(dtype: DType, multiprocessors: u32) -> std::result::Result<Self, String> {
        Self::emulated_with(dtype, None, multiprocessors)
    }

    #[cfg(hhi_emu)]
    fn emulated_with(dtype: DType, min_chunk: Option<usize>, multiprocessors: u32) -> std::result::Result<Self, String> {
        let driver = Arc::new(emulator::Emulator::new(multiprocessors));
        let arena = match min_chunk {
            Some(bytes) => Arena::pooled(driver, bytes),
            None => Arena::exact(driver),
        };
        Self::on(arena, dtype).map_err(|e| e.to_string())
    }
    #[cfg(not(hhi_emu))]
    fn emulated_with(dtype: DType, _min_chunk: Option<usize>, _multiprocessors: u32) -> std::result::Result<Self, String> {
        Err(format!("this build has no kernel emulator for {dtype} (build.rs could not compile it: see its cargo warning)"))
    }

    /// The same backend with other launch shapes (`HHI_CUDA_TUNE`'s syntax,
    /// e.g. `xent_threads=1024,attn_forward=8x16`): tests run every
    /// alternative a tuning run may pick.
    pub fn with_tuning(mut self, spec: &str) -> Result<Self> {
        self.tuning = tuning::Tuning::parse(spec)?;
        Ok(self)
    }

    fn on(arena: Arena, dtype: DType) -> Result<Self> {
        if !matches!(dtype, DType::F32 | DType::BF16) {
            return Err(Error::Invalid(format!("the CUDA backend computes in f32 or bf16, not {dtype}")));
        }
        let rt = Runtime::new(arena);
        let scalar = alloc(&rt, 1, DType::F32)?;
        let tuning = tuning::Tuning::from_env()?;
        Ok(Cuda {
            rt,
            dtype,
            scalar: Mutex::new(scalar),
            segments: Mutex::new(None),
            select_work: Mutex::new(None),
            select_io: Mutex::new(None),
            column_partials: Mutex::new(None),
            attn_rows: Mutex::new(None),
            attn_chunks: Mutex::new(None),
            tuning,
        })
    }

    pub fn info(&self) -> &DeviceInfo {
        self.rt.info()
    }

    /// Adds column sums of a [rows, n] problem to `outs` (one f32 vector of
    /// n, or two: kernel `op`'s sums a column; kernels/common.cuh's
    /// `column_sums`) in a fixed order, deterministic: `op` (`<op>_vec`
    /// where `vec`: 16-byte packs) sums each split of at least 64 rows, with
    /// enough splits to fill the device, into a row of a scratch, then one
    /// launch adds the rows up; a single split adds its own. `inputs` follow
    /// the kernel's (out0, out1, rows, n, rows_per_split).
    fn column_sums_launch(&self, op: &str, dtype: DType, vec: bool, (rows, n): (usize, usize), outs: (u64, Option<u64>), inputs: &[&dyn KernelArg]) {
        if rows == 0 || n == 0 {
            return;
        }
        let col_blocks = n.div_ceil(if vec { 32 * (16 / dtype.size()) } else { 32 });
        let wanted = (4 * self.info().multiprocessors as usize).div_ceil(col_blocks);
        let rows_per_split = rows.div_ceil(wanted.clamp(1, rows.div_ceil(64)));
        let splits = rows.div_ceil(rows_per_split);
        let name = packed_kernel(op, vec, dtype);
        let (rows_i, n_i, per_i) = (rows as i32, n as i32, rows_per_split as i32);
        let launch = |out0: u64, out1: u64| {
            let mut args: Vec<&dyn KernelArg> = vec![&out0, &out1, &rows_i, &n_i, &per_i];
            args.extend_from_slice(inputs);
            self.rt.launch(&name, (col_blocks as u32, splits as u32, 1), (32, 8, 1), &args);
        };
        if splits == 1 {
            return launch(outs.0, outs.1.unwrap_or(0));
        }
        let sums = if outs.1.is_some() { 2 } else { 1 };
        let Some(partial) = self.grown(&self.column_partials, splits * sums * n, op) else { return };
        launch(partial, 0);
        self.add_partial_rows(partial, splits, n, outs);
    }

    /// The column sums' second launch: adds the `rows` rows of an f32
    /// scratch of partial sums, each [sum 0 | sum 1] when `outs` holds two
    /// vectors of n (as the fused LayerNorm backwards write theirs), else n
    /// wide, to `outs`, in a fixed order (`column_total`).
    fn add_partial_rows(&self, partial: u64, rows: usize, n: usize, outs: (u64, Option<u64>)) {
        let sums = if outs.1.is_some() { 2 } else { 1 };
        let (rows_i, n_i, grid) = (rows as i32, n as i32, ((sums * n).div_ceil(32) as u32, 1, 1));
        match outs.1 {
            Some(out1) => self.rt.launch("layernorm_params_reduce_f32", grid, (32, 32, 1), &[&outs.0, &out1, &partial, &rows_i, &n_i]),
            None => self.rt.launch("column_sums_add_f32", grid, (32, 32, 1), &[&outs.0, &partial, &rows_i, &n_i]),
        }
    }

    /// Launches elementwise op `op` (kernels/elementwise.cu's map_elements)
    /// over `len` elements: its 16-byte form (`<op>_vec`, a thread per pack)
    /// when every address is 16-byte aligned, else its element form.
    fn map_launch(&self, op: &str, dtype: DType, len: usize, addresses: &[u64], args: &[&dyn KernelArg]) {
        let vec = aligned16(addresses);
        let threads = if vec { len.div_ceil(16 / dtype.size()) } else { len };
        self.rt.launch_1d(&packed_kernel(op, vec, dtype), threads, args);
    }

    /// The address of a kept f32 scratch of at least `len` elements, grown
    /// (never shrunk) from `slot`; `None` after recording why it could not
    /// be allocated (the op that asked, `op`, then skips its launches).
    fn grown(&self, slot: &Mutex<Option<DeviceBuf>>, len: usize, op: &str) -> Option<u64> {
        let mut scratch = slot.lock().unwrap();
        if scratch.as_ref().is_none_or(|s| s.len() < len) {
            match alloc(&self.rt, len, DType::F32) {
                Ok(buf) => *scratch = Some(buf),
                Err(e) => {
                    self.rt.record(format!("{op}: {e}"));
                    return None;
                }
            }
        }
        scratch.as_ref().map(|s| s.address())
    }

    /// The forward for fewer than [`MMA_MIN_QUERIES`] queries (decoding
    /// steps): kernels/attention_decode.cu's blocks each take one query and
    /// one chunk of the keys it sees; with several chunks a second launch
    /// merges them. `io` = (out, lse, q, k, v, key mask, bias) addresses.
    fn attention_decode(&self, io: [u64; 7], s: &AttnShape, dtype: DType) {
        let Some(&bound) = [32, 64, 128].iter().find(|&&bound| s.head_dim <= bound) else {
            return self.rt.record(format!("attention: head_dim {} is over the CUDA kernels' limit of 128", s.head_dim));
        };
        let [out, lse, q, k, v, mask, bias] = io;
        let rows = s.batch * s.heads * s.q_len;
        let sms = self.info().multiprocessors as usize;
        // The most keys a query sees: a window bounds them only under the
        // causal mask (without it a query also sees every key after it).
        let most_keys = |len: usize| if s.window > 0 && s.causal { s.window.min(len) } else { len };
        let (chunks, chunk) = decode_chunks(rows, most_keys(s.kv_len), sms);
        // The scratch for the chunks' states is sized for the cache's
        // capacity, so a decoding loop makes it in its first step, if at all.
        let most = decode_chunks(rows, most_keys(s.kv_cap.max(s.kv_len)), sms).0;
        let (mut states, mut accs) = (0u64, 0u64);
        if most > 1 {
            let Some(scratch) = self.grown(&self.attn_chunks, rows * most * (2 + bound), "attention_forward") else { return };
            (states, accs) = (scratch, scratch + (rows * chunks * 2 * 4) as u64);
        }
        let size = dtype.size();
        let vec = bound >= 64 && s.head_dim == bound && aligned16(&[q, k, v]) && (s.q_stride * size).is_multiple_of(16) && (s.kv_stride * size).is_multiple_of(16);
        let name = format!("attention_decode{}_d{bound}_{}", if vec { "_vec" } else { "" }, suffix(dtype));
        let (shape, chunks_i, chunk_i) = (AttnShapeC::from(s), chunks as i32, chunk as i32);
        let args: [&dyn KernelArg; 12] = [&out, &lse, &states, &accs, &q, &k, &v, &mask, &bias, &shape, &chunks_i, &chunk_i];
        self.rt.launch(&name, ((s.q_len * chunks) as u32, s.heads as u32, s.batch as u32), (DECODE_WARPS * 32, 1, 1), &args);
        if chunks > 1 {
            let args: [&dyn KernelArg; 6] = [&out, &lse, &states, &accs, &shape, &chunks_i];
            self.rt.launch(&format!("attention_decode_merge_d{bound}_{}", suffix(dtype)), (rows as u32, 1, 1), (bound as u32, 1, 1), &args);
        }
    }

    /// Whether f32 attention of this shape runs attention_fma.cu's
    /// register-blocked kernels (attention.cu's otherwise).
    fn register_blocked_attention(&self, s: &AttnShape, dtype: DType) -> bool {
        dtype == DType::F32 && s.head_dim <= FMA_ROWS as usize && !self.tuning.attn_f32_warp
    }

    /// The kernel and dynamic shared memory of the one-pass bf16 attention
    /// backward of shape `s`, where the tuning asks for one and the shape
    /// and device allow it (head_dim <= 64): `attn_backward=fused`
    /// (mma.sync) or `wgmma_fused` (sm_90 devices).
    fn fused_attention_backward(&self, s: &AttnShape, dtype: DType) -> Option<(&'static str, u32)> {
        if dtype != DType::BF16 || s.head_dim > 64 {
            return None;
        }
        match self.tuning.attn_backward {
            AttnBackward::Fused => Some(("attention_mma_backward_fused_d64_bf16", MMA_FUSED_BACKWARD_SHARED)),
            AttnBackward::WgmmaFused if self.info().compute_capability.0 == 9 => Some(("attention_wgmma_backward_fused_d64_bf16", WGMMA_FUSED_BACKWARD_SHARED)),
            _ => None,
        }
    }

    /// Launches attention pass `pass` over `rows` (queries, or keys for
    /// `backward_key`): bf16 with at least [`MMA_MIN_QUERIES`] queries takes
    /// the tensor-core kernels (kernels/attention_mma.cu; the forward at
    /// head_dim <= 64 on an sm_90 device with `attn_forward=wgmma|wgmma2|wgmma_overlap`,
    /// kernels/attention_wgmma.cu, the backward there with
    /// `attn_backward=wgmma`, kernels/attention_wgmma_backward.cu), f32 with head_dim
    /// <= 64 the register-blocked ones (kernels/attention_fma.cu; the
    /// forward, too, from 16 queries: fewer take the decode kernel first),
    /// everything else the CUDA-core ones (kernels/attention.cu).
    fn attention_launch(&self, pass: &str, rows: usize, s: &AttnShape, dtype: DType, args: &[&dyn KernelArg]) {
        if self.register_blocked_attention(s, dtype) {
            let grid = ((rows as u32).div_ceil(FMA_ROWS), s.heads as u32, s.batch as u32);
            return self.rt.launch(&format!("attention_fma_{pass}_d64_f32"), grid, (FMA_THREADS, 1, 1), args);
        }
        let mma = dtype == DType::BF16 && (pass != "forward" || s.q_len >= MMA_MIN_QUERIES);
        let hopper = self.info().compute_capability.0 == 9;
        let (bounds, family, warps): (&[usize], _, _) = if mma { (&[64, 128], "attention_mma", MMA_WARPS) } else { (&[32, 64, 128], "attention", ATTN_WARPS) };
        match bounds.iter().find(|&&bound| s.head_dim <= bound) {
            Some(&64) if mma && pass == "forward" && self.tuning.attn_forward_wgmma != WgmmaForward::Off && hopper => {
                let (name, groups) = match self.tuning.attn_forward_wgmma {
                    WgmmaForward::TwoGroups => ("attention_wgmma_forward_2wg_d64_bf16", 2),
                    WgmmaForward::Overlap => ("attention_wgmma_forward_overlap_d64_bf16", 1),
                    _ => ("attention_wgmma_forward_d64_bf16", 1),
                };
                let grid = ((rows as u32).div_ceil(WGMMA_ROWS * groups), s.heads as u32, s.batch as u32);
                self.rt.launch(name, grid, (WARPGROUP * groups, 1, 1), args)
            }
            Some(&64) if mma && pass.starts_with("backward") && self.tuning.attn_backward == AttnBackward::Wgmma && hopper => {
                let grid = ((rows as u32).div_ceil(WGMMA_ROWS), s.heads as u32, s.batch as u32);
                self.rt.launch(&format!("attention_wgmma_{pass}_d64_bf16"), grid, (WARPGROUP, 1, 1), args)
            }
            Some(&bound) => {
                // The tensor-core forward also comes as 8 warps × 16 rows and (d ≤ 64) 4 warps × 32 rows, or 4 × 16 at 4 blocks an SM;
                // the backward passes at 3 blocks an SM.
                let (warps, warp_rows, variant) = match self.tuning.attn_forward {
                    (w, r, b) if mma && pass == "forward" && (w, r, b) != (4, 16, 0) && ((r == 16 && b == 0) || bound == 64) => {
                        (w, r, if b > 0 { format!("_{w}x{r}b{b}") } else { format!("_{w}x{r}") })
                    }
                    _ if mma && pass.starts_with("backward") && self.tuning.attn_backward == AttnBackward::B3 => (warps, 16, "_b3".to_string()),
                    _ => (warps, 16, String::new()),
                };
                let name = format!("{family}_{pass}{variant}_d{bound}_{}", suffix(dtype));
                let rows_per_block = if mma { warp_rows * warps } else { warps };
                self.rt.launch(&name, ((rows as u32).div_ceil(rows_per_block), s.heads as u32, s.batch as u32), (32 * warps, 1, 1), args)
            }
            None => self.rt.record(format!("attention: head_dim {} is over the CUDA kernels' limit of 128", s.head_dim)),
        }
    }
}

/// Chunks of each query's `keys` visible keys for the decode attention over
/// `rows` queries (batch × heads × q_len) on `sms` multiprocessors: enough
/// blocks for 4 an SM, chunks of 64 keys or more (shorter ones would not
/// repay the merge's launch: small decoding steps are bound by the host's
/// launches) and of 256 at most. Returns (chunks, keys a chunk).
fn decode_chunks(rows: usize, keys: usize, sms: usize) -> (usize, usize) {
    let chunks = (4 * sms).div_ceil(rows.max(1)).min(keys.div_ceil(64)).max(keys.div_ceil(256)).max(1);
    (chunks, keys.div_ceil(chunks).max(1))
}

/// The smallest chunk the GPU's arena asks the driver for (arena.rs).
const GPU_MIN_CHUNK: usize = 256 << 20;

/// `HHI_CUDA_EMULATOR`'s multiprocessor count, when it is set and not empty:
/// an error for anything but a positive count, or for a device other than cuda:0.
fn emulator_requested(ordinal: usize) -> Result<Option<u32>> {
    let value = std::env::var("HHI_CUDA_EMULATOR").unwrap_or_default();
    if value.is_empty() {
        return Ok(None);
    }
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 && ordinal == 0 => Ok(Some(n)),
        Ok(n) if n > 0 => Err(Error::Device(format!("HHI_CUDA_EMULATOR emulates cuda:0 only, not cuda:{ordinal}"))),
        _ => Err(Error::Invalid(format!("HHI_CUDA_EMULATOR=`{value}`: expected the number of multiprocessors to emulate (e.g. 132)"))),
    }
}

/// Warps per attention block (kernels/attention.cu's WARPS).
const ATTN_WARPS: u32 = 8;
/// Warps per tensor-core attention block, 16 rows each (attention_mma.cu's MMA_WARPS).
const MMA_WARPS: u32 = 4;
/// Query rows a warpgroup (4 warps × 16 rows) of attention_wgmma.cu's forward.
const WGMMA_ROWS: u32 = 64;
/// Threads a warpgroup.
const WARPGROUP: u32 = 128;
/// f32 dQ sums a query row of the one-pass attention backward
/// (kernels/attention_backward.cuh's DQ_ACCUM_COLS).
const DQ_ACCUM_COLS: usize = 64;
/// Keys a block, and threads, of the one-pass backwards (both kernels).
const FUSED_BACKWARD_KEYS: u32 = 64;
const FUSED_BACKWARD_THREADS: u32 = 128;
/// Their dynamic shared memory: dS's 64 × 64 bf16 tile (wgmma), and the
/// block's K rows and dS's tile, rows padded by 8 (mma.sync).
const WGMMA_FUSED_BACKWARD_SHARED: u32 = 64 * 64 * 2;
const MMA_FUSED_BACKWARD_SHARED: u32 = 2 * 64 * (64 + 8) * 2;
/// Queries a block (and keys a tile, and the head_dim bound) of the f32
/// register-blocked attention, and its threads (kernels/attention_fma.cu).
const FMA_ROWS: u32 = 64;
const FMA_THREADS: u32 = 256;
/// Warps per decode attention block (kernels/attention_decode.cu's DECODE_WARPS).
const DECODE_WARPS: u32 = 4;
/// Fewer queries than this (decoding steps) leave a tensor-core tile mostly
/// empty: the forward takes the decode kernel then.
const MMA_MIN_QUERIES: usize = 16;

/// The kernel-name suffix of an element type (`<op>_<suffix>` in kernels/).
fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        other => panic!("no CUDA kernels for {other}"),
    }
}

/// Whether every address can take 16-byte vector accesses (kernels/common.cuh's `Pack`).
fn aligned16(addresses: &[u64]) -> bool {
    addresses.iter().all(|a| a % 16 == 0)
}

/// The name of kernel `op` for element type `dtype`.
fn kernel(op: &str, dtype: DType) -> String {
    format!("{op}_{}", suffix(dtype))
}

/// `op`'s, or with `vec` its 16-byte-pack form's (`<op>_vec`), for `dtype`.
fn packed_kernel(op: &str, vec: bool, dtype: DType) -> String {
    kernel(&format!("{op}{}", if vec { "_vec" } else { "" }), dtype)
}

/// `len` zeroed values of `dtype` (CUDA cannot allocate 0 bytes: an empty
/// buffer holds one unused slot).
fn alloc(rt: &Runtime, len: usize, dtype: DType) -> Result<DeviceBuf> {
    let ptr = rt.arena.alloc(len.max(1) * dtype.size())?;
    Ok(DeviceBuf { ptr, len, dtype, arena: rt.arena.clone() })
}

/// Host values copied as they are (`dtype` says what their bytes are).
fn upload_raw<T: bytemuck::Pod>(rt: &Runtime, host: &[T], dtype: DType) -> Result<DeviceBuf> {
    debug_assert_eq!(std::mem::size_of::<T>(), dtype.size());
    let buf = alloc(rt, host.len(), dtype)?;
    rt.driver.upload(buf.ptr, bytemuck::cast_slice(host))?;
    Ok(buf)
}

/// Attention geometry as the kernels take it (`struct AttnShape` in
/// kernels/attention.cu; same field order and C layout).
#[repr(C)]
#[derive(Clone, Copy)]
struct AttnShapeC {
    batch: i32,
    heads: i32,
    head_dim: i32,
    q_len: i32,
    kv_len: i32,
    kv_cap: i32,
    q_stride: i64,
    kv_stride: i64,
    causal: i32,
    scale: f32,
    window: i32,
}
impl KernelArg for AttnShapeC {}

impl From<&AttnShape> for AttnShapeC {
    fn from(s: &AttnShape) -> Self {
        AttnShapeC {
            batch: s.batch as i32,
            heads: s.heads as i32,
            head_dim: s.head_dim as i32,
            q_len: s.q_len as i32,
            kv_len: s.kv_len as i32,
            kv_cap: s.kv_cap as i32,
            q_stride: s.q_stride as i64,
            kv_stride: s.kv_stride as i64,
            causal: s.causal as i32,
            scale: s.scale,
            window: s.window as i32,
        }
    }
}

/// `struct AdamStep` in kernels/adamw.cu.
#[repr(C)]
#[derive(Clone, Copy)]
struct AdamStep {
    step_size: f32,
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    bc2_sqrt: f32,
    eps: f32,
    shrink: f32,
    grad_scale: f32,
}
impl KernelArg for AdamStep {}

#[cfg(test)]
mod tests {
    use super::decode_chunks;

    #[test]
    fn decode_chunks_fill_the_device_within_their_bounds() {
        // GPT-Neo 1.3B decoding on an H100 (132 SMs), 448 cached keys: 32
        // sequences × 16 heads already fill it; one sequence takes 64-key chunks.
        assert_eq!(decode_chunks(512, 448, 132), (2, 224));
        assert_eq!(decode_chunks(16, 448, 132), (7, 64));
        // Few keys stay one chunk (GPT-2 at batch 1, 80 cached); many are cut to at most 256 a chunk.
        assert_eq!(decode_chunks(12, 64, 132), (1, 64));
        assert_eq!(decode_chunks(12, 80, 132), (2, 40));
        assert_eq!(decode_chunks(4096, 2048, 132), (8, 256));
        assert_eq!(decode_chunks(4, 0, 1), (1, 1));
        // More keys never take fewer chunks (the scratch is sized for the cache's capacity).
        for keys in 0..3000 {
            assert!(decode_chunks(40, keys, 132).0 <= decode_chunks(40, keys + 1, 132).0);
        }
    }
}
