//! Parity checks of the CLIP graph against a transformers fixture: the
//! contrastive forward (logits_per_image, normalised embeddings), the loss,
//! gradients of both towers and logit_scale, and AdamW steps.

use super::common::{check_training, max_abs};
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::io::checkpoint::ModelDir;
use crate::models::clip::{Clip, TextActs, VisionActs};
use crate::{Error, Result};

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let mut model = dir.load_clip(be, None)?;
    if !r.has("pixel_values") {
        return Ok(());
    }
    let pixels = r.require("pixel_values")?;
    let b = *pixels.shape.first().unwrap_or(&0);
    let pixels = pixels.to_f32();
    let (tb, t) = r.dims2("input_ids")?;
    if tb != b {
        return Err(Error::Tensor { path: r.path.clone(), name: "input_ids".into(), msg: format!("{tb} texts for {b} images") });
    }
    let ids: Vec<i32> = r.ints("input_ids")?.iter().map(|&x| x as i32).collect();
    let mask: Option<Vec<f32>> = r.has("attention_mask").then(|| r.ints("attention_mask")).transpose()?.map(|m| m.iter().map(|&x| x as f32).collect());
    let (mut vision, mut text) = (VisionActs::new(be, &model, b)?, TextActs::new(be, &model, b, t)?);
    let head = model.contrastive_step(be, &mut vision, &mut text, &pixels, &ids, mask.as_deref(), None)?;
    for (name, got) in [("logits_per_image", &head.logits_per_image), ("text_embeds", &head.text_embeds), ("image_embeds", &head.image_embeds)] {
        if let Some(want) = r.get(name) {
            let want = want.to_f32();
            report.floats("forward", name, got, &want, max_abs(&want), tol.forward);
        }
    }
    if r.has("loss") {
        let want = r.scalar("loss")? as f32;
        report.floats("loss", "loss", &[head.loss], &[want], want.abs() as f64, tol.forward);
    }
    check_training(be, &mut model, r, tol, report, |model: &Clip<B>, grads: &mut B::Buf| {
        model.contrastive_step(be, &mut vision, &mut text, &pixels, &ids, mask.as_deref(), Some(B::view_mut(grads))).map(drop)
    })
}
