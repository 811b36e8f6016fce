//! Row-major matrix products on the device's GEMM (cublasGemmEx on a GPU: f32
//! without TF32, or bf16 operands with f32 accumulation and an f32 or bf16
//! result). The bias goes in by a broadcast kernel run first (the GEMM then
//! accumulates onto it), or with `bias_epilogue` as cuBLASLt's bias epilogue
//! (one pass over the output instead of three; the bias 16-byte aligned).
//! GELU (tanh) after a product, and its derivative applied to a gradient
//! product, can go in cuBLASLt's GELU epilogues (`matmul_gelu`,
//! `matmul_dgelu`) where the operands meet their requirements.
//!
//! cuBLAS is column-major: a row-major `[r, c]` matrix is the column-major
//! `[c, r]` matrix in the same memory. So `out[m,n] = op(a)·op(b)` is computed
//! as `outᵀ[n,m] = op(b)ᵀ·op(a)ᵀ`, swapping the operands instead of copying.

use super::buffer::{CuView, CuViewMut};
use super::driver::{Epilogue, GemmEx};
use super::packed_kernel;
use super::runtime::{KernelArg, Runtime};
use crate::backend::Gemm;
use crate::tensor::DType;

pub fn matmul(rt: &Runtime, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm, bias_epilogue: bool) {
    check(&out, a, b, bias, g);
    if g.m == 0 || g.n == 0 {
        return;
    }
    let epilogue_bias = bias.filter(|b| bias_epilogue && b.ptr % 16 == 0);
    if let (Some(bias), None) = (bias, epilogue_bias) {
        broadcast_rows(rt, out.dtype, out.ptr, bias.ptr, (g.m, g.n, g.stored_out().stride), g.accumulate);
    }
    let accumulate = g.accumulate || (bias.is_some() && epilogue_bias.is_none());
    let epilogue = epilogue_bias.map_or(Epilogue::None, |b| Epilogue::Bias { bias: b.ptr });
    run(rt, &out, a, b, g, accumulate, epilogue);
}

/// `out[r, j] = v[j]`, or `+= v[j]` when `accumulate`, over `(rows, n,
/// stride)`: rows of n values `stride` apart (the bias before a product
/// accumulates onto it; `broadcast_add`). 16-byte packs where n, the stride
/// and both addresses allow.
pub fn broadcast_rows(rt: &Runtime, dtype: DType, out: u64, v: u64, (rows, n, stride): (usize, usize, usize), accumulate: bool) {
    let per_pack = 16 / dtype.size();
    let vec = n.is_multiple_of(per_pack) && stride.is_multiple_of(per_pack) && out.is_multiple_of(16) && v.is_multiple_of(16);
    let packs = if vec { n / per_pack } else { n };
    if rows == 0 || packs == 0 {
        return;
    }
    // A block: up to 256 threads across a row's packs, the rest of 256 over rows.
    let tx = packs.next_multiple_of(32).min(256);
    let ty = (256 / tx).max(1);
    let grid = (packs.div_ceil(tx) as u32, rows.div_ceil(ty).min(65_535) as u32, 1);
    let name = packed_kernel("bias_broadcast", vec, dtype);
    let args: [&dyn KernelArg; 6] = [&out, &v, &(rows as i64), &(n as i64), &(stride as i64), &(accumulate as i32)];
    rt.launch(&name, grid, (tx as u32, ty as u32, 1), &args);
}

/// `pre = op(a)·op(b) (+ bias)` and `out = gelu_tanh(pre)` (`out` and `pre`
/// laid out alike) by one cuBLASLt product with the GELU_AUX(_BIAS)
/// epilogue. Returns false, having done nothing, where the epilogue cannot
/// take these operands (see `aux_usable`).
pub fn matmul_gelu(rt: &Runtime, out: CuViewMut<'_>, pre: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) -> bool {
    check(&out, a, b, bias, g);
    if !aux_usable(&out, pre.ptr, pre.len, pre.dtype, a, g) || bias.is_some_and(|b| !b.ptr.is_multiple_of(16)) {
        return false;
    }
    let epilogue = Epilogue::GeluAux { bias: bias.map_or(0, |b| b.ptr), aux: pre.ptr, ld: g.stored_out().stride };
    run(rt, &out, a, b, g, false, epilogue);
    true
}

/// `dpre = gelu_tanh'(pre) ⊙ op(a)·op(b)` (`dpre` and `pre` laid out alike)
/// by one cuBLASLt product with the DGELU epilogue. Returns false, having
/// done nothing, where the epilogue cannot take these operands.
pub fn matmul_dgelu(rt: &Runtime, dpre: CuViewMut<'_>, pre: CuView<'_>, a: CuView<'_>, b: CuView<'_>, g: Gemm) -> bool {
    check(&dpre, a, b, None, g);
    if !aux_usable(&dpre, pre.ptr, pre.len, pre.dtype, a, g) {
        return false;
    }
    run(rt, &dpre, a, b, g, false, Epilogue::DGelu { aux: pre.ptr, ld: g.stored_out().stride });
    true
}

/// Whether an aux matrix (`pre`) can sit beside `out` in a GELU epilogue:
/// an overwriting product with a result of the operands' type, rows a
/// multiple of 8 elements apart (cuBLASLt's rule for aux's leading
/// dimension, which is out's), and both 16-byte aligned.
fn aux_usable(out: &CuViewMut<'_>, pre: u64, pre_len: usize, pre_dtype: DType, a: CuView<'_>, g: Gemm) -> bool {
    let so = g.stored_out();
    g.m > 0
        && g.n > 0
        && !g.accumulate
        && out.dtype == a.dtype
        && pre_dtype == out.dtype
        && pre_len >= so.span()
        && so.stride.is_multiple_of(8)
        && out.ptr.is_multiple_of(16)
        && pre.is_multiple_of(16)
}

fn check(out: &CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm) {
    let (sa, sb, so) = (g.stored_a(), g.stored_b(), g.stored_out());
    assert!(g.strides_valid() && out.len >= so.span() && a.len >= sa.span() && b.len >= sb.span(), "matmul: views smaller than {g:?}");
    assert!(a.dtype == b.dtype && (out.dtype == a.dtype || out.dtype == DType::F32), "matmul: {:?}·{:?} into {:?}", a.dtype, b.dtype, out.dtype);
    if let Some(bias) = bias {
        assert!(bias.len >= g.n && bias.dtype == out.dtype, "matmul: bias shorter than n = {} or of another type", g.n);
    }
}

/// Queues the product (`accumulate`: onto what `out` holds).
fn run(rt: &Runtime, out: &CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, g: Gemm, accumulate: bool, epilogue: Epilogue) {
    let (sa, sb, so) = (g.stored_a(), g.stored_b(), g.stored_out());
    // Row-major b is [k,n] (or [n,k] when transposed), i.e. column-major
    // [n,k] (or [k,n]) with the row stride as leading dimension; likewise a.
    let gemm = GemmEx {
        trans_a: g.trans_b,
        trans_b: g.trans_a,
        m: g.n,
        n: g.m,
        k: g.k,
        alpha: 1.0,
        a: b.ptr,
        lda: sb.stride.max(1),
        b: a.ptr,
        ldb: sa.stride.max(1),
        beta: if accumulate { 1.0 } else { 0.0 },
        c: out.ptr,
        ldc: so.stride.max(1),
        a_type: b.dtype,
        b_type: a.dtype,
        c_type: out.dtype,
        epilogue,
    };
    if let Err(e) = rt.driver.gemm(&gemm) {
        rt.record(e);
    }
}
