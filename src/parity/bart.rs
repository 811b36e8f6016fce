//! Parity checks of BART for sequence classification against
//! tests/fixtures/make_fixtures.py (`BartForSequenceClassification`,
//! float32): the class `logits` [B, labels] of `input_ids` with
//! `attention_mask`.

use super::common::max_abs;
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::io::checkpoint::ModelDir;
use crate::models::bart::BartActs;
use crate::Result;

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let model = dir.load_bart(be)?;
    let Some(want) = r.get("logits") else { return Ok(()) };
    let (b, t) = r.dims2("input_ids")?;
    let ids: Vec<i32> = r.ints("input_ids")?.iter().map(|&x| x as i32).collect();
    let mask: Vec<f32> = if r.has("attention_mask") { r.ints("attention_mask")?.iter().map(|&x| x as f32).collect() } else { vec![1.0; b * t] };
    let mut acts = BartActs::new(be, &model.cfg, b, t)?;
    let got = model.classify(be, &mut acts, &ids, &mask)?;
    let want = want.to_f32();
    report.floats("forward", "logits", &got, &want, max_abs(&want), tol.forward);
    Ok(())
}
