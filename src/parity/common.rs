//! Checks every model's parity run shares: gradients per parameter tensor
//! (with PARITY.md's floor) and parameters after AdamW steps.

use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::{AdamW, Backend};
use crate::nn::{Layout, Parameters};
use crate::train::Optimizer;
use crate::Result;

pub fn max_abs(x: &[f32]) -> f64 {
    x.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64))
}

/// Compares the flat gradient buffer with `grad.<name>` for every checkpoint tensor.
fn check_gradients<B: Backend>(be: &B, layout: &Layout, grads: &B::Buf, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let got = be.download(B::view(grads))?;
    let mut pairs = Vec::new();
    for spec in &layout.tensors() {
        let (key, want) = r.per_parameter("grad", &spec.name)?;
        pairs.push((key, got[spec.offset..spec.offset + spec.numel()].to_vec(), want));
    }
    let largest = pairs.iter().map(|(_, _, w)| max_abs(w)).fold(0.0, f64::max);
    for (key, got, want) in pairs {
        let denom = max_abs(&want).max(super::tolerance::BACKWARD_FLOOR * largest);
        report.floats("backward", &key, &got, &want, denom, tol.backward);
    }
    Ok(())
}

/// The backward and optimizer groups the fixture has, with gradients from
/// `grads(model, zeroed buffer)`.
pub fn check_training<B: Backend, M: Parameters<B>>(
    be: &B,
    model: &mut M,
    r: &Reference,
    tol: &Tolerances,
    report: &mut Report,
    mut grads: impl FnMut(&M, &mut B::Buf) -> Result<()>,
) -> Result<()> {
    if r.tensors.keys().any(|k| k.starts_with("grad.")) {
        let mut g = be.zeros_f32(model.param_layout().total)?;
        grads(model, &mut g)?;
        check_gradients(be, model.param_layout(), &g, r, tol, report)?;
    }
    if r.has("adamw.lr") {
        check_optimizer(be, model, r, tol, report, grads)?;
    }
    Ok(())
}

/// Runs `adamw.steps` AdamW steps (decay on every parameter), each on the
/// gradients `grads(model, zeroed buffer)` computes, and compares `after.<name>`.
fn check_optimizer<B: Backend, M: Parameters<B>>(
    be: &B,
    model: &mut M,
    r: &Reference,
    tol: &Tolerances,
    report: &mut Report,
    mut grads: impl FnMut(&M, &mut B::Buf) -> Result<()>,
) -> Result<()> {
    let h = AdamW {
        lr: r.scalar("adamw.lr")? as f32,
        beta1: r.scalar("adamw.beta1")? as f32,
        beta2: r.scalar("adamw.beta2")? as f32,
        eps: r.scalar("adamw.eps")? as f32,
        weight_decay: r.scalar("adamw.weight_decay")? as f32,
    };
    let steps = r.scalar("adamw.steps")? as u64;
    let layout = model.param_layout().clone();
    let mut opt = Optimizer::new(be, &layout, h, |_| true)?;
    let mut g = be.zeros_f32(layout.total)?;
    for _ in 0..steps {
        be.fill(B::view_mut(&mut g), 0.0);
        grads(model, &mut g)?;
        let (params, master) = model.params_mut();
        opt.update(be, params, master, &g, h.lr, 1.0);
    }
    let got = be.download(B::view(model.full_precision()))?;
    let denom = h.lr as f64 * steps as f64;
    for spec in &layout.tensors() {
        let (key, want) = r.per_parameter("after", &spec.name)?;
        report.floats("optimizer", &key, &got[spec.offset..spec.offset + spec.numel()], &want, denom, tol.optimizer);
    }
    Ok(())
}
