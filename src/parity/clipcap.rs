//! Parity checks of the ClipCap captioner against the PyTorch reference of
//! tests/fixtures/make_fixtures.py (the official `ClipCaptionModel` on a
//! transformers GPT-2): logits of every prefix and caption row, the
//! sample-weighted caption loss, gradients of the MLP and GPT-2, and AdamW.
//! Extra fixture keys: `prefix` [B, prefix_size] (image embeddings) and
//! `sample_weights` [B].

use super::common::{check_training, max_abs};
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::io::checkpoint::ModelDir;
use crate::models::clipcap::{CaptionBatch, ClipCap, ClipCapActs};
use crate::models::gpt2::Mode;
use crate::{Error, Result};

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let mut model = dir.load_clipcap(be)?;
    if !r.has("prefix") {
        return Ok(());
    }
    let (b, t) = r.dims2("input_ids")?;
    let prefix = r.require("prefix")?.to_f32();
    if prefix.len() != b * model.cfg.prefix_size {
        return Err(Error::Tensor { path: r.path.clone(), name: "prefix".into(), msg: format!("expected {b}×{} values", model.cfg.prefix_size) });
    }
    let batch = CaptionBatch {
        b,
        t,
        prefix,
        tokens: r.ints("input_ids")?.iter().map(|&x| x as i32).collect(),
        mask: match r.has("attention_mask") {
            true => r.ints("attention_mask")?.iter().map(|&x| x as f32).collect(),
            false => vec![1.0; b * t],
        },
        weights: r.get("sample_weights").map(|w| w.to_f32()),
    };
    let mut acts = ClipCapActs::new(be, &model, b, t)?;
    let loss = model.forward(be, &mut acts, &batch, Mode::Eval)?;
    if let Some(want) = r.get("logits") {
        let (want, got) = (want.to_f32(), acts.gpt.download_logits(be, model.cfg.gpt2.vocab_size)?);
        report.floats("forward", "logits", &got, &want, max_abs(&want), tol.forward);
    }
    if r.has("loss") {
        let want = r.scalar("loss")? as f32;
        report.floats("loss", "loss", &[loss], &[want], want.abs() as f64, tol.forward);
    }
    check_training(be, &mut model, r, tol, report, |model: &ClipCap<B>, grads: &mut B::Buf| {
        model.forward(be, &mut acts, &batch, Mode::Train)?;
        model.backward(be, &mut acts, B::view_mut(grads));
        Ok(())
    })
}
