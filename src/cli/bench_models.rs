//! `hhi bench train|generate|encode` for T5 and CLIP folders: full training
//! steps (forward, backward, grad-norm clip 1.0, AdamW) on random data, T5
//! greedy or beam-search generation, and CLIP image encoding. The same measurements as the
//! GPT-2 benches (bench.rs); scripts/bench_torch.py runs the PyTorch side.

use super::bench::{device_memory, median, peak_rss_mb};
use hhi::backend::{AdamW, Backend};
use hhi::generate::beam::{BeamConfig, EarlyStopping};
use hhi::generate::seq2seq::{beam_search_t5, generate_t5};
use hhi::generate::{GenerateConfig, SamplingConfig};
use hhi::io::checkpoint::ModelDir;
use hhi::models::clip::{TextActs, VisionActs};
use hhi::models::t5::{Activations, Seq2SeqBatch};
use hhi::nn::Parameters;
use hhi::rng::Rng;
use hhi::train::optimizer::{clip_grad_norm, default_decay, Optimizer};
use hhi::Result;
use std::time::Instant;

/// Runs `step` `warmup + steps` times, calling `on_warmup_done` before the
/// first timed one; returns the median of the timed runs (ms) and the
/// device arena's figures with the buffers the timed runs made.
fn time_steps<B: Backend>(be: &B, warmup: usize, steps: usize, on_warmup_done: &dyn Fn(), mut step: impl FnMut() -> Result<f32>) -> Result<(f64, serde_json::Value)> {
    let mut times = Vec::new();
    let mut at_warmup_end = be.memory();
    for i in 0..warmup + steps {
        if i == warmup {
            on_warmup_done();
            at_warmup_end = be.memory();
        }
        let start = Instant::now();
        let loss = step()?;
        be.synchronize()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        eprintln!("step {i:>3}  {ms:8.1} ms  loss {loss:.4}{}", if i < warmup { "  (warmup)" } else { "" });
        if i >= warmup {
            times.push(ms);
        }
    }
    Ok((median(times), device_memory(be, at_warmup_end)))
}

/// The optimiser step shared by both models: clip to norm 1, AdamW (lr 1e-4,
/// betas 0.9/0.95, wd 0.1 on matrices), as `hhi bench train` for GPT-2.
fn optimise<B: Backend, M: Parameters<B>>(be: &B, model: &mut M, opt: &mut Optimizer<B>, grads: &B::Buf) {
    let (_, scale) = clip_grad_norm(be, grads, 1.0);
    let (params, master) = model.params_mut();
    opt.update(be, params, master, grads, 1e-4, scale);
}

fn adamw() -> AdamW {
    AdamW { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 }
}

/// T5 training steps on `batch` random pairs of `src` encoder and `tgt` decoder tokens.
#[allow(clippy::too_many_arguments)]
pub fn train_t5<B: Backend>(be: &B, dir: &ModelDir, batch: usize, src: usize, tgt: usize, steps: usize, warmup: usize, on_warmup_done: &dyn Fn()) -> Result<serde_json::Value> {
    let mut model = dir.load_t5(be, Some(0))?;
    let v = model.cfg.vocab_size;
    eprintln!("bench train (t5): {} parameters, batch {batch}, {src} → {tgt} tokens, {}", model.num_params(), be.name());
    let mut rng = Rng::new(1);
    let mut ids = |n: usize| (0..n).map(|_| rng.below(v) as i32).collect::<Vec<_>>();
    let data = Seq2SeqBatch { b: batch, s: src, t: tgt, input_ids: ids(batch * src), mask: None, decoder_ids: ids(batch * tgt), labels: Some(ids(batch * tgt)) };
    let mut acts = Activations::new(be, &model, batch, src, tgt)?;
    let mut grads = be.zeros_f32(model.layout.total)?;
    let mut opt = Optimizer::new(be, &model.layout, adamw(), default_decay)?;
    let (step_ms, memory) = time_steps(be, warmup, steps, on_warmup_done, || {
        be.fill(B::view_mut(&mut grads), 0.0);
        let loss = model.forward(be, &mut acts, &data, true)?.unwrap_or(f32::NAN);
        model.backward(be, &mut acts, B::view_mut(&mut grads));
        optimise(be, &mut model, &mut opt, &grads);
        Ok(loss)
    })?;
    let tokens = (batch * (src + tgt)) as f64;
    Ok(
        serde_json::json!({"model": "t5", "step_ms": step_ms, "tokens_per_s": tokens / (step_ms / 1e3), "pairs_per_s": batch as f64 / (step_ms / 1e3), "peak_rss_mb": peak_rss_mb(), "device": be.name(), "device_memory": memory}),
    )
}

/// CLIP contrastive training steps on `batch` random images and texts of `seq` tokens.
pub fn train_clip<B: Backend>(be: &B, dir: &ModelDir, batch: usize, seq: usize, steps: usize, warmup: usize, on_warmup_done: &dyn Fn()) -> Result<serde_json::Value> {
    let mut model = dir.load_clip(be, Some(0))?;
    let (cfg, mut rng) = (model.cfg.clone(), Rng::new(1));
    let seq = seq.min(cfg.text_config.max_position_embeddings);
    eprintln!("bench train (clip): {} parameters, batch {batch}, texts of {seq}, {}", model.num_params(), be.name());
    let side = cfg.vision_config.image_size;
    let pixels: Vec<f32> = (0..batch * cfg.vision_config.num_channels * side * side).map(|_| rng.normal() as f32).collect();
    let ids: Vec<i32> = (0..batch * seq).map(|_| rng.below(cfg.text_config.vocab_size) as i32).collect();
    let (mut vision, mut text) = (VisionActs::new(be, &model, batch)?, TextActs::new(be, &model, batch, seq)?);
    let mut grads = be.zeros_f32(model.layout.total)?;
    let mut opt = Optimizer::new(be, &model.layout, adamw(), default_decay)?;
    let (step_ms, memory) = time_steps(be, warmup, steps, on_warmup_done, || {
        be.fill(B::view_mut(&mut grads), 0.0);
        let head = model.contrastive_step(be, &mut vision, &mut text, &pixels, &ids, None, Some(B::view_mut(&mut grads)))?;
        optimise(be, &mut model, &mut opt, &grads);
        Ok(head.loss)
    })?;
    Ok(
        serde_json::json!({"model": "clip", "step_ms": step_ms, "pairs_per_s": batch as f64 / (step_ms / 1e3), "peak_rss_mb": peak_rss_mb(), "device": be.name(), "device_memory": memory}),
    )
}

/// CLIP image encoding (the vision tower and projection) of `batch` random
/// images already on the device.
pub fn encode_clip<B: Backend>(be: &B, dir: &ModelDir, batch: usize, repeats: usize) -> Result<serde_json::Value> {
    let mut model = dir.load_clip(be, Some(0))?;
    model.drop_master();
    let v = &model.cfg.vision_config;
    eprintln!("bench encode (clip): {} parameters, {batch} images of {}², {}", model.num_params(), v.image_size, be.name());
    let mut rng = Rng::new(1);
    let pixels: Vec<f32> = (0..batch * v.num_channels * v.image_size * v.image_size).map(|_| rng.normal() as f32).collect();
    let mut acts = VisionActs::new(be, &model, batch)?;
    // Pixels are on the device before the clock starts, as in PyTorch's bench.
    model.load_pixels(be, &mut acts, &pixels)?;
    let (ms, memory) = time_steps(be, 1, repeats, &|| (), || {
        model.vision_forward_loaded(be, &mut acts);
        Ok(0.0)
    })?;
    Ok(serde_json::json!({"model": "clip", "encode_ms": ms, "images_per_s": batch as f64 / (ms / 1e3), "peak_rss_mb": peak_rss_mb(), "device": be.name(), "device_memory": memory}))
}

/// What `hhi bench generate` times on a T5 model.
pub struct GenerateShape {
    pub batch: usize,
    /// Input tokens per row.
    pub src: usize,
    pub new_tokens: usize,
    /// 1: greedy; more: beam search, every beam running to `new_tokens`.
    pub beams: usize,
    pub repeats: usize,
}

/// T5 generation from `batch` random inputs of `src` tokens: greedy, or
/// beam search (EOS banned until the last token, as PyTorch's baseline's
/// min_new_tokens, so every run decodes `new_tokens` steps).
pub fn generate_t5_bench<B: Backend>(be: &B, dir: &ModelDir, g: &GenerateShape) -> Result<serde_json::Value> {
    let mut model = dir.load_t5(be, Some(0))?;
    model.drop_master();
    let (batch, src, new_tokens, beams) = (g.batch, g.src, g.new_tokens, g.beams);
    eprintln!("bench generate (t5): {} parameters, batch {batch}, inputs of {src}, {new_tokens} new tokens, {beams} beam(s), {}", model.num_params(), be.name());
    let mut rng = Rng::new(1);
    let inputs: Vec<Vec<u32>> = (0..batch).map(|_| (0..src).map(|_| rng.below(model.cfg.vocab_size) as u32).collect()).collect();
    let greedy = GenerateConfig { max_new_tokens: new_tokens, sampling: SamplingConfig::default(), eos_token_id: None, seed: 0 };
    let search = BeamConfig {
        num_beams: beams,
        max_new_tokens: new_tokens,
        length_penalty: 1.0,
        early_stopping: EarlyStopping::False,
        no_repeat_ngram_size: 0,
        min_length: 0,
        min_new_tokens: new_tokens,
        eos_token_id: model.cfg.eos_token_id,
        num_return: 1,
    };
    let (ms, memory) = time_steps(be, 1, g.repeats, &|| (), || {
        if beams > 1 {
            beam_search_t5(be, &model, &inputs, &search)?;
        } else {
            generate_t5(be, &model, &inputs, &greedy)?;
        }
        Ok(0.0)
    })?;
    Ok(serde_json::json!({
        "model": "t5",
        "beams": beams,
        "tokens_per_s": (batch * new_tokens) as f64 / (ms / 1e3),
        "ms_per_token": ms / new_tokens as f64,
        "peak_rss_mb": peak_rss_mb(),
        "device_memory": memory,
    }))
}
