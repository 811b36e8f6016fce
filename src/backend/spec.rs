//! Plain descriptions of op shapes and hyper-parameters, shared by backends.

/// Shape and transpose flags of a matrix product `out[m,n] = op(a) · op(b)`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// `a` is stored `[k, m]` and used transposed.
    pub trans_a: bool,
    /// `b` is stored `[n, k]` and used transposed.
    pub trans_b: bool,
    /// Add into `out` instead of overwriting it.
    pub accumulate: bool,
}

impl Gemm {
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm { m, n, k, trans_a: false, trans_b: false, accumulate: false }
    }
    pub fn ta(mut self) -> Self {
        self.trans_a = true;
        self
    }
    pub fn tb(mut self) -> Self {
        self.trans_b = true;
        self
    }
    pub fn acc(mut self) -> Self {
        self.accumulate = true;
        self
    }
}

/// Geometry and masking of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Query rows per batch element.
    pub q_len: usize,
    /// Key/value rows in use per batch element.
    pub kv_len: usize,
    /// Key/value rows allocated per batch element (a KV cache's capacity).
    pub kv_cap: usize,
    /// Floats between consecutive query rows.
    pub q_stride: usize,
    /// Floats between consecutive key (and value) rows.
    pub kv_stride: usize,
    /// Query `i` is at absolute position `kv_len - q_len + i` and sees keys at
    /// positions `<=` its own.
    pub causal: bool,
    /// Local attention (GPT-Neo's local layers): a query at position `p` sees
    /// only keys at positions `> p - window`, itself included. 0: no limit.
    pub window: usize,
    /// Multiplies scores (GPT-2: 1/sqrt(d); GPT-Neo and T5: 1).
    pub scale: f32,
}

impl AttnShape {
    /// Self-attention over a fused `[batch, t, 3·heads·d]` QKV buffer.
    pub fn fused_self(batch: usize, t: usize, heads: usize, head_dim: usize, scale: f32) -> Self {
        let c = heads * head_dim;
        AttnShape { batch, heads, head_dim, q_len: t, kv_len: t, kv_cap: t, q_stride: 3 * c, kv_stride: 3 * c, causal: true, window: 0, scale }
    }
}

/// AdamW hyper-parameters, as `torch.optim.AdamW` takes them.
#[derive(Clone, Copy, Debug)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// A contiguous range of the flat parameter buffer and whether it decays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecaySegment {
    pub offset: usize,
    pub len: usize,
    pub decay: bool,
}

/// An elementwise activation, by the names transformers' `ACT2FN` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// `gelu_new` / `gelu_pytorch_tanh`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    GeluTanh,
    /// `gelu`: 0.5·x·(1 + erf(x/√2)).
    GeluErf,
    /// `quick_gelu` (CLIP): x·σ(1.702·x).
    QuickGelu,
    /// `relu` (T5 v1.0).
    Relu,
    /// `tanh` (ClipCap's mapping MLP).
    Tanh,
}

impl Act {
    /// The activation transformers calls `name`.
    pub fn from_hf(name: &str) -> Option<Act> {
        match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Act::GeluTanh),
            "gelu" => Some(Act::GeluErf),
            "quick_gelu" => Some(Act::QuickGelu),
            "relu" => Some(Act::Relu),
            "tanh" => Some(Act::Tanh),
            _ => None,
        }
    }
    /// The names [`Act::from_hf`] accepts, for error messages.
    pub const SUPPORTED: &'static str = "gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, quick_gelu, relu, tanh";

    /// The code kernels/elementwise.cu's `enum Act` gives it.
    pub fn code(self) -> i32 {
        self as i32
    }
}
