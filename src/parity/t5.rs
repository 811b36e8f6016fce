//! Parity checks of the T5 graph against a transformers fixture: forward,
//! loss, backward, AdamW, greedy decoding and beam search.

use super::common::{check_training, max_abs};
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::generate::beam::Hypothesis;
use crate::generate::seq2seq::{beam_search_t5, generate_t5};
use crate::generate::{GenerateConfig, SamplingConfig};
use crate::io::checkpoint::ModelDir;
use crate::io::generation_config::GenerationDefaults;
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
            check_training(be, &mut model, r, tol, report, |model: &T5<B>, grads: &mut B::Buf| {
                model.forward(be, &mut acts, &batch, true)?;
                model.backward(be, &mut acts, B::view_mut(grads));
                Ok(())
            })?;
        }
    }
    if r.has("generate.input_ids") {
        let model = dir.load_t5(be, None)?;
        let prompts = prompts(r)?;
        greedy(be, &model, r, &prompts, tol, report)?;
        if r.has("beam.num_beams") {
            beams(be, &model, dir, r, &prompts, tol, report)?;
        }
    }
    Ok(())
}

/// The encoder inputs of the generation groups, one per row.
fn prompts(r: &Reference) -> Result<Vec<Vec<u32>>> {
    let (_, t0) = r.dims2("generate.input_ids")?;
    Ok(r.ints("generate.input_ids")?.chunks(t0).map(|p| p.iter().map(|&x| x as u32).collect()).collect())
}

/// Greedy decoding without an EOS stop: [decoder start, new tokens…] per row.
fn greedy<B: Backend>(be: &B, model: &T5<B>, r: &Reference, prompts: &[Vec<u32>], tol: &Tolerances, report: &mut Report) -> Result<()> {
    let new = r.scalar("generate.max_new_tokens")? as usize;
    let cfg = GenerateConfig { max_new_tokens: new, sampling: SamplingConfig::default(), eos_token_id: None, seed: 0 };
    let out = generate_t5(be, model, prompts, &cfg)?;
    let start = model.cfg.decoder_start_token_id as i64;
    let got: Vec<i64> = out.iter().flat_map(|(toks, _)| std::iter::once(start).chain(toks.iter().map(|&x| x as i64))).collect();
    report.ids("generation", "generate.output_ids", &got, &r.ints("generate.output_ids")?, tol.ids_match);
    Ok(())
}

/// Beam search with the folder's generation_config.json: the best beam per
/// row, padded as transformers pads them (with pad_token_id, or EOS where
/// the pad id is 0: its `pad_token_id or eos_token_id`).
fn beams<B: Backend>(be: &B, model: &T5<B>, dir: &ModelDir, r: &Reference, prompts: &[Vec<u32>], tol: &Tolerances, report: &mut Report) -> Result<()> {
    let defaults = GenerationDefaults::load(&dir.dir)?;
    let k = r.scalar("beam.num_beams")? as usize;
    let cfg = defaults.beam(k, 1, model.cfg.eos_token_id);
    let best: Vec<Hypothesis> = beam_search_t5(be, model, prompts, &cfg)?.into_iter().map(|mut h| h.remove(0)).collect();
    let fill = match (cfg.eos_token_id, model.cfg.pad_token_id) {
        (None, _) => -1,
        (Some(eos), 0) => eos as i64,
        (Some(_), pad) => pad as i64,
    };
    let width = best.iter().map(|h| h.tokens.len()).max().unwrap_or(0);
    let start = model.cfg.decoder_start_token_id as i64;
    let got: Vec<i64> =
        best.iter().flat_map(|h| std::iter::once(start).chain(h.tokens.iter().map(|&x| x as i64)).chain(std::iter::repeat_n(fill, width - h.tokens.len()))).collect();
    report.ids("beams", "beam.output_ids", &got, &r.ints("beam.output_ids")?, tol.ids_match);
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
