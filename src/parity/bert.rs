//! Parity checks of the BERT encoder against tests/fixtures/make_fixtures.py
//! (`BertModel`, float32): `last_hidden_state` [B, T, C] for `input_ids`,
//! `attention_mask` and `token_type_ids` (zeros when absent), and
//! `sentence_embeddings` [B, C] (mean pooling over the mask, L2-normalised,
//! as sentence-transformers) where the fixture has them; for BLEURT
//! (`BleurtForSequenceClassification` of bleurt-pytorch) also `logits` [B, labels].

use super::common::max_abs;
use super::{tolerance::Tolerances, Reference, Report};
use crate::backend::Backend;
use crate::io::checkpoint::ModelDir;
use crate::models::bert::sentence::mean_pool_normalized;
use crate::models::bert::BertActs;
use crate::Result;

pub fn check<B: Backend>(be: &B, dir: &ModelDir, r: &Reference, tol: &Tolerances, report: &mut Report) -> Result<()> {
    let model = dir.load_bert(be)?;
    if !r.has("input_ids") {
        return Ok(());
    }
    let (b, t) = r.dims2("input_ids")?;
    let ints = |name: &str| -> Result<Vec<i32>> { Ok(r.ints(name)?.iter().map(|&x| x as i32).collect()) };
    let ids = ints("input_ids")?;
    let types = if r.has("token_type_ids") { ints("token_type_ids")? } else { vec![0; b * t] };
    let mask: Vec<f32> = if r.has("attention_mask") { ints("attention_mask")?.iter().map(|&x| x as f32).collect() } else { vec![1.0; b * t] };
    let mut acts = BertActs::new(be, &model.cfg, b, t)?;
    model.forward(be, &mut acts, &ids, &types, &mask)?;
    let hidden = be.download(B::view(&acts.hidden))?;
    if let Some(want) = r.get("last_hidden_state") {
        let want = want.to_f32();
        report.floats("forward", "last_hidden_state", &hidden, &want, max_abs(&want), tol.forward);
    }
    if let Some(want) = r.get("logits") {
        let got = model.scores(be, &mut acts)?;
        let want = want.to_f32();
        report.floats("forward", "logits", &got, &want, max_abs(&want), tol.forward);
    }
    if let Some(want) = r.get("sentence_embeddings") {
        let c = model.cfg.hidden_size;
        let got: Vec<f32> = (0..b).flat_map(|row| mean_pool_normalized(&hidden[row * t * c..(row + 1) * t * c], &mask[row * t..(row + 1) * t], c)).collect();
        let want = want.to_f32();
        report.floats("forward", "sentence_embeddings", &got, &want, max_abs(&want), tol.forward);
    }
    Ok(())
}
