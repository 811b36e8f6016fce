//! Microbenchmarks of the op set at GPT-2 124M training shapes (C = 768, 12
//! heads, vocabulary 50257), on any backend: `hhi bench ops` and `cargo bench
//! --bench ops` print them. Each op reports its median time and either the
//! bytes it must move (each input read once, each output written once) as
//! GB/s and, where the device reports its peak, the fraction of it; or its
//! useful FLOPs as TFLOP/s (causal attention counts only the visible half).

use super::{Act, AdamW, AttnGrads, AttnInputs, AttnShape, Backend, DecaySegment, Gemm};
use crate::models::gpt2::logits_stride;
use crate::Result;
use std::time::Instant;

/// One op's measurement.
#[derive(Clone, Debug)]
pub struct OpTiming {
    pub name: String,
    pub ms: f64,
    /// Fewest bytes the op must move through memory (0: compute-bound op).
    pub bytes: f64,
    /// Useful floating-point operations (0: memory-bound op).
    pub flops: f64,
}

impl OpTiming {
    pub fn gb_per_s(&self) -> f64 {
        self.bytes / self.ms / 1e6
    }
    pub fn tflop_per_s(&self) -> f64 {
        self.flops / self.ms / 1e9
    }
    /// `op  ms  throughput  [% of peak]`.
    pub fn line(&self, peak_bandwidth: Option<f64>) -> String {
        let rate = if self.flops > 0.0 { format!("{:>9.2} TFLOP/s", self.tflop_per_s()) } else { format!("{:>9.1} GB/s   ", self.gb_per_s()) };
        let peak = match peak_bandwidth {
            Some(p) if self.flops == 0.0 => format!("  {:>5.1}% of peak bandwidth", 100.0 * self.bytes / (self.ms / 1e3) / p),
            _ => String::new(),
        };
        format!("{:<44} {:>10.3} {rate}{peak}", self.name, self.ms)
    }
}

/// Deterministic values in [-1, 1) (never all zeros: zeros can run faster).
fn filled(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2000) as f32 / 1000.0 - 1.0).collect()
}

/// Median time of one call over `reps` samples, after a warm-up. A sample
/// times enough back-to-back calls (then one device synchronisation) to fill
/// about a millisecond, so that a kernel of a few microseconds is measured as
/// the device runs it, not as the host's launch and synchronisation latency.
fn median_ms<B: Backend>(be: &B, reps: usize, mut f: impl FnMut()) -> Result<f64> {
    f();
    be.synchronize()?;
    let start = Instant::now();
    f();
    be.synchronize()?;
    let calls = (1.0 / (start.elapsed().as_secs_f64() * 1e3)).ceil().clamp(1.0, 100.0) as usize;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        be.synchronize()?;
        times.push(start.elapsed().as_secs_f64() * 1e3 / calls as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[reps / 2])
}

/// Benchmark shapes: `batch` sequences of `t` tokens.
#[derive(Clone, Copy, Debug)]
pub struct Shapes {
    pub batch: usize,
    pub t: usize,
    pub reps: usize,
}

const C: usize = 768;
const HEADS: usize = 12;
const VOCAB: usize = 50257;
const PARAMS: usize = 124_439_808;
const F32: f64 = 4.0;

/// Runs every op whose name contains `filter`, printing each line as it goes.
pub fn run<B: Backend>(be: &B, s: Shapes, filter: &str, print: &mut dyn FnMut(&OpTiming)) -> Result<Vec<OpTiming>> {
    let rows = s.batch * s.t;
    let act = be.compute_dtype().size() as f64; // bytes per activation
    let mut results = Vec::new();
    let mut record = |name: String, ms: f64, bytes: f64, flops: f64| {
        let t = OpTiming { name, ms, bytes, flops };
        print(&t);
        results.push(t);
    };
    let wanted = |name: &str| name.contains(filter);

    // The block's GEMMs (forward and both backward products of each layer),
    // then cuBLAS on attention's own two products at this shape, unfused:
    // every head's queries stacked as rows, k = 64 for Q·Kᵀ and n = 64 for
    // P·V — the GEMM figure beside which the fused attention below is read.
    // The forward products add the layer's bias, as the model does (a
    // broadcast kernel, or cuBLASLt's epilogue with HHI_CUDA_TUNE=gemm_bias=epilogue).
    let layers = [("c_attn", 3 * C, C), ("attn.c_proj", C, C), ("c_fc", 4 * C, C), ("mlp.c_proj", C, 4 * C)];
    let mut gemms: Vec<(String, Gemm, bool)> = Vec::new();
    for (layer, n, k) in layers {
        gemms.push((format!("matmul {layer} x·W+b"), Gemm::new(rows, n, k), true));
        gemms.push((format!("matmul {layer} dy·Wᵀ"), Gemm::new(rows, k, n).tb(), false));
        gemms.push((format!("matmul {layer} xᵀ·dy"), Gemm::new(k, n, rows).ta().acc(), false));
    }
    // The LM head as the model runs it (W = wte, [V, C]), with the logits
    // rows dense (50,257 apart: misaligned) and padded as the model pads them.
    for (tag, ld) in [("", VOCAB), (" padded", logits_stride(VOCAB))] {
        gemms.push((format!("matmul lm_head{tag} x·Wᵀ"), Gemm::new(rows, VOCAB, C).tb().ldc(ld), false));
        gemms.push((format!("matmul lm_head{tag} dy·W"), Gemm::new(rows, C, VOCAB).lda(ld), false));
        gemms.push((format!("matmul lm_head{tag} dyᵀ·x"), Gemm::new(VOCAB, C, rows).ta().acc().lda(ld), false));
    }
    let (head_rows, d) = (s.batch * HEADS * s.t, C / HEADS);
    for (tag, g) in [("Q·Kᵀ", Gemm::new(head_rows, s.t, d).tb()), ("P·V", Gemm::new(head_rows, d, s.t))] {
        gemms.push((format!("matmul attention-shaped {tag} {}×{}×{}", g.m, g.n, g.k), g, false));
    }
    for (name, g, with_bias) in gemms {
        if !wanted(&name) {
            continue;
        }
        // Weight gradients (xᵀ·dy) accumulate into f32; the rest are activations.
        let out_len = g.stored_out().span();
        let out = if g.accumulate { be.zeros_f32(out_len) } else { be.zeros(out_len) };
        let (a, b, mut out) = (be.upload(&filled(g.stored_a().span(), 1))?, be.upload(&filled(g.stored_b().span(), 2))?, out?);
        let bias = if with_bias { Some(be.upload(&filled(g.n, 5))?) } else { None };
        let ms = median_ms(be, s.reps, || be.matmul(B::view_mut(&mut out), B::view(&a), B::view(&b), bias.as_ref().map(B::view), g))?;
        record(name, ms, 0.0, 2.0 * (g.m * g.n * g.k) as f64);
    }

    // The MLP's GELU with the product before it (c_fc's x·W+b, the
    // pre-activation kept for the backward) and with the one after it in the
    // backward (mlp.c_proj's dy·Wᵀ times GELU's derivative): a GEMM and a
    // kernel each, or one GEMM with cuBLASLt's GELU epilogues under
    // HHI_CUDA_TUNE=gemm_gelu=epilogue. Counted as the GEMMs' FLOPs.
    let (fc, proj) = (Gemm::new(rows, 4 * C, C), Gemm::new(rows, 4 * C, C).tb());
    if wanted("matmul c_fc x·W+b → gelu") {
        let (x, w, bias) = (be.upload(&filled(rows * C, 1))?, be.upload(&filled(C * 4 * C, 2))?, be.upload(&filled(4 * C, 5))?);
        let (mut out, mut pre) = (be.zeros(rows * 4 * C)?, be.zeros(rows * 4 * C)?);
        let ms = median_ms(be, s.reps, || be.matmul_act(Act::GeluTanh, B::view_mut(&mut out), B::view_mut(&mut pre), B::view(&x), B::view(&w), Some(B::view(&bias)), fc))?;
        record("matmul c_fc x·W+b → gelu".into(), ms, 0.0, 2.0 * (fc.m * fc.n * fc.k) as f64);
    }
    if wanted("matmul mlp.c_proj dy·Wᵀ → gelu backward") {
        let (dy, w, pre) = (be.upload(&filled(rows * C, 3))?, be.upload(&filled(4 * C * C, 4))?, be.upload(&filled(rows * 4 * C, 6))?);
        let (mut dpre, mut scratch) = (be.zeros(rows * 4 * C)?, be.zeros(rows * 4 * C)?);
        let ms =
            median_ms(be, s.reps, || be.matmul_act_backward(Act::GeluTanh, B::view_mut(&mut dpre), B::view(&pre), B::view_mut(&mut scratch), B::view(&dy), B::view(&w), proj))?;
        record("matmul mlp.c_proj dy·Wᵀ → gelu backward".into(), ms, 0.0, 2.0 * (proj.m * proj.n * proj.k) as f64);
    }

    // Attention at GPT-2's heads (12 × 64) and at GPT-Neo 1.3B's (16 × 128,
    // width 2048, unscaled scores), causal, on fused QKV buffers.
    for (heads, d, scale) in [(HEADS, C / HEADS, 0.125), (16, 128, 1.0)] {
        let name = format!("attention B{} T{} H{heads} d{d}", s.batch, s.t);
        if !wanted(&name) {
            continue;
        }
        let width = heads * d;
        let shape = AttnShape::fused_self(s.batch, s.t, heads, d, scale);
        let qkv = be.upload(&filled(rows * 3 * width, 3))?;
        let (mut out, mut lse, mut dqkv, dout) = (be.zeros(rows * width)?, be.zeros_f32(s.batch * heads * s.t)?, be.zeros(rows * 3 * width)?, be.upload(&filled(rows * width, 4))?);
        let inp = AttnInputs::fused(B::view(&qkv), width, rows * 3 * width);
        // QKᵀ and PV over the visible (causal) half: 2 · 2·T²/2·d per (b, h).
        let flops = 2.0 * (s.batch * heads * s.t * s.t * d) as f64;
        let ms = median_ms(be, s.reps, || be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &shape))?;
        record(format!("{name} forward"), ms, 0.0, flops);
        let ms = median_ms(be, s.reps, || be.attention_backward(AttnGrads::Fused(B::view_mut(&mut dqkv)), None, B::view(&dout), B::view(&out), B::view(&lse), &inp, &shape))?;
        record(format!("{name} backward"), ms, 0.0, 2.5 * flops);
    }
    // A decoding step's attention: one new query a sequence against a KV
    // cache of T rows, at the batch size and at 1 (a lone prompt), for
    // GPT-2's heads and GPT-Neo 1.3B's. Bandwidth-bound: the cache's keys and
    // values are the bytes.
    let lone_prompt = (s.batch > 1).then_some((1, 16, 128, 1.0));
    for (batch, heads, d, scale) in [(s.batch, HEADS, C / HEADS, 0.125), (s.batch, 16, 128, 1.0)].into_iter().chain(lone_prompt) {
        let name = format!("attention decode B{batch} cache {} H{heads} d{d}", s.t);
        if !wanted(&name) {
            continue;
        }
        let width = heads * d;
        let shape = AttnShape { batch, heads, head_dim: d, q_len: 1, kv_len: s.t, kv_cap: s.t, q_stride: width, kv_stride: 2 * width, causal: true, window: 0, scale };
        let (q, kv) = (be.upload(&filled(batch * width, 7))?, be.upload(&filled(batch * s.t * 2 * width, 8))?);
        let (mut out, mut lse) = (be.zeros(batch * width)?, be.zeros_f32(batch * heads)?);
        let inp = AttnInputs::with_kv(B::view(&q), B::view(&kv), width, batch * s.t * 2 * width);
        let ms = median_ms(be, s.reps, || be.attention_forward(B::view_mut(&mut out), B::view_mut(&mut lse), &inp, &shape))?;
        record(name, ms, act * (batch * (s.t * 2 + 2) * width) as f64, 0.0);
    }

    let n = rows * 4 * C;
    if wanted("gelu") {
        let (x, dy, mut y) = (be.upload(&filled(n, 5))?, be.upload(&filled(n, 6))?, be.zeros(n)?);
        let ms = median_ms(be, s.reps, || be.activation_forward(Act::GeluTanh, B::view_mut(&mut y), B::view(&x)))?;
        record(format!("gelu forward {rows}×{}", 4 * C), ms, 2.0 * act * n as f64, 0.0);
        let ms = median_ms(be, s.reps, || be.activation_backward(Act::GeluTanh, B::view_mut(&mut y), B::view(&x), B::view(&dy)))?;
        // Reads x and dy, writes dx (overwritten since session 18: it read dx too).
        record(format!("gelu backward {rows}×{}", 4 * C), ms, 3.0 * act * n as f64, 0.0);
    }
    let name = format!("bias backward {rows}×{}", 4 * C);
    if wanted(&name) {
        let (dy, mut dbias) = (be.upload(&filled(n, 7))?, be.zeros_f32(4 * C)?);
        let ms = median_ms(be, s.reps, || be.bias_backward(B::view_mut(&mut dbias), B::view(&dy), rows, 4 * C))?;
        // Reads dy (c_fc's output gradient); the [4C] sums are noise.
        record(name, ms, act * n as f64, 0.0);
    }
    if wanted("add") {
        let (a, b, mut y) = (be.upload(&filled(rows * C, 5))?, be.upload(&filled(rows * C, 6))?, be.zeros(rows * C)?);
        let ms = median_ms(be, s.reps, || be.add(B::view_mut(&mut y), B::view(&a), B::view(&b)))?;
        record(format!("add (residual) {rows}×{C}"), ms, 3.0 * act * (rows * C) as f64, 0.0);
    }
    if wanted("layernorm") {
        let (x, w, b, dy) = (be.upload(&filled(rows * C, 6))?, be.upload(&filled(C, 7))?, be.upload(&filled(C, 8))?, be.upload(&filled(rows * C, 9))?);
        let (mut y, mut mean, mut rstd, mut dx, mut dw, mut db) =
            (be.zeros(rows * C)?, be.zeros_f32(rows)?, be.zeros_f32(rows)?, be.zeros(rows * C)?, be.zeros_f32(C)?, be.zeros_f32(C)?);
        let ms = median_ms(be, s.reps, || {
            be.layernorm_forward(B::view_mut(&mut y), B::view_mut(&mut mean), B::view_mut(&mut rstd), B::view(&x), B::view(&w), B::view(&b), rows, C, 1e-5)
        })?;
        record(format!("layernorm forward {rows}×{C}"), ms, 2.0 * act * (rows * C) as f64, 0.0);
        // The residual add fused in: x and delta read, the sum and its norm written.
        let ms = median_ms(be, s.reps, || {
            let (res, out) = (B::view_mut(&mut dx), B::view_mut(&mut y));
            be.add_layernorm_forward(res, out, B::view_mut(&mut mean), B::view_mut(&mut rstd), Some(B::view(&x)), B::view(&dy), B::view(&w), B::view(&b), rows, C, 1e-5)
        })?;
        record(format!("add + layernorm forward {rows}×{C}"), ms, 4.0 * act * (rows * C) as f64, 0.0);
        let ms = median_ms(be, s.reps, || {
            be.layernorm_backward(B::view_mut(&mut dx), B::view_mut(&mut dw), B::view_mut(&mut db), B::view(&dy), B::view(&x), B::view(&w), B::view(&mean), B::view(&rstd), rows, C)
        })?;
        record(format!("layernorm backward {rows}×{C}"), ms, 4.0 * act * (rows * C) as f64, 0.0);
    }
    if wanted("embedding") {
        let ids: Vec<i32> = (0..rows).map(|i| ((i * 7919) % VOCAB) as i32).collect();
        let pos: Vec<i32> = (0..rows).map(|i| (i % s.t) as i32).collect();
        let (ids, pos) = (be.upload_ids(&ids)?, be.upload_ids(&pos)?);
        let (wte, wpe, dy) = (be.upload(&filled(VOCAB * C, 10))?, be.upload(&filled(1024.max(s.t) * C, 11))?, be.upload(&filled(rows * C, 12))?);
        let (mut out, mut dwte, mut dwpe) = (be.zeros(rows * C)?, be.zeros_f32(VOCAB * C)?, be.zeros_f32(1024.max(s.t) * C)?);
        let ms = median_ms(be, s.reps, || be.embedding_forward(B::view_mut(&mut out), &ids, B::view(&wte), Some((&pos, B::view(&wpe))), C))?;
        record(format!("embedding forward {rows}×{C}"), ms, 3.0 * act * (rows * C) as f64, 0.0);
        let ms = median_ms(be, s.reps, || be.embedding_backward(B::view_mut(&mut dwte), Some((&pos, B::view_mut(&mut dwpe))), B::view(&dy), &ids, C))?;
        // Reads dout; reads and writes the f32 gradient rows it lands on.
        record(format!("embedding backward {rows}×{C}"), ms, (act + 4.0 * F32) * (rows * C) as f64, 0.0);
    }
    // The classifier on dense rows and on rows padded as the model pads them.
    for (tag, stride) in [("", VOCAB), (" padded", logits_stride(VOCAB))] {
        let name = format!("softmax_cross_entropy{tag} {rows}×{VOCAB}");
        if !wanted(&name) {
            continue;
        }
        let targets: Vec<i32> = (0..rows).map(|i| ((i * 31) % VOCAB) as i32).collect();
        let targets = be.upload_ids(&targets)?;
        let (mut logits, mut losses) = (be.upload(&filled(rows * stride, 13))?, be.zeros_f32(rows)?);
        let grad = Some(1.0 / rows as f32);
        let ms = median_ms(be, s.reps, || be.softmax_cross_entropy(B::view_mut(&mut losses), B::view_mut(&mut logits), &targets, rows, VOCAB, stride, grad))?;
        record(name, ms, 2.0 * act * (rows * VOCAB) as f64, 0.0);
    }
    if wanted("adamw") {
        let host = filled(PARAMS, 14);
        let (mut p, g, mut m, mut v) = (be.upload(&host)?, be.upload_f32(&filled(PARAMS, 15))?, be.zeros_f32(PARAMS)?, be.zeros_f32(PARAMS)?);
        let mut master = if act < F32 { Some(be.upload_f32(&host)?) } else { None };
        let seg = [DecaySegment { offset: 0, len: PARAMS, decay: true }];
        let mut step = 0;
        let ms = median_ms(be, s.reps, || {
            step += 1;
            be.adamw(B::view_mut(&mut p), master.as_mut().map(B::view_mut), B::view(&g), B::view_mut(&mut m), B::view_mut(&mut v), &seg, &AdamW::default(), step, 1.0)
        })?;
        // Reads g, m, v and the master weights, writes m, v, master and params.
        let bytes = if act < F32 { 8.0 * F32 + act } else { 7.0 * F32 };
        record("adamw 124M params".into(), ms, bytes * PARAMS as f64, 0.0);
        let ms = median_ms(be, s.reps, || {
            be.sum_squares(B::view(&g));
        })?;
        record("sum_squares 124M".into(), ms, F32 * PARAMS as f64, 0.0);
    }
    Ok(results)
}
