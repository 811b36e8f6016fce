//! Plain descriptions of op shapes and hyper-parameters, shared by backends.

/// Shape and transpose flags of a matrix product `out[m,n] = op(a) · op(b)`.
/// Each matrix is row-major, its rows `ld*` elements apart: dense unless
/// set (a stride wider than the row lets `out` be a column block of a wider
/// matrix, e.g. logits rows padded to a 16-byte multiple).
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
    /// Row strides of `a`, `b` and `out` as stored (`None`: dense).
    pub lda: Option<usize>,
    pub ldb: Option<usize>,
    pub ldc: Option<usize>,
}

/// A row-major matrix as stored: rows, columns and the stride between rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl Stored {
    fn new(rows: usize, cols: usize, stride: Option<usize>) -> Self {
        Stored { rows, cols, stride: stride.unwrap_or(cols) }
    }
    /// Elements a buffer must hold: the last row ends at (rows − 1)·stride + cols.
    pub fn span(&self) -> usize {
        if self.rows == 0 {
            0
        } else {
            (self.rows - 1) * self.stride + self.cols
        }
    }
}

impl Gemm {
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm { m, n, k, trans_a: false, trans_b: false, accumulate: false, lda: None, ldb: None, ldc: None }
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
    /// `a`'s rows (as stored) are `stride` elements apart.
    pub fn lda(mut self, stride: usize) -> Self {
        self.lda = Some(stride);
        self
    }
    /// `b`'s rows (as stored) are `stride` elements apart.
    pub fn ldb(mut self, stride: usize) -> Self {
        self.ldb = Some(stride);
        self
    }
    /// `out`'s rows are `stride` elements apart.
    pub fn ldc(mut self, stride: usize) -> Self {
        self.ldc = Some(stride);
        self
    }
    /// `a` as stored: `[m, k]`, or `[k, m]` when transposed.
    pub fn stored_a(&self) -> Stored {
        if self.trans_a {
            Stored::new(self.k, self.m, self.lda)
        } else {
            Stored::new(self.m, self.k, self.lda)
        }
    }
    /// `b` as stored: `[k, n]`, or `[n, k]` when transposed.
    pub fn stored_b(&self) -> Stored {
        if self.trans_b {
            Stored::new(self.n, self.k, self.ldb)
        } else {
            Stored::new(self.k, self.n, self.ldb)
        }
    }
    /// `out` as stored: `[m, n]`.
    pub fn stored_out(&self) -> Stored {
        Stored::new(self.m, self.n, self.ldc)
    }
    /// Whether every stride is at least its row (rows never overlap).
    pub fn strides_valid(&self) -> bool {
        [self.stored_a(), self.stored_b(), self.stored_out()].iter().all(|s| s.stride >= s.cols)
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
