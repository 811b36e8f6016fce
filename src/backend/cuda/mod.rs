//! The CUDA backend: the op set on one GPU, f32 buffers, kernels from
//! `kernels/*.cu` (compiled by build.rs) and cuBLAS for matrix products.
//! Each method checks shapes on the host, then launches; launches are
//! asynchronous and a failure surfaces at the next download or `sync`.
//!
//! The device is a `Driver`: a real GPU (`nvidia`) or the kernel emulator
//! (`emulator`: the same kernels compiled for the host), on which the tests
//! check every launcher and kernel against the CPU reference.
//!
//! Status: compiled (nvcc + ptxas for sm_80 and sm_90a) and tested on the
//! emulator, not yet run on a GPU: until `scripts/gpu-check` has run on one,
//! GPU behaviour and speed are unverified.

mod buffer;
mod driver;
#[cfg(hhi_emu)]
mod emulator;
mod gemm;
pub mod kernels;
mod nvidia;
mod runtime;

pub use buffer::{CuView, CuViewMut, DeviceBuf};
pub use driver::DeviceInfo;
pub use nvidia::check_libraries;

use super::{AdamW, AttnShape, Backend, DecaySegment, Gemm};
use crate::Result;
use driver::Driver;
use runtime::{KernelArg, Runtime};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

pub struct Cuda {
    rt: Runtime,
    /// One float for reductions read back by the host (Σx²).
    scalar: Mutex<DeviceBuf<f32>>,
    /// The AdamW decay segments as (offset, len, decay) triples, uploaded
    /// once and reused while the segment list stays the same.
    segments: Mutex<Option<(Vec<DecaySegment>, DeviceBuf<i64>)>>,
}

/// Token ids (or targets, or positions) on the device.
pub type DeviceIds = DeviceBuf<i32>;

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
}
impl KernelArg for AttnShapeC {}

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

const ATTN_WARPS: u32 = 8;

/// Opens `cuda:0` when this machine can run CUDA, or says why not (for tests
/// and scripts that skip GPU work with a reason).
pub fn try_default() -> std::result::Result<Cuda, String> {
    Cuda::new(0).map_err(|e| e.to_string())
}

impl Cuda {
    /// Opens `cuda:ordinal`: a clear error, never a panic, when the machine has
    /// no driver, no cuBLAS, no such device, or this build has no kernels.
    pub fn new(ordinal: usize) -> Result<Self> {
        Self::on(Arc::new(nvidia::Nvidia::open(ordinal)?))
    }

    /// The same backend on the kernel emulator (host threads), where this
    /// build has one (build.rs compiles it when a C++20 compiler is present).
    pub fn emulated() -> std::result::Result<Self, String> {
        #[cfg(hhi_emu)]
        return Self::on(Arc::new(emulator::Emulator::new())).map_err(|e| e.to_string());
        #[cfg(not(hhi_emu))]
        Err("this build has no kernel emulator (build.rs could not compile it: see its cargo warning)".into())
    }

    fn on(driver: Arc<dyn Driver>) -> Result<Self> {
        let rt = Runtime::new(driver);
        let scalar = alloc::<f32>(&rt, 1)?;
        Ok(Cuda { rt, scalar: Mutex::new(scalar), segments: Mutex::new(None) })
    }

    pub fn info(&self) -> &DeviceInfo {
        self.rt.info()
    }

    fn elementwise(&self, name: &'static str, n: usize, args: &[&dyn KernelArg]) {
        self.rt.launch_1d(name, n, args)
    }

    /// Blocks of (32 columns × 8 row lanes) for column sums over `rows` rows,
    /// with rows split so the grid fills the device.
    fn column_sum_launch(&self, name: &'static str, rows: usize, cols: usize, args: &[&dyn KernelArg]) {
        let col_blocks = cols.div_ceil(32).max(1);
        let wanted = (4 * self.info().multiprocessors as usize).div_ceil(col_blocks);
        let row_splits = wanted.clamp(1, rows.div_ceil(64).max(1));
        self.rt.launch(name, (col_blocks as u32, row_splits as u32, 1), (32, 8, 1), args);
    }

    fn attention_launch(&self, pass: AttnPass, rows: usize, s: &AttnShape, args: &[&dyn KernelArg]) {
        match attention_kernel(pass, s.head_dim) {
            Some(name) => self.rt.launch(name, ((rows as u32).div_ceil(ATTN_WARPS), s.heads as u32, s.batch as u32), (32 * ATTN_WARPS, 1, 1), args),
            None => self.rt.record(format!("attention: head_dim {} is over the CUDA kernels' limit of 128", s.head_dim)),
        }
    }
}

#[derive(Clone, Copy)]
enum AttnPass {
    Forward,
    /// dQ: a warp per query.
    BackwardQuery,
    /// dK, dV: a warp per key.
    BackwardKey,
}

/// The attention kernel instantiated for the smallest head-size bound that fits.
fn attention_kernel(pass: AttnPass, head_dim: usize) -> Option<&'static str> {
    use AttnPass::*;
    Some(match (pass, head_dim) {
        (Forward, 0..=32) => "attention_forward_d32_f32",
        (Forward, 33..=64) => "attention_forward_d64_f32",
        (Forward, 65..=128) => "attention_forward_d128_f32",
        (BackwardQuery, 0..=32) => "attention_backward_query_d32_f32",
        (BackwardQuery, 33..=64) => "attention_backward_query_d64_f32",
        (BackwardQuery, 65..=128) => "attention_backward_query_d128_f32",
        (BackwardKey, 0..=32) => "attention_backward_key_d32_f32",
        (BackwardKey, 33..=64) => "attention_backward_key_d64_f32",
        (BackwardKey, 65..=128) => "attention_backward_key_d128_f32",
        _ => return None,
    })
}

/// `len` zeroed values of `T` (CUDA cannot allocate 0 bytes: an empty buffer
/// holds one unused slot).
fn alloc<T>(rt: &Runtime, len: usize) -> Result<DeviceBuf<T>> {
    let ptr = rt.driver.alloc(len.max(1) * std::mem::size_of::<T>())?;
    Ok(DeviceBuf { ptr, len, driver: rt.driver.clone(), kind: PhantomData })
}

fn upload<T: bytemuck::Pod>(rt: &Runtime, host: &[T]) -> Result<DeviceBuf<T>> {
    let buf = alloc::<T>(rt, host.len())?;
    rt.driver.upload(buf.ptr, bytemuck::cast_slice(host))?;
    Ok(buf)
}

fn shape_c(s: &AttnShape) -> AttnShapeC {
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
    }
}

impl Backend for Cuda {
    type Buf = DeviceBuf<f32>;
    type View<'a> = CuView<'a>;
    type ViewMut<'a> = CuViewMut<'a>;
    type Ids = DeviceIds;

    fn name(&self) -> String {
        let i = self.info();
        format!("cuda:{} ({}, compute capability {}.{})", i.ordinal, i.name, i.compute_capability.0, i.compute_capability.1)
    }
    fn synchronize(&self) -> Result<()> {
        self.rt.sync()
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        Some(self.info().peak_bandwidth).filter(|&b| b > 0.0)
    }

    fn zeros(&self, n: usize) -> Result<DeviceBuf<f32>> {
        alloc(&self.rt, n)
    }
    fn upload(&self, host: &[f32]) -> Result<DeviceBuf<f32>> {
        upload(&self.rt, host)
    }
    fn download(&self, v: CuView<'_>) -> Result<Vec<f32>> {
        self.rt.sync()?;
        let mut host = vec![0f32; v.len];
        if v.len > 0 {
            self.rt.driver.download(bytemuck::cast_slice_mut(&mut host), v.ptr)?;
        }
        Ok(host)
    }
    fn upload_ids(&self, host: &[i32]) -> Result<DeviceIds> {
        upload(&self.rt, host)
    }
    fn fill(&self, v: CuViewMut<'_>, value: f32) {
        self.elementwise("fill_f32", v.len, &[&v.ptr, &value, &(v.len as i64)]);
    }
    fn copy_rows(&self, dst: CuViewMut<'_>, dst_stride: usize, src: CuView<'_>, src_stride: usize, rows: usize, width: usize) {
        if rows > 0 {
            assert!(dst.len >= (rows - 1) * dst_stride + width && src.len >= (rows - 1) * src_stride + width, "copy_rows: views too small");
        }
        self.elementwise("copy_rows_f32", rows * width, &[&dst.ptr, &(dst_stride as i64), &src.ptr, &(src_stride as i64), &(rows as i64), &(width as i64)]);
    }

    fn view(b: &DeviceBuf<f32>) -> CuView<'_> {
        CuView::of(b)
    }
    fn view_mut(b: &mut DeviceBuf<f32>) -> CuViewMut<'_> {
        CuViewMut::of(b)
    }
    fn slice<'a>(v: Self::View<'a>, offset: usize, len: usize) -> Self::View<'a> {
        v.slice(offset, len)
    }
    fn split_mut<'a>(v: Self::ViewMut<'a>, at: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        v.split_at(at)
    }
    fn reborrow<'a, 'b>(v: &'b mut CuViewMut<'a>) -> CuViewMut<'b> {
        v.reborrow()
    }

    fn matmul(&self, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
        gemm::matmul(&self.rt, out, a, b, bias, g)
    }
    fn bias_backward(&self, dbias: CuViewMut<'_>, dout: CuView<'_>, rows: usize, n: usize) {
        assert!(dbias.len >= n && dout.len >= rows * n, "bias_backward: views too small");
        if rows > 0 && n > 0 {
            self.column_sum_launch("bias_backward_f32", rows, n, &[&dbias.ptr, &dout.ptr, &(rows as i32), &(n as i32)]);
        }
    }

    fn add(&self, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>) {
        assert!(a.len >= out.len && b.len >= out.len, "add: inputs shorter than the output");
        self.elementwise("add_f32", out.len, &[&out.ptr, &a.ptr, &b.ptr, &(out.len as i64)]);
    }
    fn add_assign(&self, dst: CuViewMut<'_>, src: CuView<'_>) {
        assert!(src.len >= dst.len, "add_assign: source shorter than the destination");
        self.elementwise("add_assign_f32", dst.len, &[&dst.ptr, &src.ptr, &(dst.len as i64)]);
    }
    fn gelu_forward(&self, out: CuViewMut<'_>, inp: CuView<'_>) {
        assert!(inp.len >= out.len, "gelu_forward: input shorter than the output");
        self.elementwise("gelu_forward_f32", out.len, &[&out.ptr, &inp.ptr, &(out.len as i64)]);
    }
    fn gelu_backward(&self, dinp: CuViewMut<'_>, inp: CuView<'_>, dout: CuView<'_>) {
        assert!(inp.len >= dinp.len && dout.len >= dinp.len, "gelu_backward: inputs shorter than the output");
        self.elementwise("gelu_backward_f32", dinp.len, &[&dinp.ptr, &inp.ptr, &dout.ptr, &(dinp.len as i64)]);
    }

    fn layernorm_forward(&self, out: CuViewMut<'_>, mean: CuViewMut<'_>, rstd: CuViewMut<'_>, inp: CuView<'_>, w: CuView<'_>, b: CuView<'_>, rows: usize, c: usize, eps: f32) {
        assert!(out.len >= rows * c && inp.len >= rows * c && mean.len >= rows && rstd.len >= rows && w.len >= c && b.len >= c, "layernorm_forward: views too small");
        self.rt.launch("layernorm_forward_f32", ((rows as u32).div_ceil(8).max(1), 1, 1), (256, 1, 1), &[&out.ptr, &mean.ptr, &rstd.ptr, &inp.ptr, &w.ptr, &b.ptr, &(rows as i32), &(c as i32), &eps]);
    }
    fn layernorm_backward(
        &self,
        dinp: CuViewMut<'_>,
        dw: CuViewMut<'_>,
        db: CuViewMut<'_>,
        dout: CuView<'_>,
        inp: CuView<'_>,
        w: CuView<'_>,
        mean: CuView<'_>,
        rstd: CuView<'_>,
        rows: usize,
        c: usize,
    ) {
        assert!(dinp.len >= rows * c && dout.len >= rows * c && inp.len >= rows * c && dw.len >= c && db.len >= c && mean.len >= rows && rstd.len >= rows);
        if rows == 0 || c == 0 {
            return;
        }
        let (rows_i, c_i) = (rows as i32, c as i32);
        self.rt.launch("layernorm_backward_input_f32", ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &[&dinp.ptr, &dout.ptr, &inp.ptr, &w.ptr, &mean.ptr, &rstd.ptr, &rows_i, &c_i]);
        self.column_sum_launch("layernorm_backward_params_f32", rows, c, &[&dw.ptr, &db.ptr, &dout.ptr, &inp.ptr, &mean.ptr, &rstd.ptr, &rows_i, &c_i]);
    }

    fn embedding_forward(&self, out: CuViewMut<'_>, ids: &DeviceIds, pos: &DeviceIds, wte: CuView<'_>, wpe: CuView<'_>, c: usize) {
        let rows = ids.len();
        assert!(pos.len() >= rows && out.len >= rows * c, "embedding_forward: views too small");
        self.elementwise("embedding_forward_f32", rows * c, &[&out.ptr, &ids.address(), &pos.address(), &wte.ptr, &wpe.ptr, &(rows as i32), &(c as i32)]);
    }
    fn embedding_backward(&self, dwte: CuViewMut<'_>, dwpe: CuViewMut<'_>, dout: CuView<'_>, ids: &DeviceIds, pos: &DeviceIds, c: usize) {
        let rows = ids.len();
        assert!(pos.len() >= rows && dout.len >= rows * c, "embedding_backward: views too small");
        self.elementwise("embedding_backward_f32", rows * c, &[&dwte.ptr, &dwpe.ptr, &dout.ptr, &ids.address(), &pos.address(), &(rows as i32), &(c as i32)]);
    }

    fn attention_forward(&self, out: CuViewMut<'_>, lse: CuViewMut<'_>, q: CuView<'_>, k: CuView<'_>, v: CuView<'_>, key_mask: Option<CuView<'_>>, s: &AttnShape) {
        assert!(out.len >= s.batch * s.q_len * s.heads * s.head_dim && lse.len >= s.batch * s.heads * s.q_len, "attention_forward: outputs too small");
        if s.batch * s.heads * s.q_len == 0 {
            return;
        }
        let mask = key_mask.map_or(0u64, |m| m.ptr);
        self.attention_launch(AttnPass::Forward, s.q_len, s, &[&out.ptr, &lse.ptr, &q.ptr, &k.ptr, &v.ptr, &mask, &shape_c(s)]);
    }
    fn attention_backward(&self, dqkv: CuViewMut<'_>, dout: CuView<'_>, qkv: CuView<'_>, out: CuView<'_>, lse: CuView<'_>, key_mask: Option<CuView<'_>>, s: &AttnShape) {
        assert!(s.q_len == s.kv_len && s.kv_len == s.kv_cap, "attention_backward expects fused self-attention");
        assert!(dqkv.len >= s.batch * s.q_len * s.q_stride && qkv.len >= dqkv.len, "attention_backward: views too small");
        if s.batch * s.heads * s.q_len == 0 {
            return;
        }
        let mask = key_mask.map_or(0u64, |m| m.ptr);
        let shape = shape_c(s);
        let args: [&dyn KernelArg; 7] = [&dqkv.ptr, &dout.ptr, &qkv.ptr, &out.ptr, &lse.ptr, &mask, &shape];
        self.attention_launch(AttnPass::BackwardQuery, s.q_len, s, &args);
        self.attention_launch(AttnPass::BackwardKey, s.kv_len, s, &args);
    }

    fn softmax_cross_entropy(&self, losses: CuViewMut<'_>, logits: CuViewMut<'_>, targets: &DeviceIds, rows: usize, vocab: usize, grad_scale: Option<f32>) {
        assert!(losses.len >= rows && logits.len >= rows * vocab && targets.len() >= rows, "softmax_cross_entropy: views too small");
        if rows == 0 {
            return;
        }
        let block = vocab.next_multiple_of(32).clamp(32, 1024) as u32;
        let (g, want) = (grad_scale.unwrap_or(0.0), grad_scale.is_some() as i32);
        self.rt.launch("softmax_cross_entropy_f32", (rows as u32, 1, 1), (block, 1, 1), &[&losses.ptr, &logits.ptr, &targets.address(), &(vocab as i32), &g, &want]);
    }

    fn sum_squares(&self, v: CuView<'_>) -> f32 {
        let scalar = self.scalar.lock().unwrap();
        if let Err(e) = self.rt.driver.zero(scalar.address(), 4) {
            self.rt.record(e);
        }
        self.elementwise("sum_squares_f32", v.len, &[&scalar.address(), &v.ptr, &(v.len as i64)]);
        match self.download(CuView::of(&scalar)) {
            Ok(x) => x[0],
            Err(_) => f32::NAN, // the error stays recorded for the next fallible call
        }
    }
    fn adamw(&self, params: CuViewMut<'_>, grads: CuView<'_>, m: CuViewMut<'_>, v: CuViewMut<'_>, segments: &[DecaySegment], h: &AdamW, step: u64, grad_scale: f32) {
        let n = params.len;
        assert!(grads.len >= n && m.len >= n && v.len >= n, "adamw: buffers of different lengths");
        let mut cached = self.segments.lock().unwrap();
        if cached.as_ref().is_none_or(|(segs, _)| segs != segments) {
            let mut sorted = segments.to_vec();
            sorted.sort_by_key(|s| s.offset);
            let table: Vec<i64> = sorted.iter().flat_map(|s| [s.offset as i64, s.len as i64, s.decay as i64]).collect();
            match upload(&self.rt, &table) {
                Ok(dev) => *cached = Some((segments.to_vec(), dev)),
                Err(e) => return self.rt.record(e),
            }
        }
        let table = &cached.as_ref().unwrap().1;
        let (b1, b2) = (h.beta1 as f64, h.beta2 as f64);
        let a = AdamStep {
            step_size: (h.lr as f64 / (1.0 - b1.powi(step as i32))) as f32,
            one_minus_b1: (1.0 - b1) as f32,
            b2: b2 as f32,
            one_minus_b2: (1.0 - b2) as f32,
            bc2_sqrt: (1.0 - b2.powi(step as i32)).sqrt() as f32,
            eps: h.eps,
            shrink: (1.0 - h.lr as f64 * h.weight_decay as f64) as f32,
            grad_scale,
        };
        self.elementwise("adamw_f32", n, &[&params.ptr, &grads.ptr, &m.ptr, &v.ptr, &table.address(), &(segments.len() as i32), &(n as i64), &a]);
    }
}
