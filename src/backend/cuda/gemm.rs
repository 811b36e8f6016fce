//! Row-major matrix products on the device's GEMM (cublasGemmEx on a GPU: f32
//! without TF32, or bf16 operands with f32 accumulation and an f32 or bf16
//! result). The bias goes in by a broadcast kernel run first (the GEMM then
//! accumulates onto it), or with `bias_epilogue` as cuBLASLt's bias epilogue
//! (one pass over the output instead of three; the bias 16-byte aligned).
//!
//! cuBLAS is column-major: a row-major `[r, c]` matrix is the column-major
//! `[c, r]` matrix in the same memory. So `out[m,n] = op(a)·op(b)` is computed
//! as `outᵀ[n,m] = op(b)ᵀ·op(a)ᵀ`, swapping the operands instead of copying.

use super::buffer::{CuView, CuViewMut};
use super::driver::GemmEx;
use super::kernel;
use super::runtime::{KernelArg, Runtime};
use crate::backend::Gemm;
use crate::tensor::DType;

pub fn matmul(rt: &Runtime, out: CuViewMut<'_>, a: CuView<'_>, b: CuView<'_>, bias: Option<CuView<'_>>, g: Gemm, bias_epilogue: bool) {
    let (m, n, k) = (g.m, g.n, g.k);
    let (sa, sb, so) = (g.stored_a(), g.stored_b(), g.stored_out());
    assert!(g.strides_valid() && out.len >= so.span() && a.len >= sa.span() && b.len >= sb.span(), "matmul: views smaller than {g:?}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.dtype == b.dtype && (out.dtype == a.dtype || out.dtype == DType::F32), "matmul: {:?}·{:?} into {:?}", a.dtype, b.dtype, out.dtype);
    if let Some(bias) = bias {
        assert!(bias.len >= n && bias.dtype == out.dtype, "matmul: bias shorter than n = {n} or of another type");
    }
    let epilogue_bias = bias.filter(|b| bias_epilogue && b.ptr % 16 == 0);
    if let (Some(bias), None) = (bias, epilogue_bias) {
        let args: [&dyn KernelArg; 6] = [&out.ptr, &bias.ptr, &(m as i64), &(n as i64), &(so.stride as i64), &(g.accumulate as i32)];
        rt.launch_1d(&kernel("bias_broadcast", out.dtype), m * n, &args);
    }
    // Row-major b is [k,n] (or [n,k] when transposed), i.e. column-major
    // [n,k] (or [k,n]) with the row stride as leading dimension; likewise a.
    let gemm = GemmEx {
        trans_a: g.trans_b,
        trans_b: g.trans_a,
        m: n,
        n: m,
        k,
        alpha: 1.0,
        a: b.ptr,
        lda: sb.stride.max(1),
        b: a.ptr,
        ldb: sa.stride.max(1),
        beta: if g.accumulate || (bias.is_some() && epilogue_bias.is_none()) { 1.0 } else { 0.0 },
        c: out.ptr,
        ldc: so.stride.max(1),
        a_type: b.dtype,
        b_type: a.dtype,
        c_type: out.dtype,
        bias: epilogue_bias.map_or(0, |b| b.ptr),
    };
    if let Err(e) = rt.driver.gemm(&gemm) {
        rt.record(e);
    }
}
