//! AdamW with its moment buffers laid out like the parameters, a linear
//! warmup + cosine schedule, and global-norm gradient clipping.

use crate::backend::{AdamW, Backend, DecaySegment};
use crate::nn::{Layout, ParamSpec};
use crate::Result;

pub struct Optimizer<B: Backend> {
    pub hyper: AdamW,
    /// First and second moments (f32).
    pub m: B::Buf,
    pub v: B::Buf,
    /// Steps taken so far.
    pub step: u64,
    pub segments: Vec<DecaySegment>,
}

/// Decay 2-D weights only (matrices and embeddings), not biases or norm gains,
/// as llm.c and the Hugging Face examples do.
pub fn default_decay(spec: &ParamSpec) -> bool {
    spec.shape.len() >= 2
}

impl<B: Backend> Optimizer<B> {
    pub fn new(be: &B, layout: &Layout, hyper: AdamW, decay: impl Fn(&ParamSpec) -> bool) -> Result<Self> {
        Ok(Optimizer { hyper, m: be.zeros_f32(layout.total)?, v: be.zeros_f32(layout.total)?, step: 0, segments: layout.decay_segments(decay) })
    }

    /// One AdamW step at learning rate `lr` on `grad_scale · grads`; with
    /// `master` weights, on them (and `params` gets their rounding).
    pub fn update(&mut self, be: &B, params: &mut B::Buf, master: Option<&mut B::Buf>, grads: &B::Buf, lr: f32, grad_scale: f32) {
        self.step += 1;
        let h = AdamW { lr, ..self.hyper };
        let master = master.map(B::view_mut);
        be.adamw(B::view_mut(params), master, B::view(grads), B::view_mut(&mut self.m), B::view_mut(&mut self.v), &self.segments, &h, self.step, grad_scale);
    }
}

/// Global-norm clipping as `torch.nn.utils.clip_grad_norm_`: returns the norm
/// and the factor, min(1, max_norm / (norm + 1e-6)), that AdamW applies to
/// the gradients (fused, instead of rescaling the buffer).
pub fn clip_grad_norm<B: Backend>(be: &B, grads: &B::Buf, max_norm: f32) -> (f32, f32) {
    let norm = be.sum_squares(B::view(grads)).sqrt();
    let factor = if max_norm > 0.0 { (max_norm / (norm + 1e-6)).min(1.0) } else { 1.0 };
    (norm, factor)
}

/// Linear warmup to `peak` over `warmup` steps, then cosine decay to 10% of it.
pub fn lr_at(step: u64, total: u64, warmup: u64, peak: f32) -> f32 {
    if step < warmup {
        return peak * (step + 1) as f32 / warmup as f32;
    }
    let span = total.saturating_sub(warmup).max(1) as f32;
    let progress = ((step - warmup) as f32 / span).min(1.0);
    let min = 0.1 * peak;
    min + 0.5 * (peak - min) * (1.0 + (std::f32::consts::PI * progress).cos())
}
