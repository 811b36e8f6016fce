//! Parity checks of the GPT-2 graph (GPT-2 and GPT-Neo) against a transformers fixture.

use super::common::{check_training, max_abs};
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::generate::{generate, GenerateConfig, SamplingConfig};
use crate::io::checkpoint::ModelDir;
use crate::models::gpt2::{Activations, Batch, Gpt2, Mode};
use crate::{Error, Result};

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let mut model = dir.load_gpt2(be, None)?;
    if r.has("input_ids") {
        let batch = batch(r, model.cfg.vocab_size)?;
        forward_and_loss(be, &model, r, &batch, tol, report)?;
        if batch.targets.is_some() {
            let mut acts = Activations::new(be, &model, batch.b, batch.t)?;
            check_training(be, &mut model, r, tol, report, |model: &Gpt2<B>, grads: &mut B::Buf| {
                model.forward(be, &mut acts, &batch, Mode::Train)?;
                model.backward(be, &mut acts, B::view_mut(grads));
                Ok(())
            })?;
        }
    }
    if r.has("generate.input_ids") {
        let model = dir.load_gpt2(be, None)?;
        greedy(be, &model, r, tol, report)?;
    }
    Ok(())
}

fn batch(r: &Reference, vocab: usize) -> Result<Batch> {
    let (b, t) = r.dims2("input_ids")?;
    let ids: Vec<i32> = r.ints("input_ids")?.iter().map(|&x| x as i32).collect();
    if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= vocab) {
        return Err(Error::Tensor { path: r.path.clone(), name: "input_ids".into(), msg: format!("id {bad} is outside the vocabulary ({vocab})") });
    }
    for name in ["attention_mask", "labels"] {
        if r.has(name) && r.dims2(name)? != (b, t) {
            return Err(Error::Tensor { path: r.path.clone(), name: name.into(), msg: format!("expected shape [{b}, {t}] like input_ids") });
        }
    }
    let mask = r.has("attention_mask").then(|| r.ints("attention_mask")).transpose()?.map(|m| m.iter().map(|&x| x as f32).collect());
    let targets = r.has("labels").then(|| r.ints("labels")).transpose()?.map(|l| Batch::shift_labels(&l, b, t));
    Ok(Batch { b, t, ids, targets, mask })
}

fn forward_and_loss<B: Backend>(be: &B, model: &Gpt2<B>, r: &Reference, batch: &Batch, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let mut acts = Activations::new(be, model, batch.b, batch.t)?;
    let loss = model.forward(be, &mut acts, batch, Mode::Eval)?;
    if let Some(want) = r.get("logits") {
        let (want, got) = (want.to_f32(), acts.download_logits(be, model.cfg.vocab_size)?);
        let (got, want) = (kept_rows(&got, batch), kept_rows(&want, batch));
        report.floats("forward", "logits", &got, &want, max_abs(&want), tol.forward);
    }
    if let (Some(loss), true) = (loss, r.has("loss")) {
        let want = r.scalar("loss")? as f32;
        report.floats("loss", "loss", &[loss], &[want], want.abs() as f64, tol.forward);
    }
    Ok(())
}

/// The logits of real (unpadded) positions. A padded query's output is
/// undefined: where a GPT-Neo local window holds only padding, transformers
/// averages over keys its finite "masked" scores leave equal, the engine
/// returns zeros; neither reaches the loss or generation.
fn kept_rows(logits: &[f32], batch: &Batch) -> Vec<f32> {
    let Some(mask) = &batch.mask else { return logits.to_vec() };
    let vocab = logits.len() / mask.len().max(1);
    logits.chunks(vocab).zip(mask).filter(|(_, &m)| m != 0.0).flat_map(|(row, _)| row.iter().copied()).collect()
}

fn greedy<B: Backend>(be: &B, model: &Gpt2<B>, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let (b, t0) = r.dims2("generate.input_ids")?;
    let ids = r.ints("generate.input_ids")?;
    let new = r.scalar("generate.max_new_tokens")? as usize;
    let want = r.ints("generate.output_ids")?;
    let prompts: Vec<Vec<u32>> = ids.chunks(t0).map(|p| p.iter().map(|&x| x as u32).collect()).collect();
    let cfg = GenerateConfig { max_new_tokens: new, sampling: SamplingConfig::default(), eos_token_id: None, seed: 0 };
    let out = generate(be, model, &prompts, &cfg, &|_, _| false)?;
    let mut got = Vec::with_capacity(b * (t0 + new));
    for (p, (toks, _)) in prompts.iter().zip(&out) {
        got.extend(p.iter().chain(toks).map(|&x| x as i64));
    }
    report.ids("generation", "generate.output_ids", &got, &want, tol.ids_match);
    Ok(())
}
