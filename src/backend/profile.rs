//! A backend wrapper that times every op (wall clock, summed per op name;
//! GEMMs per shape, with their FLOP rate), for `hhi bench … --profile`. On
//! the CPU every op is synchronous, so the times are exact; on a device each
//! op waits for the work before it and for itself, so an op's time is its
//! own plus one launch and one synchronisation (what the smallest ops show
//! is mostly that), and the profiled step runs slower than the unprofiled one.

use super::{unfused, Act, AdamW, AttnGrads, AttnInputs, AttnShape, Backend, DecaySegment, Gemm, MemoryStats};
use crate::Result;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct Profiled<B: Backend> {
    pub inner: B,
    times: Mutex<BTreeMap<String, Timed>>,
}

/// What the profile sums for one op name.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timed {
    pub seconds: f64,
    pub calls: u64,
    /// Floating-point operations of those calls, where the op counts them (GEMMs).
    pub flops: f64,
}

impl<B: Backend> Profiled<B> {
    pub fn new(inner: B) -> Self {
        Profiled { inner, times: Mutex::new(BTreeMap::new()) }
    }

    fn time<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        self.time_counted(name, 0.0, f)
    }

    /// Times `f` alone: the device finishes what came before it first. A
    /// failed synchronisation is left to the caller's next one (device errors
    /// are sticky), so the profile never hides one.
    fn time_counted<R>(&self, name: &str, flops: f64, f: impl FnOnce() -> R) -> R {
        let _ = self.inner.synchronize();
        let start = Instant::now();
        let r = f();
        let _ = self.inner.synchronize();
        let seconds = start.elapsed().as_secs_f64();
        let mut t = self.times.lock().expect("profile lock");
        if !t.contains_key(name) {
            t.insert(name.to_string(), Timed::default());
        }
        let e = t.get_mut(name).expect("inserted above");
        e.seconds += seconds;
        e.calls += 1;
        e.flops += flops;
        r
    }

    /// (op, what it summed), slowest first.
    pub fn report(&self) -> Vec<(String, Timed)> {
        let mut v: Vec<_> = self.times.lock().expect("profile lock").iter().map(|(k, t)| (k.clone(), *t)).collect();
        v.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
        v
    }

    pub fn reset(&self) {
        self.times.lock().expect("profile lock").clear();
    }
}

impl<B: Backend> Backend for Profiled<B> {
    type Buf = B::Buf;
    type View<'a>
        = B::View<'a>
    where
        Self: 'a;
    type ViewMut<'a>
        = B::ViewMut<'a>
    where
        Self: 'a;
    type Ids = B::Ids;

    fn name(&self) -> String {
        format!("{} (profiled)", self.inner.name())
    }
    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        self.inner.peak_bandwidth()
    }
    fn memory(&self) -> Option<MemoryStats> {
        self.inner.memory()
    }
    fn compute_dtype(&self) -> crate::tensor::DType {
        self.inner.compute_dtype()
    }
    fn zeros(&self, n: usize) -> Result<Self::Buf> {
        self.inner.zeros(n)
    }
    fn zeros_f32(&self, n: usize) -> Result<Self::Buf> {
        self.inner.zeros_f32(n)
    }
    fn upload(&self, host: &[f32]) -> Result<Self::Buf> {
        self.inner.upload(host)
    }
    fn upload_f32(&self, host: &[f32]) -> Result<Self::Buf> {
        self.inner.upload_f32(host)
    }
    fn upload_owned(&self, host: Vec<f32>) -> Result<Self::Buf> {
        self.inner.upload_owned(host)
    }
    fn download(&self, v: Self::View<'_>) -> Result<Vec<f32>> {
        self.inner.download(v)
    }
    fn upload_ids(&self, host: &[i32]) -> Result<Self::Ids> {
        self.inner.upload_ids(host)
    }
    fn write(&self, dst: Self::ViewMut<'_>, host: &[f32]) -> Result<()> {
        self.inner.write(dst, host)
    }
    fn write_ids(&self, dst: &mut Self::Ids, host: &[i32]) -> Result<()> {
        self.inner.write_ids(dst, host)
    }
    fn fill(&self, v: Self::ViewMut<'_>, value: f32) {
        self.time("fill", || self.inner.fill(v, value))
    }
    fn copy_rows(&self, dst: Self::ViewMut<'_>, dst_stride: usize, src: Self::View<'_>, src_stride: usize, rows: usize, width: usize) {
        self.time("copy_rows", || self.inner.copy_rows(dst, dst_stride, src, src_stride, rows, width))
    }
    fn gather_rows(&self, dst: Self::ViewMut<'_>, dst_stride: usize, src: Self::View<'_>, src_stride: usize, index: &Self::Ids, rows: usize, width: usize) {
        self.time("gather_rows", || self.inner.gather_rows(dst, dst_stride, src, src_stride, index, rows, width))
    }
    fn view(b: &Self::Buf) -> Self::View<'_> {
        B::view(b)
    }
    fn view_mut(b: &mut Self::Buf) -> Self::ViewMut<'_> {
        B::view_mut(b)
    }
    fn slice<'a>(v: Self::View<'a>, offset: usize, len: usize) -> Self::View<'a> {
        B::slice(v, offset, len)
    }
    fn split_mut<'a>(v: Self::ViewMut<'a>, at: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        B::split_mut(v, at)
    }
    fn reborrow<'a, 'b>(v: &'b mut Self::ViewMut<'a>) -> Self::ViewMut<'b> {
        B::reborrow(v)
    }
    fn freeze<'a>(v: Self::ViewMut<'a>) -> Self::View<'a> {
        B::freeze(v)
    }
    fn shorten<'a: 'b, 'b>(v: Self::View<'a>) -> Self::View<'b> {
        B::shorten(v)
    }
    fn matmul(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, bias: Option<Self::View<'_>>, g: Gemm) {
        let name = gemm_name(&g, bias.is_some());
        self.time_counted(&name, 2.0 * (g.m * g.n * g.k) as f64, || self.inner.matmul(out, a, b, bias, g))
    }
    fn matmul_act(&self, act: Act, out: Self::ViewMut<'_>, pre: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, bias: Option<Self::View<'_>>, g: Gemm) {
        if !self.inner.fuses_matmul_act(act) {
            return unfused::matmul_act(self, act, out, pre, a, b, bias, g);
        }
        let name = format!("{} +{act:?}", gemm_name(&g, bias.is_some()));
        self.time_counted(&name, 2.0 * (g.m * g.n * g.k) as f64, || self.inner.matmul_act(act, out, pre, a, b, bias, g))
    }
    fn matmul_act_backward(&self, act: Act, dpre: Self::ViewMut<'_>, pre: Self::View<'_>, scratch: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, g: Gemm) {
        if !self.inner.fuses_matmul_act(act) {
            return unfused::matmul_act_backward(self, act, dpre, pre, scratch, a, b, g);
        }
        let name = format!("{} ×d{act:?}", gemm_name(&g, false));
        self.time_counted(&name, 2.0 * (g.m * g.n * g.k) as f64, || self.inner.matmul_act_backward(act, dpre, pre, scratch, a, b, g))
    }
    fn fuses_matmul_act(&self, act: Act) -> bool {
        self.inner.fuses_matmul_act(act)
    }
    fn bias_backward(&self, dbias: Self::ViewMut<'_>, dout: Self::View<'_>, rows: usize, n: usize) {
        self.time("bias_backward", || self.inner.bias_backward(dbias, dout, rows, n))
    }
    fn add(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>) {
        self.time("add", || self.inner.add(out, a, b))
    }
    fn add_assign(&self, dst: Self::ViewMut<'_>, src: Self::View<'_>) {
        self.time("add_assign", || self.inner.add_assign(dst, src))
    }
    fn broadcast_add(&self, dst: Self::ViewMut<'_>, v: Self::View<'_>, rows: usize, width: usize) {
        self.time("broadcast_add", || self.inner.broadcast_add(dst, v, rows, width))
    }
    fn mul(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>) {
        self.time("mul", || self.inner.mul(out, a, b))
    }
    fn scale(&self, v: Self::ViewMut<'_>, alpha: f32) {
        self.time("scale", || self.inner.scale(v, alpha))
    }
    fn activation_forward(&self, act: Act, out: Self::ViewMut<'_>, inp: Self::View<'_>) {
        self.time("activation_forward", || self.inner.activation_forward(act, out, inp))
    }
    fn activation_backward(&self, act: Act, dinp: Self::ViewMut<'_>, inp: Self::View<'_>, dout: Self::View<'_>) {
        self.time("activation_backward", || self.inner.activation_backward(act, dinp, inp, dout))
    }
    fn layernorm_forward(
        &self,
        out: Self::ViewMut<'_>,
        mean: Self::ViewMut<'_>,
        rstd: Self::ViewMut<'_>,
        inp: Self::View<'_>,
        w: Self::View<'_>,
        b: Self::View<'_>,
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        self.time("layernorm_forward", || self.inner.layernorm_forward(out, mean, rstd, inp, w, b, rows, c, eps))
    }
    fn add_layernorm_forward(
        &self,
        res: Self::ViewMut<'_>,
        out: Self::ViewMut<'_>,
        mean: Self::ViewMut<'_>,
        rstd: Self::ViewMut<'_>,
        x: Option<Self::View<'_>>,
        delta: Self::View<'_>,
        w: Self::View<'_>,
        b: Self::View<'_>,
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        self.time("add_layernorm_forward", || self.inner.add_layernorm_forward(res, out, mean, rstd, x, delta, w, b, rows, c, eps))
    }
    fn layernorm_backward(
        &self,
        dinp: Self::ViewMut<'_>,
        dw: Self::ViewMut<'_>,
        db: Self::ViewMut<'_>,
        dout: Self::View<'_>,
        inp: Self::View<'_>,
        w: Self::View<'_>,
        mean: Self::View<'_>,
        rstd: Self::View<'_>,
        rows: usize,
        c: usize,
    ) {
        self.time("layernorm_backward", || self.inner.layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, c))
    }
    fn rmsnorm_forward(&self, out: Self::ViewMut<'_>, rstd: Self::ViewMut<'_>, inp: Self::View<'_>, w: Self::View<'_>, rows: usize, c: usize, eps: f32) {
        self.time("rmsnorm_forward", || self.inner.rmsnorm_forward(out, rstd, inp, w, rows, c, eps))
    }
    fn add_rmsnorm_forward(
        &self,
        res: Self::ViewMut<'_>,
        out: Self::ViewMut<'_>,
        rstd: Self::ViewMut<'_>,
        x: Option<Self::View<'_>>,
        delta: Self::View<'_>,
        w: Self::View<'_>,
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        self.time("add_rmsnorm_forward", || self.inner.add_rmsnorm_forward(res, out, rstd, x, delta, w, rows, c, eps))
    }
    fn rmsnorm_backward(
        &self,
        dinp: Self::ViewMut<'_>,
        dw: Self::ViewMut<'_>,
        dout: Self::View<'_>,
        inp: Self::View<'_>,
        w: Self::View<'_>,
        rstd: Self::View<'_>,
        rows: usize,
        c: usize,
    ) {
        self.time("rmsnorm_backward", || self.inner.rmsnorm_backward(dinp, dw, dout, inp, w, rstd, rows, c))
    }
    fn embedding_forward(&self, out: Self::ViewMut<'_>, ids: &Self::Ids, wte: Self::View<'_>, positions: Option<(&Self::Ids, Self::View<'_>)>, c: usize) {
        self.time("embedding_forward", || self.inner.embedding_forward(out, ids, wte, positions, c))
    }
    fn embedding_backward(&self, dwte: Self::ViewMut<'_>, positions: Option<(&Self::Ids, Self::ViewMut<'_>)>, dout: Self::View<'_>, ids: &Self::Ids, c: usize) {
        self.time("embedding_backward", || self.inner.embedding_backward(dwte, positions, dout, ids, c))
    }
    fn position_bias_forward(&self, out: Self::ViewMut<'_>, table: Self::View<'_>, buckets: &Self::Ids, heads: usize) {
        self.time("position_bias_forward", || self.inner.position_bias_forward(out, table, buckets, heads))
    }
    fn position_bias_backward(&self, dtable: Self::ViewMut<'_>, dout: Self::View<'_>, buckets: &Self::Ids, heads: usize) {
        self.time("position_bias_backward", || self.inner.position_bias_backward(dtable, dout, buckets, heads))
    }
    fn attention_forward(&self, out: Self::ViewMut<'_>, lse: Self::ViewMut<'_>, inp: &AttnInputs<'_, Self>, s: &AttnShape) {
        self.time("attention_forward", || self.inner.attention_forward(out, lse, &unwrap_inputs(inp), s))
    }
    fn attention_backward(
        &self,
        grads: AttnGrads<'_, Self>,
        dbias: Option<Self::ViewMut<'_>>,
        dout: Self::View<'_>,
        out: Self::View<'_>,
        lse: Self::View<'_>,
        inp: &AttnInputs<'_, Self>,
        s: &AttnShape,
    ) {
        let grads = match grads {
            AttnGrads::Fused(buf) => AttnGrads::Fused(buf),
            AttnGrads::Split { dq, dkv } => AttnGrads::Split { dq, dkv },
        };
        self.time("attention_backward", || self.inner.attention_backward(grads, dbias, dout, out, lse, &unwrap_inputs(inp), s))
    }
    fn softmax_cross_entropy(&self, losses: Self::ViewMut<'_>, logits: Self::ViewMut<'_>, targets: &Self::Ids, rows: usize, vocab: usize, stride: usize, grad_scale: Option<f32>) {
        self.time("softmax_cross_entropy", || self.inner.softmax_cross_entropy(losses, logits, targets, rows, vocab, stride, grad_scale))
    }
    fn select_tokens(&self, logits: Self::View<'_>, vocab: usize, plan: &crate::generate::TokenPlan) -> Result<Vec<u32>> {
        self.time("select_tokens", || self.inner.select_tokens(logits, vocab, plan))
    }
    fn beam_candidates(&self, logits: Self::View<'_>, vocab: usize, plan: &crate::generate::candidates::BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        self.time("beam_candidates", || self.inner.beam_candidates(logits, vocab, plan))
    }
    fn sum_squares(&self, v: Self::View<'_>) -> f32 {
        self.time("sum_squares", || self.inner.sum_squares(v))
    }
    fn adamw(
        &self,
        params: Self::ViewMut<'_>,
        master: Option<Self::ViewMut<'_>>,
        grads: Self::View<'_>,
        m: Self::ViewMut<'_>,
        v: Self::ViewMut<'_>,
        segments: &[DecaySegment],
        h: &AdamW,
        step: u64,
        grad_scale: f32,
    ) {
        self.time("adamw", || self.inner.adamw(params, master, grads, m, v, segments, h, step, grad_scale))
    }
}

/// The same inputs, typed for the wrapped backend (the views are its own).
fn unwrap_inputs<'a, B: Backend>(inp: &AttnInputs<'a, Profiled<B>>) -> AttnInputs<'a, B> {
    AttnInputs { q: inp.q, k: inp.k, v: inp.v, key_mask: inp.key_mask, bias: inp.bias }
}

/// A GEMM's profile name: transposes and shape (the LM head's products and
/// the blocks' are told apart), and whether it adds a bias.
fn gemm_name(g: &Gemm, bias: bool) -> String {
    let kind = match (g.trans_a, g.trans_b) {
        (false, false) => "nn",
        (false, true) => "nt",
        (true, false) => "tn",
        (true, true) => "tt",
    };
    format!("matmul_{kind} {}×{}×{}{}", g.m, g.n, g.k, if bias { " +b" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::Cpu;
    use crate::backend::cuda::Cuda;
    use crate::models::gpt2::{Gpt2, Gpt2Config};
    use crate::tensor::DType;
    use crate::train::lm::{TrainConfig, Trainer};

    /// Losses of three training steps of a tiny GPT-2 on `be`.
    fn losses<B: Backend>(be: &B) -> Vec<u32> {
        let cfg: Gpt2Config = serde_json::from_value(serde_json::json!({"vocab_size": 50, "n_positions": 16, "n_embd": 32, "n_layer": 2, "n_head": 2})).unwrap();
        let model = Gpt2::init_random(be, cfg, 5).unwrap();
        let train = TrainConfig { steps: 3, batch: 2, seq: 8, lr: 3e-3, warmup: 1, weight_decay: 0.1, clip: 1.0, eval_every: 0, eval_batches: 0, seed: 3, stop_at: None };
        let tokens: Vec<u32> = (0..200).map(|i| (i * 7 % 50) as u32).collect();
        let mut trainer = Trainer::new(be, model, train).unwrap();
        (0..3).map(|_| trainer.step(&tokens).unwrap().0.to_bits()).collect()
    }

    /// The wrapper changes no result and reports each GEMM shape with its
    /// FLOPs: three steps of 2 × 8 tokens through the 50-token LM head.
    fn check_profiled<B: Backend>(plain: &B, profiled: Profiled<B>) {
        assert_eq!(losses(&profiled), losses(plain));
        assert_eq!(profiled.memory().is_some(), plain.memory().is_some(), "the device's memory report passes through");
        let report = profiled.report();
        let head = report.iter().find(|(op, _)| op == "matmul_nt 16×50×32").unwrap_or_else(|| panic!("no LM head product in {report:?}"));
        assert_eq!((head.1.calls, head.1.flops), (3, 3.0 * 2.0 * 16.0 * 50.0 * 32.0));
        assert!(report.iter().any(|(op, t)| op == "adamw" && t.calls == 3 && t.flops == 0.0 && t.seconds > 0.0), "{report:?}");
    }

    #[test]
    fn profiling_changes_no_result_and_counts_gemm_flops() {
        check_profiled(&Cpu, Profiled::new(Cpu));
        // On a device (the kernel emulator) each op is waited for.
        let emulated = || Cuda::emulated(DType::BF16).expect("the kernel emulator");
        check_profiled(&emulated(), Profiled::new(emulated()));
    }
}
