//! The op set: every operation the models need, as fused forward/backward pairs
//! over flat buffers, behind one trait so that a model never knows which
//! backend runs it. The CPU backend (`cpu`) is the numerical reference; the
//! CUDA backend implements the same trait.
//!
//! Precision: a backend computes in one `compute_dtype` (f32 on the CPU; f32
//! or bf16 on CUDA): parameters and activations are buffers of that type
//! (`zeros`, `upload`). What must stay exact is always f32 (`zeros_f32`,
//! `upload_f32`): parameter gradients, AdamW moments and master weights,
//! LayerNorm statistics, attention log-sum-exps, per-row losses, masks. Each op
//! says which of its buffers are f32; the rest are in the compute type.
//!
//! Conventions (as in llm.c):
//! - buffers are contiguous row-major; a "row" is the last dimension;
//! - forward ops overwrite their outputs;
//! - backward ops *accumulate* (`+=`) into parameter gradients and into the
//!   input gradient, so residual branches and tied weights need no extra adds;
//!   callers zero gradient buffers once per step;
//! - anything a backward needs beyond the forward inputs (LayerNorm mean/rstd,
//!   attention log-sum-exp) is an explicit output of the forward.

pub mod bench;
pub mod cpu;
pub mod cuda;
mod device;
pub mod profile;
mod spec;
pub mod unfused;

pub use device::Device;
pub use spec::{Act, AdamW, AttnShape, DecaySegment, Gemm, Stored};

use crate::generate::candidates::BeamPlan;
use crate::generate::TokenPlan;
use crate::tensor::DType;
use crate::Result;

/// A device arena's bookkeeping (bytes, and counts since it was made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of live buffers now, and the most at any time.
    pub in_use: usize,
    pub peak: usize,
    /// Bytes held from the device's allocator, in `chunks` allocations.
    pub reserved: usize,
    pub chunks: usize,
    /// Buffers made, and allocations asked of the device's allocator.
    pub buffers: u64,
    pub driver_allocations: u64,
}

impl std::fmt::Display for MemoryStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        write!(f, "device memory: peak {:.1} MiB in use, {:.1} MiB held in {} chunk(s)", mib(self.peak), mib(self.reserved), self.chunks)
    }
}

/// A compute backend: memory, views into it, and the op set.
pub trait Backend: Send + Sync {
    /// An owned buffer on the device (compute type or f32, see above).
    type Buf: Send + Sync;
    /// A read-only range of a buffer.
    type View<'a>: Copy + Send + Sync
    where
        Self: 'a;
    /// A writable range of a buffer.
    type ViewMut<'a>: Send
    where
        Self: 'a;
    /// An owned buffer of i32 token ids / targets / positions on the device.
    type Ids: Send + Sync;

    fn name(&self) -> String;
    /// Waits until every op issued so far has finished and reports the first
    /// failure among them (device backends run asynchronously; the CPU is
    /// always done).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    /// Theoretical memory bandwidth in bytes/s, where the device reports it.
    fn peak_bandwidth(&self) -> Option<f64> {
        None
    }
    /// What the device's memory arena holds and has held (device backends;
    /// the CPU's buffers are plain host allocations).
    fn memory(&self) -> Option<MemoryStats> {
        None
    }
    /// The element type of parameters and activations.
    fn compute_dtype(&self) -> DType {
        DType::F32
    }

    // ---- memory -------------------------------------------------------------
    /// `n` zeros in the compute type.
    fn zeros(&self, n: usize) -> Result<Self::Buf>;
    /// `n` zeros in f32, whatever the compute type.
    fn zeros_f32(&self, n: usize) -> Result<Self::Buf> {
        self.zeros(n)
    }
    /// Host values rounded to the compute type.
    fn upload(&self, host: &[f32]) -> Result<Self::Buf>;
    /// `upload` of a buffer the caller gives up (the CPU keeps it: no copy).
    fn upload_owned(&self, host: Vec<f32>) -> Result<Self::Buf> {
        self.upload(&host)
    }
    /// Host values kept in f32.
    fn upload_f32(&self, host: &[f32]) -> Result<Self::Buf> {
        self.upload(host)
    }
    /// Waits for the device and returns the values, as f32, of a view of either type.
    fn download(&self, v: Self::View<'_>) -> Result<Vec<f32>>;
    fn upload_ids(&self, host: &[i32]) -> Result<Self::Ids>;
    /// Overwrites `dst` with as many host values (rounded to its element
    /// type): per-step inputs reuse one buffer instead of allocating.
    fn write(&self, dst: Self::ViewMut<'_>, host: &[f32]) -> Result<()>;
    /// Overwrites `dst` with as many host ids.
    fn write_ids(&self, dst: &mut Self::Ids, host: &[i32]) -> Result<()>;
    fn fill(&self, v: Self::ViewMut<'_>, value: f32);
    /// Copies `rows` rows of `width` floats between strided row sets (KV-cache
    /// appends, gathering the last position of each sequence).
    fn copy_rows(&self, dst: Self::ViewMut<'_>, dst_stride: usize, src: Self::View<'_>, src_stride: usize, rows: usize, width: usize);
    /// `copy_rows` with source row `index[r]` for destination row `r` (beam
    /// reselection in KV caches: one launch for all rows). Every index must
    /// address a row of `src` (callers check them before writing `index`).
    #[allow(clippy::too_many_arguments)]
    fn gather_rows(&self, dst: Self::ViewMut<'_>, dst_stride: usize, src: Self::View<'_>, src_stride: usize, index: &Self::Ids, rows: usize, width: usize);

    // ---- views ----------------------------------------------------------------
    fn view(b: &Self::Buf) -> Self::View<'_>;
    fn view_mut(b: &mut Self::Buf) -> Self::ViewMut<'_>;
    fn slice<'a>(v: Self::View<'a>, offset: usize, len: usize) -> Self::View<'a>;
    fn split_mut<'a>(v: Self::ViewMut<'a>, at: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>);
    fn slice_mut<'a>(v: Self::ViewMut<'a>, offset: usize, len: usize) -> Self::ViewMut<'a> {
        let (_, rest) = Self::split_mut(v, offset);
        Self::split_mut(rest, len).0
    }
    fn reborrow<'a, 'b>(v: &'b mut Self::ViewMut<'a>) -> Self::ViewMut<'b>;
    /// A writable view given up for a read-only one of the same range.
    fn freeze<'a>(v: Self::ViewMut<'a>) -> Self::View<'a>;
    /// The same view with a shorter lifetime (views are invariant in it, so
    /// one borrowed from longer-lived data must be shortened to sit beside
    /// views of local buffers in one [`AttnInputs`]).
    fn shorten<'a: 'b, 'b>(v: Self::View<'a>) -> Self::View<'b>;

    // ---- linear algebra -------------------------------------------------------
    /// `out[m,n] (=|+=) op(a)[m,k] · op(b)[k,n] (+ bias[n])`, where `op` transposes
    /// when the flag says so (`a` is stored [k,m] then, `b` [n,k]).
    fn matmul(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, bias: Option<Self::View<'_>>, g: Gemm);
    /// `dbias[n] += Σ_rows dout[rows,n]`; `dbias` is f32.
    fn bias_backward(&self, dbias: Self::ViewMut<'_>, dout: Self::View<'_>, rows: usize, n: usize);
    /// `pre = op(a)·op(b) (+ bias)` and `out = act(pre)`, `out` laid out as
    /// `pre` (a linear layer and the activation after it; `g` overwrites).
    /// A backend may fuse the activation into the GEMM (see
    /// [`Backend::fuses_matmul_act`]).
    #[allow(clippy::too_many_arguments)]
    fn matmul_act(&self, act: Act, out: Self::ViewMut<'_>, pre: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, bias: Option<Self::View<'_>>, g: Gemm) {
        unfused::matmul_act(self, act, out, pre, a, b, bias, g)
    }
    /// `dpre = act'(pre) ⊙ op(a)·op(b)` (`g` overwrites): the gradient
    /// reaching [`Backend::matmul_act`]'s `pre`, from the product giving
    /// the gradient of its `out`. `scratch` (laid out as `dpre`) holds that
    /// product where the backend does not fuse the two.
    #[allow(clippy::too_many_arguments)]
    fn matmul_act_backward(&self, act: Act, dpre: Self::ViewMut<'_>, pre: Self::View<'_>, scratch: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>, g: Gemm) {
        unfused::matmul_act_backward(self, act, dpre, pre, scratch, a, b, g)
    }
    /// Whether [`Backend::matmul_act`] and its backward fuse `act` into the
    /// GEMM (for shapes that allow it) instead of running the two ops.
    fn fuses_matmul_act(&self, _act: Act) -> bool {
        false
    }

    // ---- elementwise ----------------------------------------------------------
    /// `out = a + b`.
    fn add(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>);
    /// `dst += src`.
    fn add_assign(&self, dst: Self::ViewMut<'_>, src: Self::View<'_>);
    /// `dst[r, j] += v[j]` over `rows` rows of `width` (one vector added to
    /// every row: position embeddings on every image of a batch).
    fn broadcast_add(&self, dst: Self::ViewMut<'_>, v: Self::View<'_>, rows: usize, width: usize);
    /// `out = a ⊙ b` (gated feed-forwards; also the backward of one).
    fn mul(&self, out: Self::ViewMut<'_>, a: Self::View<'_>, b: Self::View<'_>);
    /// `v *= alpha`.
    fn scale(&self, v: Self::ViewMut<'_>, alpha: f32);
    /// `out = act(inp)`.
    fn activation_forward(&self, act: Act, out: Self::ViewMut<'_>, inp: Self::View<'_>);
    /// `dinp = act'(inp) · dout` (overwrites: no zeroing first).
    fn activation_backward(&self, act: Act, dinp: Self::ViewMut<'_>, inp: Self::View<'_>, dout: Self::View<'_>);

    // ---- normalisation --------------------------------------------------------
    /// LayerNorm over rows of length `c`; saves `mean[rows]` and `rstd[rows]` (f32).
    #[allow(clippy::too_many_arguments)]
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
    );
    /// A residual add and the LayerNorm after it in one pass over the rows:
    /// `res = x + delta` (`x` `None`: `res += delta`), then
    /// `layernorm_forward` of `res` into `out`, `mean`, `rstd`.
    #[allow(clippy::too_many_arguments)]
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
    );
    /// Accumulates into `dinp` and into `dw`, `db` (f32).
    #[allow(clippy::too_many_arguments)]
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
    );

    /// T5's RMS norm over rows of length `c`: `out = w · x / sqrt(mean(x²) + eps)`,
    /// no mean subtraction and no bias; saves `rstd[rows]` (f32).
    #[allow(clippy::too_many_arguments)]
    fn rmsnorm_forward(&self, out: Self::ViewMut<'_>, rstd: Self::ViewMut<'_>, inp: Self::View<'_>, w: Self::View<'_>, rows: usize, c: usize, eps: f32);
    /// A residual add and the RMS norm after it in one pass over the rows:
    /// `res = x + delta` (`x` `None`: `res += delta`), then `rmsnorm_forward`
    /// of `res` into `out`, `rstd`.
    #[allow(clippy::too_many_arguments)]
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
    );
    /// Accumulates into `dinp` and into `dw` (f32).
    #[allow(clippy::too_many_arguments)]
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
    );

    // ---- embeddings -----------------------------------------------------------
    /// `out[r] = wte[ids[r]] (+ wpe[pos[r]])` for rows of width `c`; the
    /// position table is optional (T5 has none).
    fn embedding_forward(&self, out: Self::ViewMut<'_>, ids: &Self::Ids, wte: Self::View<'_>, positions: Option<(&Self::Ids, Self::View<'_>)>, c: usize);
    /// Scatter-adds `dout` rows into `dwte[ids[r]]` (and `dwpe[pos[r]]`), f32.
    fn embedding_backward(&self, dwte: Self::ViewMut<'_>, positions: Option<(&Self::Ids, Self::ViewMut<'_>)>, dout: Self::View<'_>, ids: &Self::Ids, c: usize);
    /// T5's relative position bias: `out[h, r] = table[buckets[r], h]` for a
    /// `[heads, n]` f32 output from a `[num_buckets, heads]` table.
    fn position_bias_forward(&self, out: Self::ViewMut<'_>, table: Self::View<'_>, buckets: &Self::Ids, heads: usize);
    /// `dtable[buckets[r], h] += dout[h, r]` (both f32).
    fn position_bias_backward(&self, dtable: Self::ViewMut<'_>, dout: Self::View<'_>, buckets: &Self::Ids, heads: usize);

    // ---- attention ------------------------------------------------------------
    /// Scaled dot-product attention over heads, without a T×T matrix in
    /// memory: `out[b,i,h·d..] = Σ_j softmax_j(scale·q·k_j + bias[h,i,j] + mask) v_j`;
    /// saves the log-sum-exp `lse[b,h,i]` (f32) for the backward. See
    /// [`AttnInputs`] for the inputs' layouts; a query with no visible key
    /// gets a zero output.
    fn attention_forward(&self, out: Self::ViewMut<'_>, lse: Self::ViewMut<'_>, inp: &AttnInputs<'_, Self>, s: &AttnShape);
    /// Backward of [`Backend::attention_forward`]: writes dQ, dK, dV to
    /// `grads` (every query row and every key row below `kv_len`, zeros where
    /// no gradient reaches: no zeroing first; with no queries, nothing) and,
    /// when given, adds d bias into `dbias` ([heads, q_len, kv_len], f32,
    /// summed over the batch). Recomputes probabilities from `lse`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        grads: AttnGrads<'_, Self>,
        dbias: Option<Self::ViewMut<'_>>,
        dout: Self::View<'_>,
        out: Self::View<'_>,
        lse: Self::View<'_>,
        inp: &AttnInputs<'_, Self>,
        s: &AttnShape,
    );

    // ---- loss -----------------------------------------------------------------
    /// Fused softmax + cross-entropy over `rows` rows of `vocab` logits,
    /// `stride` (≥ vocab) elements apart; the elements between rows are
    /// neither read nor written. Writes the per-row loss (f32; 0 for ignored
    /// targets, i.e. negative ones). With `grad_scale = Some(g)` it
    /// overwrites the logits in place with `g · (softmax − onehot)` (zero
    /// rows for ignored targets).
    #[allow(clippy::too_many_arguments)]
    fn softmax_cross_entropy(&self, losses: Self::ViewMut<'_>, logits: Self::ViewMut<'_>, targets: &Self::Ids, rows: usize, vocab: usize, stride: usize, grad_scale: Option<f32>);

    // ---- decoding -------------------------------------------------------------
    /// The next token of each row of `logits` ([rows, vocab], any type) under
    /// `plan` (repetition penalty, n-gram bans, greedy or temperature/top-k/
    /// top-p sampling), as `generate::sampling::select_on_host` computes it.
    /// A device backend chooses on the device and returns only the ids.
    fn select_tokens(&self, logits: Self::View<'_>, vocab: usize, plan: &TokenPlan) -> Result<Vec<u32>> {
        let mut host = self.download(logits)?;
        Ok(crate::generate::sampling::select_on_host(&mut host, vocab, plan))
    }
    /// Each row's best `plan.n` (log-probability + running score, token)
    /// from `logits` ([rows, vocab], any type), best first, as
    /// `generate::candidates::candidates_on_host` computes them (beam search's
    /// step). A device backend selects on the device and returns only these.
    fn beam_candidates(&self, logits: Self::View<'_>, vocab: usize, plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        let host = self.download(logits)?;
        check_rows("beam_candidates", host.len(), plan.rows.len(), vocab)?;
        Ok(crate::generate::candidates::candidates_on_host(&host, vocab, plan))
    }

    // ---- optimiser ------------------------------------------------------------
    /// Σ x² over an f32 buffer (the gradients, for global-norm clipping).
    fn sum_squares(&self, v: Self::View<'_>) -> f32;
    /// One AdamW step over the flat parameter buffer (`step` counts from 1),
    /// on gradients multiplied by `grad_scale` (the clipping factor, fused).
    /// `grads`, `m`, `v` are f32. With `master` (f32 master weights, for a
    /// compute type narrower than f32) the step updates `master` and writes
    /// its rounding into `params`; without, it updates `params` itself.
    #[allow(clippy::too_many_arguments)]
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
    );
}

/// The inputs of one attention call. Rows of `q` (stride `q_stride`) and of
/// `k`/`v` (stride `kv_stride`, `kv_cap` rows per batch element) may
/// interleave, so a fused QKV or KV buffer or a KV cache is passed as is.
pub struct AttnInputs<'a, B: Backend + ?Sized + 'a> {
    pub q: B::View<'a>,
    pub k: B::View<'a>,
    pub v: B::View<'a>,
    /// `[batch, kv_cap]` (f32): 1 keeps key j, 0 hides it (padding).
    pub key_mask: Option<B::View<'a>>,
    /// `[heads, q_len, kv_len]` (f32), added to every batch element's scores
    /// (T5's relative position bias).
    pub bias: Option<B::View<'a>>,
}

impl<'a, B: Backend + ?Sized> AttnInputs<'a, B> {
    /// Self-attention on a fused `[rows, 3·c]` QKV buffer (`c` = heads·d).
    pub fn fused(qkv: B::View<'a>, c: usize, len: usize) -> Self {
        AttnInputs { q: qkv, k: B::slice(qkv, c, len - c), v: B::slice(qkv, 2 * c, len - 2 * c), key_mask: None, bias: None }
    }
    /// Queries `q` against a fused `[rows, 2·c]` KV buffer.
    pub fn with_kv(q: B::View<'a>, kv: B::View<'a>, c: usize, len: usize) -> Self {
        AttnInputs { q, k: kv, v: B::slice(kv, c, len - c), key_mask: None, bias: None }
    }
    pub fn mask(mut self, key_mask: Option<B::View<'a>>) -> Self {
        self.key_mask = key_mask;
        self
    }
    pub fn bias(mut self, bias: Option<B::View<'a>>) -> Self {
        self.bias = bias;
        self
    }
}

/// Where the attention backward accumulates dQ, dK and dV; each gradient
/// has the layout and stride of its input.
pub enum AttnGrads<'a, B: Backend + ?Sized + 'a> {
    /// Self-attention on a fused QKV buffer `[rows, 3, heads·d]` (see
    /// [`AttnInputs::fused`]): one buffer like it.
    Fused(B::ViewMut<'a>),
    /// dQ like `q`, and dK/dV in one buffer like a fused KV input
    /// `[rows, 2, heads·d]` (see [`AttnInputs::with_kv`]).
    Split { dq: B::ViewMut<'a>, dkv: B::ViewMut<'a> },
}

/// `Backend::write` and `write_ids` replace a buffer's contents, all of them.
/// Fails unless `len` values hold `rows` rows of `vocab`.
pub(crate) fn check_rows(op: &str, len: usize, rows: usize, vocab: usize) -> Result<()> {
    if len < rows * vocab {
        return Err(crate::Error::Invalid(format!("{op}: {len} logits are fewer than {rows} rows of {vocab}")));
    }
    Ok(())
}

pub(crate) fn check_write_len(dst: usize, host: usize) -> Result<()> {
    match dst == host {
        true => Ok(()),
        false => Err(crate::Error::Invalid(format!("writing {host} values into a device buffer of {dst}"))),
    }
}
