//! The CUDA backend's device arena (src/backend/cuda/arena.rs) under real
//! workloads, on the kernel emulator with buffers carved from chunks as on a
//! GPU: training and decoding steps make no buffer after setup, a tiny
//! model's parameters, gradients, moments and activations share one chunk,
//! and carving changes no result (the same steps with one allocation per
//! buffer give the same bits).

mod common;

use hhi::backend::cuda::Cuda;
use hhi::backend::{Backend, MemoryStats};
use hhi::generate::{generate, GenerateConfig, SamplingConfig};
use hhi::models::gpt2::{Gpt2, Gpt2Config};
use hhi::rng::Rng;
use hhi::tensor::DType;
use hhi::train::lm::{TrainConfig, Trainer};

const MIB: usize = 1 << 20;

fn pooled(min_chunk: usize) -> Cuda {
    Cuda::emulated_pooled(DType::BF16, min_chunk).expect("the kernel emulator (build.rs builds it with a C++20 compiler)")
}

fn tiny_gpt2<B: Backend>(be: &B) -> Gpt2<B> {
    let cfg: Gpt2Config = serde_json::from_value(serde_json::json!({"vocab_size": 50, "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 2})).unwrap();
    Gpt2::init_random(be, cfg, 5).unwrap()
}

fn memory(be: &Cuda) -> MemoryStats {
    be.memory().expect("the CUDA backend reports its arena")
}

/// Losses of `steps` training steps, and the arena after the first and the last.
fn train(be: &Cuda, steps: u64) -> (Vec<f32>, MemoryStats, MemoryStats) {
    let cfg = TrainConfig { steps, batch: 2, seq: 16, lr: 3e-3, warmup: 1, weight_decay: 0.1, clip: 1.0, eval_every: 0, eval_batches: 0, seed: 3, stop_at: None };
    let mut rng = Rng::new(11);
    let tokens: Vec<u32> = (0..400).map(|_| rng.below(50) as u32).collect();
    let mut trainer = Trainer::new(be, tiny_gpt2(be), cfg).unwrap();
    let mut losses = vec![trainer.step(&tokens).unwrap().0];
    let after_first = memory(be);
    for _ in 1..steps {
        losses.push(trainer.step(&tokens).unwrap().0);
    }
    be.synchronize().unwrap();
    (losses, after_first, memory(be))
}

#[test]
fn training_steps_make_no_buffer_after_the_first_and_share_one_chunk() {
    let be = pooled(64 * MIB);
    let (losses, first, last) = train(&be, 4);
    assert_eq!((last.buffers, last.driver_allocations), (first.buffers, first.driver_allocations), "steps 2–4 made buffers: {first:?} → {last:?}");
    assert_eq!(last.chunks, 1, "parameters, gradients, moments and activations in one chunk: {last:?}");
    assert!(last.in_use > 0 && last.peak >= last.in_use && last.reserved >= last.peak, "{last:?}");
    // Carving changes nothing: the same steps with a driver allocation per buffer.
    let exact = common::emulated(DType::BF16);
    let (exact_losses, _, per_buffer) = train(&exact, 4);
    assert_eq!(losses.iter().map(|l| l.to_bits()).collect::<Vec<_>>(), exact_losses.iter().map(|l| l.to_bits()).collect::<Vec<_>>());
    assert_eq!(per_buffer.driver_allocations, per_buffer.buffers);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
}

#[test]
fn decoding_steps_make_no_buffer_and_generation_gives_its_memory_back() {
    // Small chunks, so that the arena grows and reuses across calls.
    let be = pooled(2 * MIB);
    let model = tiny_gpt2(&be);
    let prompts = vec![vec![1, 2, 3], vec![4, 5]];
    let made_by = |new_tokens: usize| {
        let before = memory(&be);
        let cfg = GenerateConfig { max_new_tokens: new_tokens, sampling: SamplingConfig { do_sample: true, top_k: 10, ..SamplingConfig::default() }, eos_token_id: None, seed: 9 };
        let out = generate(&be, &model, &prompts, &cfg, &|_, _| false).unwrap();
        assert!(out.iter().all(|(tokens, _)| tokens.len() == new_tokens));
        let after = memory(&be);
        (after.buffers - before.buffers, after.in_use as i64 - before.in_use as i64)
    };
    made_by(2); // the first call also makes the token selection's kept scratch
    let (short, long) = (made_by(2), made_by(12));
    assert_eq!(short.0, long.0, "12 decoding steps made more buffers than 2");
    assert_eq!((short.1, long.1), (0, 0), "generation kept buffers alive");
}
