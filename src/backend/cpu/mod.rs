//! The CPU backend: the numerical reference. Every kernel is generic over the
//! float type (f32 here, f64 in the finite-difference checks) and runs on the
//! rayon thread pool; matrix products go through faer.

pub mod adamw;
pub mod attention;
pub mod elementwise;
pub mod embedding;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod real;
pub mod rmsnorm;
mod simd;

use super::{check_write_len, Act, AdamW, AttnGrads, AttnInputs, AttnShape, Backend, DecaySegment, Gemm};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Cpu {
    /// The CPU backend, which computes in f32 only.
    pub fn for_dtype(dtype: crate::tensor::DType) -> Result<Self> {
        match dtype {
            crate::tensor::DType::F32 => Ok(Cpu),
            other => Err(crate::Error::Invalid(format!("--dtype {other}: the CPU backend computes in f32 (bf16 is for --device cuda)"))),
        }
    }
}

impl Backend for Cpu {
    type Buf = Vec<f32>;
    type View<'a> = &'a [f32];
    type ViewMut<'a> = &'a mut [f32];
    type Ids = Vec<i32>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn zeros(&self, n: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; n])
    }
    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        Ok(host.to_vec())
    }
    fn upload_owned(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        Ok(host)
    }
    fn download(&self, v: &[f32]) -> Result<Vec<f32>> {
        Ok(v.to_vec())
    }
    fn upload_ids(&self, host: &[i32]) -> Result<Vec<i32>> {
        Ok(host.to_vec())
    }
    fn write(&self, dst: &mut [f32], host: &[f32]) -> Result<()> {
        check_write_len(dst.len(), host.len())?;
        dst.copy_from_slice(host);
        Ok(())
    }
    fn write_ids(&self, dst: &mut Vec<i32>, host: &[i32]) -> Result<()> {
        check_write_len(dst.len(), host.len())?;
        dst.copy_from_slice(host);
        Ok(())
    }
    fn fill(&self, v: &mut [f32], value: f32) {
        v.fill(value)
    }

    fn copy_rows(&self, dst: &mut [f32], dst_stride: usize, src: &[f32], src_stride: usize, rows: usize, width: usize) {
        for r in 0..rows {
            dst[r * dst_stride..][..width].copy_from_slice(&src[r * src_stride..][..width]);
        }
    }
    fn gather_rows(&self, dst: &mut [f32], dst_stride: usize, src: &[f32], src_stride: usize, index: &Vec<i32>, rows: usize, width: usize) {
        for (r, &from) in index[..rows].iter().enumerate() {
            dst[r * dst_stride..][..width].copy_from_slice(&src[from as usize * src_stride..][..width]);
        }
    }

    fn view(b: &Vec<f32>) -> &[f32] {
        b
    }
    fn view_mut(b: &mut Vec<f32>) -> &mut [f32] {
        b
    }
    fn slice<'a>(v: Self::View<'a>, offset: usize, len: usize) -> Self::View<'a> {
        &v[offset..offset + len]
    }
    fn split_mut<'a>(v: Self::ViewMut<'a>, at: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        v.split_at_mut(at)
    }
    fn reborrow<'b>(v: &'b mut &mut [f32]) -> &'b mut [f32] {
        v
    }
    fn freeze<'a>(v: Self::ViewMut<'a>) -> Self::View<'a> {
        v
    }
    fn shorten<'a: 'b, 'b>(v: &'a [f32]) -> &'b [f32] {
        v
    }

    fn matmul(&self, out: &mut [f32], a: &[f32], b: &[f32], bias: Option<&[f32]>, g: Gemm) {
        matmul::matmul(out, a, b, bias, g)
    }
    fn bias_backward(&self, dbias: &mut [f32], dout: &[f32], rows: usize, n: usize) {
        matmul::bias_backward(dbias, dout, rows, n)
    }

    fn add(&self, out: &mut [f32], a: &[f32], b: &[f32]) {
        elementwise::add(out, a, b)
    }
    fn add_assign(&self, dst: &mut [f32], src: &[f32]) {
        elementwise::add_assign(dst, src)
    }
    fn broadcast_add(&self, dst: &mut [f32], v: &[f32], rows: usize, width: usize) {
        elementwise::broadcast_add(dst, v, rows, width)
    }
    fn mul(&self, out: &mut [f32], a: &[f32], b: &[f32]) {
        elementwise::mul(out, a, b)
    }
    fn scale(&self, v: &mut [f32], alpha: f32) {
        elementwise::scale(v, alpha)
    }
    fn activation_forward(&self, act: Act, out: &mut [f32], inp: &[f32]) {
        elementwise::activation_forward(act, out, inp)
    }
    fn activation_backward(&self, act: Act, dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
        elementwise::activation_backward(act, dinp, inp, dout)
    }

    fn layernorm_forward(&self, out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], inp: &[f32], w: &[f32], b: &[f32], rows: usize, c: usize, eps: f32) {
        layernorm::layernorm_forward(out, mean, rstd, inp, w, b, rows, c, eps)
    }
    fn add_layernorm_forward(
        &self,
        res: &mut [f32],
        out: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
        x: Option<&[f32]>,
        delta: &[f32],
        w: &[f32],
        b: &[f32],
        rows: usize,
        c: usize,
        eps: f32,
    ) {
        layernorm::add_layernorm_forward(res, out, mean, rstd, x, delta, w, b, rows, c, eps)
    }
    fn layernorm_backward(&self, dinp: &mut [f32], dw: &mut [f32], db: &mut [f32], dout: &[f32], inp: &[f32], w: &[f32], mean: &[f32], rstd: &[f32], rows: usize, c: usize) {
        layernorm::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, c)
    }

    fn rmsnorm_forward(&self, out: &mut [f32], rstd: &mut [f32], inp: &[f32], w: &[f32], rows: usize, c: usize, eps: f32) {
        rmsnorm::rmsnorm_forward(out, rstd, inp, w, rows, c, eps)
    }
    fn add_rmsnorm_forward(&self, res: &mut [f32], out: &mut [f32], rstd: &mut [f32], x: Option<&[f32]>, delta: &[f32], w: &[f32], rows: usize, c: usize, eps: f32) {
        rmsnorm::add_rmsnorm_forward(res, out, rstd, x, delta, w, rows, c, eps)
    }
    fn rmsnorm_backward(&self, dinp: &mut [f32], dw: &mut [f32], dout: &[f32], inp: &[f32], w: &[f32], rstd: &[f32], rows: usize, c: usize) {
        rmsnorm::rmsnorm_backward(dinp, dw, dout, inp, w, rstd, rows, c)
    }

    fn embedding_forward(&self, out: &mut [f32], ids: &Vec<i32>, wte: &[f32], positions: Option<(&Vec<i32>, &[f32])>, c: usize) {
        embedding::embedding_forward(out, ids, wte, positions.map(|(p, w)| (p.as_slice(), w)), c)
    }
    fn embedding_backward(&self, dwte: &mut [f32], positions: Option<(&Vec<i32>, &mut [f32])>, dout: &[f32], ids: &Vec<i32>, c: usize) {
        embedding::embedding_backward(dwte, positions.map(|(p, w)| (p.as_slice(), w)), dout, ids, c)
    }
    fn position_bias_forward(&self, out: &mut [f32], table: &[f32], buckets: &Vec<i32>, heads: usize) {
        embedding::position_bias_forward(out, table, buckets, heads)
    }
    fn position_bias_backward(&self, dtable: &mut [f32], dout: &[f32], buckets: &Vec<i32>, heads: usize) {
        embedding::position_bias_backward(dtable, dout, buckets, heads)
    }

    fn attention_forward(&self, out: &mut [f32], lse: &mut [f32], inp: &AttnInputs<'_, Self>, s: &AttnShape) {
        attention::attention_forward(out, lse, &cpu_inputs(inp), s)
    }
    fn attention_backward(&self, grads: AttnGrads<'_, Self>, dbias: Option<&mut [f32]>, dout: &[f32], out: &[f32], lse: &[f32], inp: &AttnInputs<'_, Self>, s: &AttnShape) {
        let grads = match grads {
            AttnGrads::Fused(buf) => attention::Grads::Fused(buf),
            AttnGrads::Split { dq, dkv } => attention::Grads::Split { dq, dkv },
        };
        attention::attention_backward(grads, dbias, dout, out, lse, &cpu_inputs(inp), s)
    }

    fn softmax_cross_entropy(&self, losses: &mut [f32], logits: &mut [f32], targets: &Vec<i32>, rows: usize, vocab: usize, stride: usize, grad_scale: Option<f32>) {
        loss::softmax_cross_entropy(losses, logits, targets, rows, vocab, stride, grad_scale)
    }

    fn sum_squares(&self, v: &[f32]) -> f32 {
        adamw::sum_squares(v)
    }
    fn adamw(&self, params: &mut [f32], master: Option<&mut [f32]>, grads: &[f32], m: &mut [f32], v: &mut [f32], segments: &[DecaySegment], h: &AdamW, step: u64, grad_scale: f32) {
        match master {
            // f32 compute has no use for master weights, but honours them.
            Some(master) => {
                adamw::adamw(master, grads, m, v, segments, h, step, grad_scale);
                params.copy_from_slice(master);
            }
            None => adamw::adamw(params, grads, m, v, segments, h, step, grad_scale),
        }
    }
}

fn cpu_inputs<'a>(inp: &AttnInputs<'a, Cpu>) -> attention::Inputs<'a, f32> {
    attention::Inputs { q: inp.q, k: inp.k, v: inp.v, mask: inp.key_mask, bias: inp.bias }
}
