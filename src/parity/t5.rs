//! Parity checks of the T5 graph against a transformers fixture: forward,
//! loss, backward, AdamW, greedy decoding and beam search.

use super::common::{check_gradients, check_optimizer, max_abs};
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::io::checkpoint::ModelDir;
use crate::models::t5::{Activations, Seq2SeqBatch, T5};
use crate::{Error, Result};

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let mut model = dir.load_t5(be, None)?;
    if r.has("input_ids") {
        let batch = batch(r, model.cfg.vocab_size)?;
        let mut acts = Activations::new(be, &model, batch.b, batch.s, batch.t)?;
        let loss = model.forward(be, &mut acts, &batch, false)?;
        if let Some(want) = r.get("logits") {
            let want = want.to_f32();
            let got = be.download(B::view(&acts.logits))?;
            report.floats("forward", "logits", &got, &want, max_abs(&want), tol.forward);
        }
        if let (Some(loss), true) = (loss, r.has("loss")) {
            let want = r.scalar("loss")? as f32;
            report.floats("loss", "loss", &[loss], &[want], want.abs() as f64, tol.forward);
        }
        if batch.labels.is_some() {
            let mut grads_of = |model: &T5<B>, grads: &mut B::Buf| -> Result<()> {
                be.fill(B::view_mut(grads), 0.0);
                model.forward(be, &mut acts, &batch, true)?;
                model.backward(be, &mut acts, B::view_mut(grads));
                Ok(())
            };
            if r.tensors.keys().any(|k| k.starts_with("grad.")) {
                let mut grads = be.zeros_f32(model.layout.total)?;
                grads_of(&model, &mut grads)?;
                check_gradients(be, &model.layout, &grads, r, tol, report)?;
            }
            if r.has("adamw.lr") {
                check_optimizer(be, &mut model, r, tol, report, grads_of)?;
            }
        }
    }
    Ok(())
}

fn batch(r: &Reference, vocab: usize) -> Result<Seq2SeqBatch> {
    let (b, s) = r.dims2("input_ids")?;
    let (db, t) = r.dims2("decoder_input_ids")?;
    if db != b {
        return Err(Error::Tensor { path: r.path.clone(), name: "decoder_input_ids".into(), msg: format!("batch {db} differs from input_ids' {b}") });
    }
    let ids = |name: &str| -> Result<Vec<i32>> {
        let v: Vec<i32> = r.ints(name)?.iter().map(|&x| x as i32).collect();
        match v.iter().find(|&&x| x < 0 || x as usize >= vocab) {
            Some(bad) => Err(Error::Tensor { path: r.path.clone(), name: name.into(), msg: format!("id {bad} is outside the vocabulary ({vocab})") }),
            None => Ok(v),
        }
    };
    if r.has("attention_mask") && r.dims2("attention_mask")? != (b, s) {
        return Err(Error::Tensor { path: r.path.clone(), name: "attention_mask".into(), msg: format!("expected shape [{b}, {s}] like input_ids") });
    }
    if r.has("labels") && r.dims2("labels")? != (b, t) {
        return Err(Error::Tensor { path: r.path.clone(), name: "labels".into(), msg: format!("expected shape [{b}, {t}] like decoder_input_ids") });
    }
    let mask = r.has("attention_mask").then(|| r.ints("attention_mask")).transpose()?.map(|m| m.iter().map(|&x| x as f32).collect());
    let labels = r.has("labels").then(|| r.ints("labels")).transpose()?.map(|l| l.iter().map(|&x| x as i32).collect());
    Ok(Seq2SeqBatch { b, s, t, input_ids: ids("input_ids")?, mask, decoder_ids: ids("decoder_input_ids")?, labels })
}
