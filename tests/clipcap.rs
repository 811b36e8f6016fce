//! The captioner's KV-cache decoding against its training graph (whose
//! parity with PyTorch tests/parity.rs checks on clipcap_tiny): greedy
//! captions must be the argmax of the full forward at every step, and every
//! beam's score must be the summed log-probability the full forward gives
//! its tokens — which also checks the cache's beam reordering. Run on the
//! CPU and on the CUDA kernel emulator.

mod common;

use hhi::backend::cpu::Cpu;
use hhi::backend::Backend;
use hhi::generate::beam::{BeamConfig, EarlyStopping};
use hhi::models::clipcap::{caption_beams, CaptionBatch, ClipCap, ClipCapActs, ClipCapConfig};
use hhi::models::gpt2::{Gpt2, Gpt2Config, Mode};
use hhi::rng::Rng;
use hhi::tensor::DType;

fn tiny_captioner<B: Backend>(be: &B) -> ClipCap<B> {
    let gpt2: Gpt2Config = serde_json::from_value(serde_json::json!({
        "vocab_size": 40, "n_positions": 24, "n_embd": 16, "n_layer": 2, "n_head": 2, "initializer_range": 0.5
    }))
    .unwrap();
    let base = Gpt2::init_random(&Cpu, gpt2.clone(), 5).unwrap();
    let flat = Cpu.download(Cpu::view(&base.params)).unwrap();
    // A large initialisation makes the next-token distributions peaked, so
    // greedy choices are clear; the noise gives every LayerNorm weights and
    // biases of its own (init_random's are all ones and zeros), so that a
    // norm applied with another's parameters fails.
    let mut rng = Rng::new(6);
    let flat: Vec<f32> = flat.iter().map(|x| x * 20.0 + rng.normal() as f32).collect();
    ClipCap::from_gpt2(be, ClipCapConfig::new(3, 8, gpt2), &flat, 6).unwrap()
}

/// log-softmax of `tokens` under the full forward, summed per caption.
fn summed_log_probs<B: Backend>(be: &B, model: &ClipCap<B>, prefix: &[f32], tokens: &[u32]) -> f64 {
    let t = tokens.len();
    let batch = CaptionBatch { b: 1, t, prefix: prefix.to_vec(), tokens: tokens.iter().map(|&x| x as i32).collect(), mask: vec![1.0; t], weights: None };
    let mut acts = ClipCapActs::new(be, model, 1, t).unwrap();
    model.forward(be, &mut acts, &batch, Mode::Eval).unwrap();
    let (p, v) = (model.cfg.prefix_length, model.cfg.gpt2.vocab_size);
    let logits = acts.gpt.download_logits(be, v).unwrap();
    tokens
        .iter()
        .enumerate()
        .map(|(j, &tok)| {
            let row = &logits[(p - 1 + j) * v..(p + j) * v];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
            row[tok as usize] as f64 - lse
        })
        .sum()
}

fn beam_config(num_beams: usize) -> BeamConfig {
    BeamConfig {
        num_beams,
        max_new_tokens: 7,
        length_penalty: 0.0,
        early_stopping: EarlyStopping::True,
        no_repeat_ngram_size: 0,
        min_length: 0,
        min_new_tokens: 0,
        eos_token_id: None,
        num_return: num_beams,
    }
}

fn check_decoding<B: Backend>(be: &B, tolerance: f64) {
    let model = tiny_captioner(be);
    let mut rng = Rng::new(11);
    let prefixes: Vec<f32> = (0..3 * 8).map(|_| rng.normal() as f32).collect();

    let greedy = caption_beams(be, &model, &prefixes, &beam_config(1)).unwrap();
    let beams = caption_beams(be, &model, &prefixes, &beam_config(4)).unwrap();
    for (i, prefix) in prefixes.chunks(8).enumerate() {
        // Greedy: the best single beam is at least as likely as any other path found.
        let g = &greedy[i][0];
        assert_eq!(g.tokens.len(), 7);
        let full = summed_log_probs(be, &model, prefix, &g.tokens);
        assert!((full - g.score as f64).abs() < tolerance, "image {i}: greedy score {} but the full forward gives {full}", g.score);
        let mut last = f64::INFINITY;
        for (k, h) in beams[i].iter().enumerate() {
            let full = summed_log_probs(be, &model, prefix, &h.tokens);
            assert!((full - h.score as f64).abs() < tolerance, "image {i} beam {k}: score {} but the full forward gives {full}", h.score);
            assert!(h.score as f64 <= last + 1e-6, "beams are not sorted best first");
            last = h.score as f64;
        }
        assert!(beams[i][0].score >= g.score - 1e-4, "4 beams found nothing as good as greedy decoding");
    }
}

#[test]
fn cached_captions_match_the_full_forward_on_cpu() {
    check_decoding(&Cpu, 1e-3);
}

#[test]
fn cached_captions_match_the_full_forward_on_the_kernel_emulator() {
    check_decoding(&common::emulated(DType::F32), 1e-3);
}
