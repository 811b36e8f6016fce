//! GPT-2 and GPT-Neo beyond the parity fixtures: d loss / d (each
//! LayerNorm's weight and bias) from the backward against central
//! differences of the loss, with every norm given parameters of its own.
//! A forward applying one norm's parameters where another's belong (the
//! blocks' `ln_1`/`ln_2`, fused with the residual adds, or `ln_f`) makes the
//! gradient disagree with the loss. The parity fixtures see such a mix-up
//! too since their norms have parameters of their own (make_fixtures.py's
//! `distinct_norms`), except gpt_neo_tiny, which keeps transformers' ones
//! and zeros for its bf16 run's sake: for GPT-Neo this is the check.

mod common;
use common::repo;

use hhi::backend::cpu::Cpu;
use hhi::backend::Backend;
use hhi::models::gpt2::{Activations, Batch, Gpt2, Gpt2Config, Mode};
use hhi::models::gpt_neo;
use hhi::rng::Rng;

fn check_norm_gradients(fixture: &str) {
    let path = repo(&format!("tests/fixtures/{fixture}/config.json"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cfg = if fixture.starts_with("gpt_neo") { gpt_neo::config_from_json(&path, &json) } else { Gpt2Config::from_json(&path, &json) }.unwrap();
    let mut rng = Rng::new(31);
    let mut flat = Cpu.download(Cpu::view(&Gpt2::init_random(&Cpu, cfg.clone(), 5).unwrap().params)).unwrap();
    let norms: Vec<(String, std::ops::Range<usize>)> =
        Gpt2::<Cpu>::layout(&cfg).tensors().into_iter().filter(|p| p.name.contains("ln_")).map(|p| (p.name.clone(), p.offset..p.offset + p.numel())).collect();
    assert!(norms.len() == 4 * cfg.n_layer + 2, "{fixture}: found {} norm tensors", norms.len());
    for (_, range) in &norms {
        flat[range.clone()].iter_mut().for_each(|w| *w += 0.3 * rng.normal() as f32);
    }
    let (b, t, v) = (2, 7, cfg.vocab_size);
    let mut ids = |n: usize| (0..n).map(|_| rng.below(v) as i32).collect::<Vec<_>>();
    let mask = Some([vec![1.0; t], vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]].concat());
    let batch = Batch { b, t, ids: ids(b * t), targets: Some(ids(b * t)), mask };
    let loss = |flat: &[f32], grads: Option<&mut Vec<f32>>| {
        let model = Gpt2::from_flat(&Cpu, cfg.clone(), flat.to_vec()).unwrap();
        let mut acts = Activations::new(&Cpu, &model, b, t).unwrap();
        let mode = if grads.is_some() { Mode::Train } else { Mode::Eval };
        let loss = model.forward(&Cpu, &mut acts, &batch, mode).unwrap().unwrap() as f64;
        if let Some(g) = grads {
            model.backward(&Cpu, &mut acts, g);
        }
        loss
    };
    let mut grads = vec![0f32; flat.len()];
    loss(&flat, Some(&mut grads));
    common::check_directional_gradients(fixture, &flat, &grads, norms, 3e-2, 1e-4, &mut rng, |f| loss(f, None));
}

#[test]
fn gpt2_norm_gradients_match_finite_differences() {
    check_norm_gradients("gpt2_heads5_odd");
}

#[test]
fn gpt_neo_norm_gradients_match_finite_differences() {
    check_norm_gradients("gpt_neo_tiny");
}
