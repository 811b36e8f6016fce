//! The op set on the CUDA backend: host-side checks of lengths and element
//! types (a mismatch is a bug in a model graph, so it panics like an
//! out-of-range slice on the CPU), then the launch.

use super::buffer::{CuView, CuViewMut, DeviceBuf};
use super::runtime::KernelArg;
use super::tuning::LnBackward;
use super::{
    aligned16, alloc, gemm, kernel, packed_kernel, suffix, upload_raw, AdamStep, AttnShapeC, Cuda, DQ_ACCUM_COLS, FUSED_BACKWARD_KEYS, FUSED_BACKWARD_THREADS, MMA_MIN_QUERIES,
};
use crate::backend::{check_write_len, unfused, Act, AdamW, AttnGrads, AttnInputs, AttnShape, Backend, DecaySegment, Gemm, MemoryStats};
use crate::generate::candidates::BeamPlan;
use crate::generate::TokenPlan;
use crate::tensor::DType;
use crate::Result;
use half::bf16;

/// Rows of at most this many columns take the LayerNorm kernels that keep
/// rows in registers (kernels/layernorm.cu's LN_*_CACHED_MAX_C); wider rows
/// the general forward, and up to LN_FUSED_MAX_C the fused backward, beyond
/// it the two-kernel one.
const LN_FORWARD_CACHED_MAX_C: usize = 1024;
const LN_BACKWARD_CACHED_MAX_C: usize = 768;
const LN_FUSED_MAX_C: usize = 2048;

/// Whether rows of `len` elements of `dtype` starting at each address can
/// move as 16-byte packs (the kernels' `_vec` forms): every address 16-byte
/// aligned and `len` a whole number of packs, so every row stays aligned.
fn packs_fit(dtype: DType, len: usize, addresses: &[u64]) -> bool {
    len.is_multiple_of(16 / dtype.size()) && aligned16(addresses)
}

/// `op` with the `_cached` (rows in registers) or `_cached_vec` (and 16-byte packs) suffix.
fn cached_kernel(op: &str, vec: bool, dtype: DType) -> String {
    kernel(&format!("{op}_cached{}", if vec { "_vec" } else { "" }), dtype)
}

/// The rows a fused residual add reads besides `delta`: `x`'s, or in place
/// (no `x`) `res`'s own, which the kernels read where they write them.
/// Checks the four row views (`n` values of `out`'s type each).
fn residual_input(op: &str, res: &CuViewMut<'_>, out: &CuViewMut<'_>, x: Option<CuView<'_>>, delta: &CuView<'_>, n: usize) -> u64 {
    let (ptr, len, dtype) = x.map_or((res.ptr, res.len, res.dtype), |x| (x.ptr, x.len, x.dtype));
    expect(op, &[("res", res.dtype, out.dtype), ("x", dtype, out.dtype), ("delta", delta.dtype, out.dtype)]);
    assert!(res.len >= n && out.len >= n && len >= n && delta.len >= n, "{op}: views too small");
    ptr
}

/// Asserts that each named view has the element type the op expects.
fn expect(op: &str, views: &[(&str, DType, DType)]) {
    for &(name, got, want) in views {
        assert!(got == want, "{op}: `{name}` is {got}, expected {want}");
    }
}

impl Backend for Cuda {
    type Buf = DeviceBuf;
    type View<'a> = CuView<'a>;
    type ViewMut<'a> = CuViewMut<'a>;
    type Ids = DeviceBuf;

    fn name(&self) -> String {
        let i = self.info();
        format!("cuda:{} ({}, compute capability {}.{}, {})", i.ordinal, i.name, i.compute_capability.0, i.compute_capability.1, self.dtype)
    }
    fn synchronize(&self) -> Result<()> {
        self.rt.sync()
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        Some(self.info().peak_bandwidth).filter(|&b| b > 0.0)
    }
    fn memory(&self) -> Option<MemoryStats> {
        Some(self.rt.arena.stats())
    }
    fn compute_dtype(&self) -> DType {
        self.dtype
    }

    // ---- memory -------------------------------------------------------------
    fn zeros(&self, n: usize) -> Result<DeviceBuf> {
        alloc(&self.rt, n, self.dtype)
    }
    fn zeros_f32(&self, n: usize) -> Result<DeviceBuf> {
        alloc(&self.rt, n, DType::F32)
    }
    fn upload(&self, host: &[f32]) -> Result<DeviceBuf> {
        match self.dtype {
            DType::BF16 => upload_raw(&self.rt, &host.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>(), DType::BF16),
            _ => self.upload_f32(host),
        }
    }
    fn upload_f32(&self, host: &[f32]) -> Result<DeviceBuf> {
        upload_raw(&self.rt, host, DType::F32)
    }
    fn download(&self, v: CuView<'_>) -> Result<Vec<f32>> {
        self.rt.sync()?;
        if v.len == 0 {
            return Ok(Vec::new());
        }
        match v.dtype {
            DType::BF16 => {
                let mut raw = vec![bf16::ZERO; v.len];
                self.rt.driver.download(bytemuck::cast_slice_mut(&mut raw), v.ptr)?;
                Ok(raw.into_iter().map(f32::from).collect())
            }
            _ => {
                let mut host = vec![0f32; v.len];
                self.rt.driver.download(bytemuck::cast_slice_mut(&mut host), v.ptr)?;
                Ok(host)
            }
        }
    }
    fn upload_ids(&self, host: &[i32]) -> Result<DeviceBuf> {
        upload_raw(&self.rt, host, DType::I32)
    }
    fn write(&self, dst: CuViewMut<'_>, host: &[f32]) -> Result<()> {
        check_write_len(dst.len, host.len())?;
        match dst.dtype {
            DType::BF16 => self.rt.driver.upload(dst.ptr, bytemuck::cast_slice(&host.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>())),
            _ => self.rt.driver.upload(dst.ptr, bytemuck::cast_slice(host)),
        }
    }
    fn write_ids(&self, dst: &mut DeviceBuf, host: &[i32]) -> Result<()> {
        check_write_len(dst.len(), host.len())?;
        self.rt.driver.upload(dst.address(), bytemuck::cast_slice(host))
    }
    fn fill(&self, v: CuViewMut<'_>, value: f32) {
        self.rt.launch_1d(&kernel("fill", v.dtype), v.len, &[&v.ptr, &value, &(v.len as i64)]);
    }
    fn copy_rows(&self, dst: CuViewMut<'_>, dst_stride: usize, src: CuView<'_>, src_stride: usize, rows: usize, width: usize) {
        expect("copy_rows", &[("src", src.dtype, dst.dtype)]);
        if rows > 0 {
            assert!(dst.len >= (rows - 1) * dst_stride + width && src.len >= (rows - 1) * src_stride + width, "copy_rows: views too small");
        }
        let args: [&dyn KernelArg; 6] = [&dst.ptr, &(dst_stride as i64), &src.ptr, &(src_stride as i64), &(rows as i64), &(width as i64)];
        self.rt.launch_1d(&kernel("copy_rows", dst.dtype), rows * width, &args);
    }
    fn gather_rows(&self, dst: CuViewMut<'_>, dst_stride: usize, src: CuView<'_>, src_stride: usize, index: &DeviceBuf, rows: usize, width: usize) {
        expect("gather_rows", &[("src", src.dtype, dst.dtype), ("index", index.dtype(), DType::I32)]);
        assert!(index.len() >= rows, "gather_rows: {} indices for {rows} rows", index.len());
        if rows > 0 {
            assert!(dst.len >= (rows - 1) * dst_stride + width, "gather_rows: destination too small");
        }
        // Whole 16-byte packs when every row starts aligned and is whole packs long.
        let per_pack = 16 / dst.dtype.size();
        let packed = aligned16(&[dst.ptr, src.ptr]) && [dst_stride, src_stride, width].iter().all(|n| n % per_pack == 0);
        let (name, unit) = if packed { ("gather_rows_packs".to_string(), per_pack) } else { (kernel("gather_rows", dst.dtype), 1) };
        let args: [&dyn KernelArg; 7] =
            [&dst.ptr, &((dst_stride / unit) as i64), &src.ptr, &((src_stride / unit) as i64), &index.address(), &(rows as i64), &((width / unit) as i64)];
        self.rt.launch_1d(&name, rows * width / unit, &args);
    }

    // ---- views ----------------------------------------------------------------
    fn view(b: &DeviceBuf) -> CuView<'_> {
        CuView::of(b)
    }
    fn view_mut(b: &mut DeviceBuf) -> CuViewMut<'_> {
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
    fn freeze<'a>(v: Self::ViewMut<'a>) -> Self::View<'a> {
        v.freeze()
    }
    fn shorten<'a: 'b, 'b>(v: CuView<'a>) -> CuView<'b> {
        v.shorten()
    }

    // ---- linear algebra -------------------------------------------------------
    fn matmul(&self, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
        gemm::matmul(&self.rt, out, a, b, bias, g, self.tuning.gemm_bias_epilogue)
    }
    fn matmul_act(&self, act: Act, mut out: CuViewMut<'_>, mut pre: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
        if !(self.fuses_matmul_act(act) && gemm::matmul_gelu(&self.rt, out.reborrow(), pre.reborrow(), a, b, bias, g)) {
            unfused::matmul_act(self, act, out, pre, a, b, bias, g)
        }
    }
    fn matmul_act_backward(&self, act: Act, mut dpre: CuViewMut<'_>, pre: CuView<'_>, scratch: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, g: Gemm) {
        if !(self.fuses_matmul_act(act) && gemm::matmul_dgelu(&self.rt, dpre.reborrow(), pre, a, b, g)) {
            unfused::matmul_act_backward(self, act, dpre, pre, scratch, a, b, g)
        }
    }
    fn fuses_matmul_act(&self, act: Act) -> bool {
        self.tuning.gemm_gelu_epilogue && act == Act::GeluTanh
    }
    fn bias_backward(&self, dbias: CuViewMut<'_>, dout: CuView<'_>, rows: usize, n: usize) {
        expect("bias_backward", &[("dbias", dbias.dtype, DType::F32)]);
        assert!(dbias.len >= n && dout.len >= rows * n, "bias_backward: views too small");
        let vec = packs_fit(dout.dtype, n, &[dout.ptr]);
        self.column_sums_launch("bias_backward", dout.dtype, vec, (rows, n), (dbias.ptr, None), &[&dout.ptr]);
    }

    // ---- elementwise ----------------------------------------------------------
    fn add(&self, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>) {
        expect("add", &[("a", a.dtype, out.dtype), ("b", b.dtype, out.dtype)]);
        assert!(a.len >= out.len && b.len >= out.len, "add: inputs shorter than the output");
        self.map_launch("add", out.dtype, out.len, &[out.ptr, a.ptr, b.ptr], &[&out.ptr, &a.ptr, &b.ptr, &(out.len as i64)]);
    }
    fn add_assign(&self, dst: CuViewMut<'_>, src: CuView<'_>) {
        expect("add_assign", &[("src", src.dtype, dst.dtype)]);
        assert!(src.len >= dst.len, "add_assign: source shorter than the destination");
        self.map_launch("add_assign", dst.dtype, dst.len, &[dst.ptr, src.ptr], &[&dst.ptr, &src.ptr, &(dst.len as i64)]);
    }
    fn broadcast_add(&self, dst: CuViewMut<'_>, v: CuView<'_>, rows: usize, width: usize) {
        expect("broadcast_add", &[("v", v.dtype, dst.dtype)]);
        assert!(dst.len >= rows * width && v.len >= width, "broadcast_add: views smaller than {rows} × {width}");
        // The GEMMs' bias kernel, accumulating: dst[r, j] += v[j].
        gemm::broadcast_rows(&self.rt, dst.dtype, dst.ptr, v.ptr, (rows, width, width), true);
    }
    fn mul(&self, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>) {
        expect("mul", &[("a", a.dtype, out.dtype), ("b", b.dtype, out.dtype)]);
        assert!(a.len >= out.len && b.len >= out.len, "mul: inputs shorter than the output");
        self.map_launch("mul", out.dtype, out.len, &[out.ptr, a.ptr, b.ptr], &[&out.ptr, &a.ptr, &b.ptr, &(out.len as i64)]);
    }
    fn scale(&self, v: CuViewMut<'_>, alpha: f32) {
        self.rt.launch_1d(&kernel("scale", v.dtype), v.len, &[&v.ptr, &alpha, &(v.len as i64)]);
    }
    fn activation_forward(&self, act: Act, out: CuViewMut<'_>, inp: CuView<'_>) {
        expect("activation_forward", &[("inp", inp.dtype, out.dtype)]);
        assert!(inp.len >= out.len, "activation_forward: input shorter than the output");
        self.map_launch("activation_forward", out.dtype, out.len, &[out.ptr, inp.ptr], &[&out.ptr, &inp.ptr, &(out.len as i64), &act.code()]);
    }
    fn activation_backward(&self, act: Act, dinp: CuViewMut<'_>, inp: CuView<'_>, dout: CuView<'_>) {
        expect("activation_backward", &[("inp", inp.dtype, dinp.dtype), ("dout", dout.dtype, dinp.dtype)]);
        assert!(inp.len >= dinp.len && dout.len >= dinp.len, "activation_backward: inputs shorter than the output");
        let args: [&dyn KernelArg; 5] = [&dinp.ptr, &inp.ptr, &dout.ptr, &(dinp.len as i64), &act.code()];
        self.map_launch("activation_backward", dinp.dtype, dinp.len, &[dinp.ptr, inp.ptr, dout.ptr], &args);
    }

    // ---- normalisation --------------------------------------------------------
    fn layernorm_forward(&self, out: CuViewMut<'_>, mean: CuViewMut<'_>, rstd: CuViewMut<'_>, inp: CuView<'_>, w: CuView<'_>, b: CuView<'_>, rows: usize, c: usize, eps: f32) {
        let t = out.dtype;
        expect("layernorm_forward", &[("inp", inp.dtype, t), ("w", w.dtype, t), ("b", b.dtype, t), ("mean", mean.dtype, DType::F32), ("rstd", rstd.dtype, DType::F32)]);
        assert!(out.len >= rows * c && inp.len >= rows * c && mean.len >= rows && rstd.len >= rows && w.len >= c && b.len >= c, "layernorm_forward: views too small");
        let args: [&dyn KernelArg; 9] = [&out.ptr, &mean.ptr, &rstd.ptr, &inp.ptr, &w.ptr, &b.ptr, &(rows as i32), &(c as i32), &eps];
        let name =
            if c <= LN_FORWARD_CACHED_MAX_C { cached_kernel("layernorm_forward", packs_fit(t, c, &[out.ptr, inp.ptr, w.ptr, b.ptr]), t) } else { kernel("layernorm_forward", t) };
        self.rt.launch(&name, ((rows as u32).div_ceil(8).max(1), 1, 1), (256, 1, 1), &args);
    }
    fn add_layernorm_forward(
        &self,
        res: CuViewMut<'_>,
        out: CuViewMut<'_>,
        mean: CuViewMut<'_>,
        rstd: CuViewMut<'_>,
        x: Option<CuView<'_>>,
        delta: CuView<'_>,
        w: CuView<'_>,
        b: CuView<'_>,
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        let t = out.dtype;
        let inp = residual_input("add_layernorm_forward", &res, &out, x, &delta, rows * c);
        expect("add_layernorm_forward", &[("w", w.dtype, t), ("b", b.dtype, t), ("mean", mean.dtype, DType::F32), ("rstd", rstd.dtype, DType::F32)]);
        assert!(mean.len >= rows && rstd.len >= rows && w.len >= c && b.len >= c, "add_layernorm_forward: views too small");
        let args: [&dyn KernelArg; 11] = [&res.ptr, &out.ptr, &mean.ptr, &rstd.ptr, &inp, &delta.ptr, &w.ptr, &b.ptr, &(rows as i32), &(c as i32), &eps];
        let name = if c <= LN_FORWARD_CACHED_MAX_C {
            cached_kernel("add_layernorm_forward", packs_fit(t, c, &[res.ptr, out.ptr, inp, delta.ptr, w.ptr, b.ptr]), t)
        } else {
            kernel("add_layernorm_forward", t)
        };
        self.rt.launch(&name, ((rows as u32).div_ceil(8).max(1), 1, 1), (256, 1, 1), &args);
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
        let (t, f) = (dinp.dtype, DType::F32);
        expect(
            "layernorm_backward",
            &[("dout", dout.dtype, t), ("inp", inp.dtype, t), ("w", w.dtype, t), ("dw", dw.dtype, f), ("db", db.dtype, f), ("mean", mean.dtype, f), ("rstd", rstd.dtype, f)],
        );
        assert!(dinp.len >= rows * c && dout.len >= rows * c && inp.len >= rows * c && dw.len >= c && db.len >= c && mean.len >= rows && rstd.len >= rows);
        if rows == 0 || c == 0 {
            return;
        }
        let (rows_i, c_i) = (rows as i32, c as i32);
        if c <= LN_FUSED_MAX_C {
            // Enough blocks to fill the device (each writes its dw/db sums to
            // a row of the scratch), then one pass adds the rows to dw, db.
            let sms = self.info().multiprocessors as usize;
            let vec = packs_fit(t, c, &[dinp.ptr, dout.ptr, inp.ptr, w.ptr]);
            // (kernel, warps a block, blocks an SM: measured on an H100, where the
            // pipelined kernel ran best at 2 of the 4 blocks its resources allow)
            let pipelined = c <= LN_BACKWARD_CACHED_MAX_C && vec && t == DType::BF16;
            let (name, warps, per_sm) = match self.tuning.ln_backward {
                LnBackward::Pipelined if pipelined => ("layernorm_backward_pipelined_bf16".to_string(), 4, 2),
                LnBackward::Pipelined3 if pipelined => ("layernorm_backward_pipelined3_bf16".to_string(), 2, 4),
                LnBackward::Pipelined4 if pipelined => ("layernorm_backward_pipelined4_bf16".to_string(), 2, 4),
                LnBackward::PipelinedAtomic if pipelined => ("layernorm_backward_pipelined_atomic_bf16".to_string(), 4, 2),
                _ if c <= LN_BACKWARD_CACHED_MAX_C => (cached_kernel("layernorm_backward", vec, t), 8, 2),
                _ => (kernel("layernorm_backward_fused", t), 8, 4),
            };
            let per_sm = if self.tuning.ln_backward_blocks_per_sm > 0 { self.tuning.ln_backward_blocks_per_sm as usize } else { per_sm };
            let blocks = rows.div_ceil(warps).min(per_sm * sms).max(1);
            if pipelined && self.tuning.ln_backward == LnBackward::PipelinedAtomic {
                // The blocks add their sums to dw and db themselves: no scratch, no second pass.
                let args: [&dyn KernelArg; 10] = [&dinp.ptr, &dw.ptr, &db.ptr, &dout.ptr, &inp.ptr, &w.ptr, &mean.ptr, &rstd.ptr, &rows_i, &c_i];
                self.rt.launch(&name, (blocks as u32, 1, 1), (32 * warps as u32, 1, 1), &args);
                return;
            }
            let Some(partial) = self.grown(&self.column_partials, blocks * 2 * c, "layernorm_backward") else { return };
            let args: [&dyn KernelArg; 9] = [&dinp.ptr, &partial, &dout.ptr, &inp.ptr, &w.ptr, &mean.ptr, &rstd.ptr, &rows_i, &c_i];
            self.rt.launch(&name, (blocks as u32, 1, 1), (32 * warps as u32, 1, 1), &args);
            // (Summing the blocks' rows inside the kernel instead, measured on
            // an H100 against this launch's 61.5–62%: by the last block of each
            // group of 16 and then the last group, 55%; by the last 96 blocks
            // to arrive, waiting for the rest and each adding 16 columns over
            // all rows with 8 loads a lane in flight, 60.5%. Either way the
            // summing after the last block took ~5 µs, as this launch does:
            // each wait on L2 came to about a microsecond there. Untried: a
            // finisher lane holding all its rows' loads at once.)
            self.add_partial_rows(partial, blocks, c, (dw.ptr, Some(db.ptr)));
            return;
        }
        let args: [&dyn KernelArg; 8] = [&dinp.ptr, &dout.ptr, &inp.ptr, &w.ptr, &mean.ptr, &rstd.ptr, &rows_i, &c_i];
        self.rt.launch(&kernel("layernorm_backward_input", t), ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &args);
        let vec = packs_fit(t, c, &[dout.ptr, inp.ptr]);
        self.column_sums_launch("layernorm_backward_params", t, vec, (rows, c), (dw.ptr, Some(db.ptr)), &[&dout.ptr, &inp.ptr, &mean.ptr, &rstd.ptr]);
    }

    fn rmsnorm_forward(&self, out: CuViewMut<'_>, rstd: CuViewMut<'_>, inp: CuView<'_>, w: CuView<'_>, rows: usize, c: usize, eps: f32) {
        let t = out.dtype;
        expect("rmsnorm_forward", &[("inp", inp.dtype, t), ("w", w.dtype, t), ("rstd", rstd.dtype, DType::F32)]);
        assert!(out.len >= rows * c && inp.len >= rows * c && rstd.len >= rows && w.len >= c, "rmsnorm_forward: views too small");
        let args: [&dyn KernelArg; 7] = [&out.ptr, &rstd.ptr, &inp.ptr, &w.ptr, &(rows as i32), &(c as i32), &eps];
        let name = packed_kernel("rmsnorm_forward", packs_fit(t, c, &[out.ptr, inp.ptr, w.ptr]), t);
        self.rt.launch(&name, ((rows as u32).div_ceil(8).max(1), 1, 1), (256, 1, 1), &args);
    }
    fn add_rmsnorm_forward(
        &self,
        res: CuViewMut<'_>,
        out: CuViewMut<'_>,
        rstd: CuViewMut<'_>,
        x: Option<CuView<'_>>,
        delta: CuView<'_>,
        w: CuView<'_>,
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        let t = out.dtype;
        let inp = residual_input("add_rmsnorm_forward", &res, &out, x, &delta, rows * c);
        expect("add_rmsnorm_forward", &[("w", w.dtype, t), ("rstd", rstd.dtype, DType::F32)]);
        assert!(rstd.len >= rows && w.len >= c, "add_rmsnorm_forward: views too small");
        let args: [&dyn KernelArg; 9] = [&res.ptr, &out.ptr, &rstd.ptr, &inp, &delta.ptr, &w.ptr, &(rows as i32), &(c as i32), &eps];
        let name = packed_kernel("add_rmsnorm_forward", packs_fit(t, c, &[res.ptr, out.ptr, inp, delta.ptr, w.ptr]), t);
        self.rt.launch(&name, ((rows as u32).div_ceil(8).max(1), 1, 1), (256, 1, 1), &args);
    }
    fn rmsnorm_backward(&self, dinp: CuViewMut<'_>, dw: CuViewMut<'_>, dout: CuView<'_>, inp: CuView<'_>, w: CuView<'_>, rstd: CuView<'_>, rows: usize, c: usize) {
        let (t, f) = (dinp.dtype, DType::F32);
        expect("rmsnorm_backward", &[("dout", dout.dtype, t), ("inp", inp.dtype, t), ("w", w.dtype, t), ("dw", dw.dtype, f), ("rstd", rstd.dtype, f)]);
        assert!(dinp.len >= rows * c && dout.len >= rows * c && inp.len >= rows * c && dw.len >= c && rstd.len >= rows, "rmsnorm_backward: views too small");
        if rows == 0 || c == 0 {
            return;
        }
        let (rows_i, c_i) = (rows as i32, c as i32);
        let args: [&dyn KernelArg; 7] = [&dinp.ptr, &dout.ptr, &inp.ptr, &w.ptr, &rstd.ptr, &rows_i, &c_i];
        let vec = packs_fit(t, c, &[dinp.ptr, dout.ptr, inp.ptr, w.ptr]);
        self.rt.launch(&packed_kernel("rmsnorm_backward_input", vec, t), ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &args);
        self.column_sums_launch("rmsnorm_backward_params", t, vec, (rows, c), (dw.ptr, None), &[&dout.ptr, &inp.ptr, &rstd.ptr]);
    }

    // ---- embeddings -----------------------------------------------------------
    fn embedding_forward(&self, out: CuViewMut<'_>, ids: &DeviceBuf, wte: CuView<'_>, positions: Option<(&DeviceBuf, CuView<'_>)>, c: usize) {
        expect("embedding_forward", &[("wte", wte.dtype, out.dtype)]);
        let rows = ids.len();
        assert!(out.len >= rows * c, "embedding_forward: output too small");
        let (pos, wpe) = match positions {
            Some((pos, wpe)) => {
                expect("embedding_forward", &[("wpe", wpe.dtype, out.dtype)]);
                assert!(pos.len() >= rows, "embedding_forward: fewer positions than ids");
                (pos.address(), wpe.ptr)
            }
            None => (0, 0),
        };
        let args: [&dyn KernelArg; 7] = [&out.ptr, &ids.address(), &pos, &wte.ptr, &wpe, &(rows as i32), &(c as i32)];
        if packs_fit(out.dtype, c, &[out.ptr, wte.ptr, wpe]) {
            self.rt.launch_1d(&kernel("embedding_forward_vec", out.dtype), rows * c / (16 / out.dtype.size()), &args);
        } else {
            self.rt.launch_1d(&kernel("embedding_forward", out.dtype), rows * c, &args);
        }
    }
    fn embedding_backward(&self, dwte: CuViewMut<'_>, positions: Option<(&DeviceBuf, CuViewMut<'_>)>, dout: CuView<'_>, ids: &DeviceBuf, c: usize) {
        expect("embedding_backward", &[("dwte", dwte.dtype, DType::F32)]);
        let rows = ids.len();
        assert!(dout.len >= rows * c, "embedding_backward: dout too small");
        let (pos, dwpe) = match positions {
            Some((pos, dwpe)) => {
                expect("embedding_backward", &[("dwpe", dwpe.dtype, DType::F32)]);
                assert!(pos.len() >= rows, "embedding_backward: fewer positions than ids");
                (pos.address(), dwpe.ptr)
            }
            None => (0, 0),
        };
        let args: [&dyn KernelArg; 7] = [&dwte.ptr, &dwpe, &dout.ptr, &ids.address(), &pos, &(rows as i32), &(c as i32)];
        self.rt.launch_1d(&kernel("embedding_backward", dout.dtype), rows * c, &args);
    }
    fn position_bias_forward(&self, out: CuViewMut<'_>, table: CuView<'_>, buckets: &DeviceBuf, heads: usize) {
        expect("position_bias_forward", &[("out", out.dtype, DType::F32)]);
        let n = buckets.len();
        assert!(out.len >= heads * n, "position_bias_forward: output too small");
        let args: [&dyn KernelArg; 5] = [&out.ptr, &table.ptr, &buckets.address(), &(n as i32), &(heads as i32)];
        self.rt.launch_1d(&kernel("position_bias_forward", table.dtype), heads * n, &args);
    }
    fn position_bias_backward(&self, dtable: CuViewMut<'_>, dout: CuView<'_>, buckets: &DeviceBuf, heads: usize) {
        expect("position_bias_backward", &[("dtable", dtable.dtype, DType::F32), ("dout", dout.dtype, DType::F32)]);
        let n = buckets.len();
        assert!(dout.len >= heads * n, "position_bias_backward: dout too small");
        let args: [&dyn KernelArg; 5] = [&dtable.ptr, &dout.ptr, &buckets.address(), &(n as i32), &(heads as i32)];
        self.rt.launch_1d("position_bias_backward_f32", heads * n, &args);
    }

    // ---- attention ------------------------------------------------------------
    fn attention_forward(&self, out: CuViewMut<'_>, lse: CuViewMut<'_>, inp: &AttnInputs<'_, Self>, s: &AttnShape) {
        let t = out.dtype;
        check_attention_inputs("attention_forward", t, inp);
        expect("attention_forward", &[("lse", lse.dtype, DType::F32)]);
        assert!(out.len >= s.batch * s.q_len * s.heads * s.head_dim && lse.len >= s.batch * s.heads * s.q_len, "attention_forward: outputs too small");
        if s.batch * s.heads * s.q_len == 0 {
            return;
        }
        let (mask, bias) = (inp.key_mask.map_or(0u64, |m| m.ptr), inp.bias.map_or(0u64, |b| b.ptr));
        if s.q_len < MMA_MIN_QUERIES && !self.tuning.attn_decode_tiled {
            return self.attention_decode([out.ptr, lse.ptr, inp.q.ptr, inp.k.ptr, inp.v.ptr, mask, bias], s, t);
        }
        let args: [&dyn KernelArg; 8] = [&out.ptr, &lse.ptr, &inp.q.ptr, &inp.k.ptr, &inp.v.ptr, &mask, &bias, &AttnShapeC::from(s)];
        self.attention_launch("forward", s.q_len, s, t, &args);
    }
    fn attention_backward(
        &self,
        grads: AttnGrads<'_, Self>,
        dbias: Option<CuViewMut<'_>>,
        dout: CuView<'_>,
        out: CuView<'_>,
        lse: CuView<'_>,
        inp: &AttnInputs<'_, Self>,
        s: &AttnShape,
    ) {
        let t = dout.dtype;
        check_attention_inputs("attention_backward", t, inp);
        expect("attention_backward", &[("out", out.dtype, t), ("lse", lse.dtype, DType::F32)]);
        let c = s.heads * s.head_dim;
        // dQ, dK, dV at the offsets their inputs have in the same layout.
        let (dq, dk, dv, grad_dtype) = match &grads {
            AttnGrads::Fused(g) => {
                assert!(g.len >= s.batch * s.q_len * s.q_stride, "attention_backward: dqkv too small");
                (g.ptr, g.address_of(c), g.address_of(2 * c), g.dtype)
            }
            AttnGrads::Split { dq, dkv } => {
                assert!(
                    dq.len >= inp.q.len.min(s.batch * s.q_len * s.q_stride) && dkv.len >= s.batch * s.kv_cap * s.kv_stride.min(2 * c),
                    "attention_backward: gradients too small"
                );
                expect("attention_backward", &[("dkv", dkv.dtype, dq.dtype)]);
                (dq.ptr, dkv.ptr, dkv.address_of(c), dq.dtype)
            }
        };
        expect("attention_backward", &[("grads", grad_dtype, t)]);
        let dbias = match dbias {
            Some(db) => {
                expect("attention_backward", &[("dbias", db.dtype, DType::F32)]);
                assert!(db.len >= s.heads * s.q_len * s.kv_len, "attention_backward: dbias too small");
                db.ptr
            }
            None => 0,
        };
        if s.batch * s.heads * s.q_len == 0 {
            return;
        }
        let (mask, bias, shape) = (inp.key_mask.map_or(0u64, |m| m.ptr), inp.bias.map_or(0u64, |b| b.ptr), AttnShapeC::from(s));
        let (q, k, v) = (inp.q.ptr, inp.k.ptr, inp.v.ptr);
        // The tensor-core passes (bf16) read each query's Di = Σ dO·O and lse
        // base from a scratch a first launch fills (and, for the one-pass
        // backward, zeroes dQ's f32 sums after them), the register-blocked
        // f32 ones Di; attention.cu's take O and lse themselves.
        let rows = s.batch * s.heads * s.q_len;
        let fused = self.fused_attention_backward(s, t);
        let (o_or_di, lse_or_base) = if t == DType::BF16 {
            let Some(di) = self.grown(&self.attn_rows, (2 + if fused.is_some() { DQ_ACCUM_COLS } else { 0 }) * rows, "attention_backward") else { return };
            let (lse_base, dq_accum) = (di + 4 * rows as u64, if fused.is_some() { di + 8 * rows as u64 } else { 0 });
            let args: [&dyn KernelArg; 7] = [&di, &lse_base, &dq_accum, &dout.ptr, &out.ptr, &lse.ptr, &shape];
            self.rt.launch("attention_mma_backward_rows_bf16", ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &args);
            if let Some((kernel, shared)) = fused {
                let args: [&dyn KernelArg; 13] = [&dk, &dv, &dbias, &dq_accum, &dout.ptr, &q, &k, &v, &di, &lse_base, &mask, &bias, &shape];
                let grid = ((s.kv_len as u32).div_ceil(FUSED_BACKWARD_KEYS), s.heads as u32, s.batch as u32);
                self.rt.launch_shared(kernel, grid, (FUSED_BACKWARD_THREADS, 1, 1), shared, &args);
                let args: [&dyn KernelArg; 3] = [&dq, &dq_accum, &shape];
                return self.rt.launch("attention_backward_store_dq_bf16", ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &args);
            }
            (di, lse_base)
        } else if self.register_blocked_attention(s, t) {
            let Some(di) = self.grown(&self.attn_rows, rows, "attention_backward") else { return };
            let args: [&dyn KernelArg; 4] = [&di, &dout.ptr, &out.ptr, &shape];
            self.rt.launch("attention_fma_backward_rows_f32", ((rows as u32).div_ceil(8), 1, 1), (256, 1, 1), &args);
            (di, lse.ptr)
        } else {
            (out.ptr, lse.ptr)
        };
        let args: [&dyn KernelArg; 10] = [&dq, &dout.ptr, &q, &k, &v, &o_or_di, &lse_or_base, &mask, &bias, &shape];
        self.attention_launch("backward_query", s.q_len, s, t, &args);
        let args: [&dyn KernelArg; 12] = [&dk, &dv, &dbias, &dout.ptr, &q, &k, &v, &o_or_di, &lse_or_base, &mask, &bias, &shape];
        self.attention_launch("backward_key", s.kv_len, s, t, &args);
    }

    // ---- loss -----------------------------------------------------------------
    fn softmax_cross_entropy(&self, losses: CuViewMut<'_>, logits: CuViewMut<'_>, targets: &DeviceBuf, rows: usize, vocab: usize, stride: usize, grad_scale: Option<f32>) {
        expect("softmax_cross_entropy", &[("losses", losses.dtype, DType::F32)]);
        assert!(stride >= vocab, "softmax_cross_entropy: row stride {stride} below the vocabulary {vocab}");
        if rows == 0 {
            return;
        }
        assert!(losses.len >= rows && logits.len >= (rows - 1) * stride + vocab && targets.len() >= rows, "softmax_cross_entropy: views too small");
        let block = (vocab.next_multiple_of(32) as u32).clamp(32, self.tuning.xent_threads);
        let (g, want) = (grad_scale.unwrap_or(0.0), grad_scale.is_some() as i32);
        let args: [&dyn KernelArg; 7] = [&losses.ptr, &logits.ptr, &targets.address(), &(vocab as i32), &(stride as i64), &g, &want];
        let unroll = match (self.tuning.xent_unroll, logits.dtype) {
            (0, DType::BF16) => 8,
            (0, _) => 4,
            (u, _) => u,
        };
        let name = if unroll == 4 { "softmax_cross_entropy".to_string() } else { format!("softmax_cross_entropy_u{unroll}") };
        self.rt.launch(&kernel(&name, logits.dtype), (rows as u32, 1, 1), (block, 1, 1), &args);
    }

    // ---- decoding -------------------------------------------------------------
    fn select_tokens(&self, logits: CuView<'_>, vocab: usize, plan: &TokenPlan) -> Result<Vec<u32>> {
        self.select_on_device(logits, vocab, plan)
    }
    fn beam_candidates(&self, logits: CuView<'_>, vocab: usize, plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        self.beam_candidates_on_device(logits, vocab, plan)
    }

    // ---- optimiser ------------------------------------------------------------
    fn sum_squares(&self, v: CuView<'_>) -> f32 {
        expect("sum_squares", &[("v", v.dtype, DType::F32)]);
        let scalar = self.scalar.lock().unwrap();
        if let Err(e) = self.rt.driver.zero(scalar.address(), 4) {
            self.rt.record(e);
        }
        self.rt.launch_1d("sum_squares_f32", v.len, &[&scalar.address(), &v.ptr, &(v.len as i64)]);
        match self.download(CuView::of(&scalar)) {
            Ok(x) => x[0],
            Err(_) => f32::NAN, // the error stays recorded for the next fallible call
        }
    }
    fn adamw(
        &self,
        params: CuViewMut<'_>,
        master: Option<CuViewMut<'_>>,
        grads: CuView<'_>,
        m: CuViewMut<'_>,
        v: CuViewMut<'_>,
        segments: &[DecaySegment],
        h: &AdamW,
        step: u64,
        grad_scale: f32,
    ) {
        let (n, f) = (params.len, DType::F32);
        expect("adamw", &[("grads", grads.dtype, f), ("m", m.dtype, f), ("v", v.dtype, f)]);
        assert!(grads.len >= n && m.len >= n && v.len >= n && master.as_ref().is_none_or(|w| w.len >= n), "adamw: buffers of different lengths");
        let master_ptr = match (&master, params.dtype) {
            (None, DType::F32) => 0u64,
            (Some(w), DType::BF16) if w.dtype == f => w.ptr,
            (w, d) => return self.rt.record(format!("adamw: {d} parameters {} f32 master weights", if w.is_some() { "take no" } else { "need" })),
        };
        let mut cached = self.segments.lock().unwrap();
        if cached.as_ref().is_none_or(|(segs, _)| segs != segments) {
            let mut sorted = segments.to_vec();
            sorted.sort_by_key(|s| s.offset);
            let table: Vec<i64> = sorted.iter().flat_map(|s| [s.offset as i64, s.len as i64, s.decay as i64]).collect();
            match upload_raw(&self.rt, &table, DType::I64) {
                Ok(dev) => *cached = Some((segments.to_vec(), dev)),
                Err(e) => return self.rt.record(e),
            }
        }
        let table = cached.as_ref().unwrap().1.address();
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
        let args: [&dyn KernelArg; 9] = [&params.ptr, &master_ptr, &grads.ptr, &m.ptr, &v.ptr, &table, &(segments.len() as i32), &(n as i64), &a];
        self.rt.launch_1d(&format!("adamw_{}", suffix(params.dtype)), n, &args);
    }
}

/// Element types of attention inputs: q, k, v in the compute type, mask and bias f32.
fn check_attention_inputs(op: &str, t: DType, inp: &AttnInputs<'_, Cuda>) {
    expect(op, &[("q", inp.q.dtype, t), ("k", inp.k.dtype, t), ("v", inp.v.dtype, t)]);
    inp.key_mask.iter().for_each(|m| expect(op, &[("key_mask", m.dtype, DType::F32)]));
    inp.bias.iter().for_each(|b| expect(op, &[("bias", b.dtype, DType::F32)]));
}
