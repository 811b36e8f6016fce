//! The pre-LayerNorm transformer block that GPT-2, GPT-Neo and both CLIP
//! towers share, forward (keeping what the backward needs) and backward:
//!
//!   res = x + proj(attn(qkv(ln_1(x))))
//!   out = res + fc2(act(fc(ln_2(res))))
//!
//! A stack runs forward as a whole ([`stack_forward`]): each residual add
//! is written in the same pass as the norm that reads it, block l's `out`
//! with block l + 1's `ln_1` and the last one's with the stack's final norm.
//!
//! Models differ only in what [`BlockSpec`] and the attention shape carry:
//! weight layout (`Conv1D` [in, out] or `nn.Linear` [out, in]), the
//! activation, score scaling, causal/local masks and a padding mask.

use super::Linear;
use crate::backend::{Act, AttnGrads, AttnInputs, AttnShape, Backend};
use crate::Result;

/// One block's parameters. The q/k/v projection is fused: [C, 3C] (Conv1D)
/// or [3C, C] (`nn.Linear`, q/k/v stacked).
pub struct BlockWeights<T> {
    pub ln_1_w: T,           // [C]
    pub ln_1_b: T,           // [C]
    pub c_attn_w: T,         // fused q/k/v
    pub c_attn_b: Option<T>, // [3C] (GPT-Neo has none)
    pub attn_proj_w: T,      // [C, C]
    pub attn_proj_b: T,      // [C]
    pub ln_2_w: T,           // [C]
    pub ln_2_b: T,           // [C]
    pub c_fc_w: T,           // [C, I] or [I, C]
    pub c_fc_b: T,           // [I]
    pub mlp_proj_w: T,       // [I, C] or [C, I]
    pub mlp_proj_b: T,       // [C]
}

/// What a model's blocks are made of.
#[derive(Clone, Copy, Debug)]
pub struct BlockSpec {
    /// Width C and MLP width I.
    pub c: usize,
    pub inner: usize,
    pub layout: super::WeightLayout,
    pub act: Act,
    pub eps: f32,
}

impl BlockSpec {
    fn linear(&self, inp: usize, out: usize) -> Linear {
        Linear { inp, out, layout: self.layout, out_stride: out }
    }
}

/// The activations one block keeps for its backward, for `rows` rows.
pub struct BlockActs<B: Backend> {
    ln1: B::Buf,      // [R, C]
    ln1_mean: B::Buf, // [R] f32
    ln1_rstd: B::Buf, // [R] f32
    qkv: B::Buf,      // [R, 3C]
    atty: B::Buf,     // [R, C]
    lse: B::Buf,      // [B, H, T] f32
    res: B::Buf,      // [R, C] residual after attention
    ln2: B::Buf,      // [R, C]
    ln2_mean: B::Buf, // [R] f32
    ln2_rstd: B::Buf, // [R] f32
    fch: B::Buf,      // [R, I]
    fch_act: B::Buf,  // [R, I]
    /// [R, C] the block's output (the next block's input).
    pub out: B::Buf,
}

impl<B: Backend> BlockActs<B> {
    pub fn new(be: &B, spec: &BlockSpec, rows: usize, heads: usize) -> Result<Self> {
        let (c, i) = (spec.c, spec.inner);
        let (z, z32) = (|n: usize| be.zeros(n), |n: usize| be.zeros_f32(n));
        Ok(BlockActs {
            ln1: z(rows * c)?,
            ln1_mean: z32(rows)?,
            ln1_rstd: z32(rows)?,
            qkv: z(rows * 3 * c)?,
            atty: z(rows * c)?,
            lse: z32(rows * heads)?,
            res: z(rows * c)?,
            ln2: z(rows * c)?,
            ln2_mean: z32(rows)?,
            ln2_rstd: z32(rows)?,
            fch: z(rows * i)?,
            fch_act: z(rows * i)?,
            out: z(rows * c)?,
        })
    }
}

/// Scratch shared by every block of a stack: the projection output of the
/// forward, and the gradient buffers of the backward.
pub struct BlockScratch<B: Backend> {
    proj: B::Buf, // [R, C]
    /// [R, C] gradient of the residual stream: the caller seeds it with d out
    /// before [`block_backward`], which leaves d x in it.
    pub dres: B::Buf,
    /// [R, C] gradient of a LayerNorm output (free for the caller between blocks).
    pub dln: B::Buf,
    dqkv: B::Buf,     // [R, 3C]
    datty: B::Buf,    // [R, C]
    dfch: B::Buf,     // [R, I]
    dfch_act: B::Buf, // [R, I]
}

impl<B: Backend> BlockScratch<B> {
    pub fn new(be: &B, spec: &BlockSpec, rows: usize) -> Result<Self> {
        let (c, i) = (spec.c, spec.inner);
        Ok(BlockScratch {
            proj: be.zeros(rows * c)?,
            dres: be.zeros(rows * c)?,
            dln: be.zeros(rows * c)?,
            dqkv: be.zeros(rows * 3 * c)?,
            datty: be.zeros(rows * c)?,
            dfch: be.zeros(rows * i)?,
            dfch_act: be.zeros(rows * i)?,
        })
    }
}

/// What a stack does with its last block's output.
pub enum StackEnd<'a, B: Backend + 'a> {
    /// Writes it to the last block's `out` (the caller reads rows of it).
    Plain,
    /// Writes it to the last block's `out` and its LayerNorm over every row
    /// (the stack's final norm) to `out`, `mean` and `rstd`, in one pass.
    Norm { out: B::ViewMut<'a>, mean: B::ViewMut<'a>, rstd: B::ViewMut<'a>, w: B::View<'a>, b: B::View<'a> },
}

/// Forward of a stack of blocks on the rows of `x`, block l with
/// `weights[l]`, `acts[l]` and attention shape `shape(l)`; every block's
/// output lands in its `out` (the next block's input, which its backward
/// reads), the last one's as `end` says.
#[allow(clippy::too_many_arguments)]
pub fn stack_forward<'e, B: Backend + 'e>(
    be: &B,
    spec: &BlockSpec,
    weights: &[BlockWeights<B::View<'_>>],
    acts: &mut [BlockActs<B>],
    x: B::View<'_>,
    mask: Option<B::View<'_>>,
    shape: impl Fn(usize) -> AttnShape,
    scratch: &mut BlockScratch<B>,
    end: StackEnd<'e, B>,
) {
    let (c, eps) = (spec.c, spec.eps);
    for (l, w) in weights.iter().enumerate() {
        let s = shape(l);
        let rows = s.batch * s.q_len;
        let (prev, cur) = acts.split_at_mut(l);
        let a = &mut cur[0];
        let (ln1, mean, rstd) = (B::view_mut(&mut a.ln1), B::view_mut(&mut a.ln1_mean), B::view_mut(&mut a.ln1_rstd));
        // ln_1 of the input: the stack's, or the previous block's output
        // (its residual plus its MLP's projection, still in scratch.proj) as it is summed.
        let input = match prev.last_mut() {
            None => {
                be.layernorm_forward(ln1, mean, rstd, x, w.ln_1_w, w.ln_1_b, rows, c, eps);
                B::shorten(x)
            }
            Some(p) => {
                let (out, res, proj) = (B::view_mut(&mut p.out), B::view(&p.res), B::view(&scratch.proj));
                be.add_layernorm_forward(out, ln1, mean, rstd, Some(res), proj, w.ln_1_w, w.ln_1_b, rows, c, eps);
                B::view(&p.out)
            }
        };
        block_body(be, spec, w, a, input, mask.map(B::shorten), &s, scratch);
    }
    // Configs with no layers are refused when they load.
    let last = acts[..weights.len()].last_mut().expect("a stack has blocks");
    let s = shape(weights.len() - 1);
    let (out, res, proj) = (B::view_mut(&mut last.out), B::view(&last.res), B::view(&scratch.proj));
    match end {
        StackEnd::Plain => be.add(out, res, proj),
        StackEnd::Norm { out: ln, mean, rstd, w, b } => be.add_layernorm_forward(out, ln, mean, rstd, Some(res), proj, w, b, s.batch * s.q_len, c, eps),
    }
}

/// One block's forward past its `ln_1` (in `a.ln1`, of input `x`): leaves
/// the block's output as `a.res` + `scratch.proj` (the MLP's projection), for
/// [`stack_forward`] to add as the next norm reads it.
#[allow(clippy::too_many_arguments)]
fn block_body<B: Backend>(
    be: &B,
    spec: &BlockSpec,
    w: &BlockWeights<B::View<'_>>,
    a: &mut BlockActs<B>,
    x: B::View<'_>,
    mask: Option<B::View<'_>>,
    s: &AttnShape,
    scratch: &mut BlockScratch<B>,
) {
    let (c, i, rows) = (spec.c, spec.inner, s.batch * s.q_len);
    spec.linear(c, 3 * c).forward(be, B::view_mut(&mut a.qkv), B::view(&a.ln1), w.c_attn_w, w.c_attn_b, rows);
    let inp = AttnInputs::fused(B::view(&a.qkv), c, rows * 3 * c).mask(mask.map(B::shorten));
    be.attention_forward(B::view_mut(&mut a.atty), B::view_mut(&mut a.lse), &inp, s);
    spec.linear(c, c).forward(be, B::view_mut(&mut scratch.proj), B::view(&a.atty), w.attn_proj_w, Some(w.attn_proj_b), rows);
    let (res, ln2) = (B::view_mut(&mut a.res), B::view_mut(&mut a.ln2));
    be.add_layernorm_forward(res, ln2, B::view_mut(&mut a.ln2_mean), B::view_mut(&mut a.ln2_rstd), Some(x), B::view(&scratch.proj), w.ln_2_w, w.ln_2_b, rows, c, spec.eps);
    spec.linear(c, i).forward_act(be, spec.act, B::view_mut(&mut a.fch_act), B::view_mut(&mut a.fch), B::view(&a.ln2), w.c_fc_w, Some(w.c_fc_b), rows);
    spec.linear(i, c).forward(be, B::view_mut(&mut scratch.proj), B::view(&a.fch_act), w.mlp_proj_w, Some(w.mlp_proj_b), rows);
}

/// Backward of one block: `scratch.dres` holds d out on entry and d x on
/// return; parameter gradients accumulate into `g`.
#[allow(clippy::too_many_arguments)]
pub fn block_backward<B: Backend>(
    be: &B,
    spec: &BlockSpec,
    w: &BlockWeights<B::View<'_>>,
    g: &mut BlockWeights<B::ViewMut<'_>>,
    a: &BlockActs<B>,
    x: B::View<'_>,
    mask: Option<B::View<'_>>,
    s: &AttnShape,
    scratch: &mut BlockScratch<B>,
) {
    let (c, i, rows) = (spec.c, spec.inner, s.batch * s.q_len);
    let BlockScratch { dres, dln, dqkv, datty, dfch, dfch_act, .. } = scratch;
    // MLP: out = res + fc2(act(fc(ln_2(res)))).
    let mlp_proj = spec.linear(i, c);
    mlp_proj.backward(be, None, B::reborrow(&mut g.mlp_proj_w), Some(B::reborrow(&mut g.mlp_proj_b)), B::view(dres), B::view(&a.fch_act), w.mlp_proj_w, rows, false);
    mlp_proj.input_grad_through_act(be, spec.act, B::view_mut(dfch), B::view(&a.fch), B::view_mut(dfch_act), B::view(dres), w.mlp_proj_w, rows);
    spec.linear(c, i).backward(be, Some(B::view_mut(dln)), B::reborrow(&mut g.c_fc_w), Some(B::reborrow(&mut g.c_fc_b)), B::view(dfch), B::view(&a.ln2), w.c_fc_w, rows, false);
    let (m2, r2) = (B::view(&a.ln2_mean), B::view(&a.ln2_rstd));
    be.layernorm_backward(B::view_mut(dres), B::reborrow(&mut g.ln_2_w), B::reborrow(&mut g.ln_2_b), B::view(dln), B::view(&a.res), w.ln_2_w, m2, r2, rows, c);
    // Attention: res = x + proj(attn(qkv(ln_1(x)))).
    spec.linear(c, c).backward(
        be,
        Some(B::view_mut(datty)),
        B::reborrow(&mut g.attn_proj_w),
        Some(B::reborrow(&mut g.attn_proj_b)),
        B::view(dres),
        B::view(&a.atty),
        w.attn_proj_w,
        rows,
        false,
    );
    let inp = AttnInputs::fused(B::view(&a.qkv), c, rows * 3 * c).mask(mask.map(B::shorten));
    be.attention_backward(AttnGrads::Fused(B::view_mut(dqkv)), None, B::view(datty), B::view(&a.atty), B::view(&a.lse), &inp, s);
    let dqkv_b = g.c_attn_b.as_mut().map(|b| B::reborrow(b));
    spec.linear(c, 3 * c).backward(be, Some(B::view_mut(dln)), B::reborrow(&mut g.c_attn_w), dqkv_b, B::view(dqkv), B::view(&a.ln1), w.c_attn_w, rows, false);
    let (m1, r1) = (B::view(&a.ln1_mean), B::view(&a.ln1_rstd));
    be.layernorm_backward(B::view_mut(dres), B::reborrow(&mut g.ln_1_w), B::reborrow(&mut g.ln_1_b), B::view(dln), x, w.ln_1_w, m1, r1, rows, c);
}
