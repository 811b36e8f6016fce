//! [`Backend::matmul_act`] and its backward as their two ops each: the
//! trait's defaults, and what the profiling wrapper runs to time the ops one
//! by one where its backend does not fuse them.

use super::{Act, Backend, Gemm};

#[allow(clippy::too_many_arguments)]
pub fn matmul_act<B: Backend + ?Sized>(be: &B, act: Act, out: B::ViewMut<'_>, mut pre: B::ViewMut<'_>, a: B::View<'_>, b: B::View<'_>, bias: Option<B::View<'_>>, g: Gemm) {
    assert!(!g.accumulate, "matmul_act overwrites pre");
    be.matmul(B::reborrow(&mut pre), a, b, bias, g);
    be.activation_forward(act, out, B::freeze(pre));
}

#[allow(clippy::too_many_arguments)]
pub fn matmul_act_backward<B: Backend + ?Sized>(be: &B, act: Act, dpre: B::ViewMut<'_>, pre: B::View<'_>, mut scratch: B::ViewMut<'_>, a: B::View<'_>, b: B::View<'_>, g: Gemm) {
    assert!(!g.accumulate, "matmul_act_backward overwrites dpre");
    be.matmul(B::reborrow(&mut scratch), a, b, None, g);
    be.activation_backward(act, dpre, pre, B::freeze(scratch));
}
