//! The CUDA backend's device arena (src/backend/cuda/arena.rs) under real
//! workloads, on the kernel emulator with buffers carved from chunks as on a
//! GPU: training and decoding steps make no buffer after setup — GPT-2's
//! training and sampling, the T5 summarizer's training, greedy decoding and
//! beam search, the captioner's training and beam search, CLIP's contrastive
//! training — a tiny model's
//! parameters, gradients, moments and activations share one chunk, and
//! carving changes no result (the same steps with one allocation per buffer
//! give the same bits).
//!
//! A loop that allocates shows up as more buffers for more steps: each
//! workload runs short and long, and both must make the same number.

mod common;

use common::repo;
use hhi::backend::cuda::Cuda;
use hhi::backend::{Backend, MemoryStats};
use hhi::generate::beam::{BeamConfig, EarlyStopping};
use hhi::generate::seq2seq::{beam_search_t5, generate_t5};
use hhi::generate::{generate, GenerateConfig, SamplingConfig};
use hhi::io::checkpoint::ModelDir;
use hhi::io::image::ImageProcessor;
use hhi::models::clipcap::caption_beams;
use hhi::models::gpt2::{Gpt2, Gpt2Config};
use hhi::pipeline::captioner::{train_captioner, TrainOptions};
use hhi::pipeline::clip_train::{train_clip, ClipOptions};
use hhi::pipeline::summarizer::{train_summarizer, SummarizerOptions};
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

/// Buffers `work` made, and the bytes it left in use.
fn made_by(be: &Cuda, mut work: impl FnMut()) -> (u64, i64) {
    let before = memory(be);
    work();
    let after = memory(be);
    (after.buffers - before.buffers, after.in_use as i64 - before.in_use as i64)
}

/// `work(short)` then `work(long)` make the same buffers and keep none (a
/// first call, not compared, makes what the backend keeps for later calls).
fn steps_make_no_buffer(be: &Cuda, what: &str, (short, long): (usize, usize), mut work: impl FnMut(usize)) {
    work(short);
    let a = made_by(be, || work(short));
    let b = made_by(be, || work(long));
    assert_eq!(a.0, b.0, "{what}: a run of {long} made more buffers than a run of {short}");
    assert_eq!((a.1, b.1), (0, 0), "{what}: buffers kept alive after the call");
}

fn beams(num_beams: usize, max_new_tokens: usize) -> BeamConfig {
    BeamConfig {
        num_beams,
        max_new_tokens,
        length_penalty: 1.0,
        early_stopping: EarlyStopping::Never,
        no_repeat_ngram_size: 2,
        min_length: 0,
        min_new_tokens: max_new_tokens,
        eos_token_id: None,
        num_return: 2,
    }
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
fn cuda_training_steps_make_no_buffer_after_the_first() {
    // The same on a GPU, through the real driver's chunks (scripts/gpu-check runs it).
    let Some(be) = common::cuda_or_skip("cuda_training_steps_make_no_buffer_after_the_first", DType::BF16) else { return };
    let (losses, first, last) = train(&be, 4);
    assert_eq!((last.buffers, last.driver_allocations), (first.buffers, first.driver_allocations), "steps 2–4 made buffers: {first:?} → {last:?}");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
}

#[test]
fn gpt2_sampling_steps_make_no_buffer() {
    // Small chunks, so that the arena grows and reuses across calls.
    let be = pooled(2 * MIB);
    let model = tiny_gpt2(&be);
    let prompts = vec![vec![1, 2, 3], vec![4, 5]];
    steps_make_no_buffer(&be, "GPT-2 sampling", (2, 12), |new_tokens| {
        let cfg = GenerateConfig { max_new_tokens: new_tokens, sampling: SamplingConfig { do_sample: true, top_k: 10, ..SamplingConfig::default() }, eos_token_id: None, seed: 9 };
        let out = generate(&be, &model, &prompts, &cfg, &|_, _| false).unwrap();
        assert!(out.iter().all(|(tokens, _)| tokens.len() == new_tokens));
    });
}

#[test]
fn summarizer_training_and_decoding_steps_make_no_buffer() {
    let be = pooled(2 * MIB);
    let mut t5 = ModelDir::open(&repo("tests/fixtures/t5_tiny")).unwrap().load_t5(&be, None).unwrap();
    let mut rng = Rng::new(4);
    let mut ids = |n: usize| (0..n).map(|_| 2 + rng.below(30) as u32).collect::<Vec<u32>>();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..6).map(|i| (ids(5 + i), ids(2 + i % 3))).collect();
    steps_make_no_buffer(&be, "T5 training", (1, 3), |epochs| {
        let opts = SummarizerOptions { epochs, batch: 2, lr: 1e-3, weight_decay: 0.01, eval_share: 0.2, seed: 1 };
        train_summarizer(&be, &mut t5, &pairs, &opts, |(_, loss, _)| assert!(loss.is_finite())).unwrap();
    });
    let inputs: Vec<Vec<u32>> = pairs.iter().take(3).map(|p| p.0.clone()).collect();
    steps_make_no_buffer(&be, "T5 greedy decoding", (2, 10), |new_tokens| {
        let cfg = GenerateConfig { max_new_tokens: new_tokens, sampling: SamplingConfig::default(), eos_token_id: None, seed: 0 };
        generate_t5(&be, &t5, &inputs, &cfg).unwrap();
    });
    steps_make_no_buffer(&be, "T5 beam search", (2, 10), |new_tokens| {
        beam_search_t5(&be, &t5, &inputs, &beams(3, new_tokens)).unwrap();
    });
}

#[test]
fn captioner_training_and_beam_steps_make_no_buffer() {
    let be = pooled(2 * MIB);
    let mut model = ModelDir::open(&repo("tests/fixtures/clipcap_tiny")).unwrap().load_clipcap(&be).unwrap();
    let size = model.cfg.prefix_size;
    let mut rng = Rng::new(8);
    let examples: Vec<(Vec<f32>, Vec<u32>, f32)> = (0..5).map(|i| ((0..size).map(|_| rng.normal() as f32).collect(), vec![3 + i as u32, 7, 9], 1.0)).collect();
    steps_make_no_buffer(&be, "captioner training", (1, 3), |epochs| {
        let opts = TrainOptions { epochs, batch: 2, lr: 1e-3, weight_decay: 0.1, max_tokens: 4, seed: 2, only_prefix: false };
        train_captioner(&be, &mut model, &examples, &opts, |(_, loss)| assert!(loss.is_finite())).unwrap();
    });
    let prefixes: Vec<f32> = examples.iter().take(2).flat_map(|e| e.0.clone()).collect();
    steps_make_no_buffer(&be, "captioner beam search", (2, 8), |new_tokens| {
        caption_beams(&be, &model, &prefixes, &beams(4, new_tokens)).unwrap();
    });
}

#[test]
fn clip_training_steps_make_no_buffer() {
    let be = pooled(2 * MIB);
    let mut clip = ModelDir::open(&repo("tests/fixtures/clip_tiny")).unwrap().load_clip(&be, None).unwrap();
    let images = ["astronaut.jpg", "camera_alpha.png", "chelsea_grey.png", "coffee.webp"];
    let pairs: Vec<_> = images.iter().enumerate().map(|(i, name)| (repo("tests/fixtures/clip_preprocess").join(name), vec![1 + i as u32, 5, 2])).collect();
    let proc = ImageProcessor::clip_default(clip.cfg.vision_config.image_size);
    steps_make_no_buffer(&be, "CLIP training", (1, 3), |epochs| {
        let opts = ClipOptions { epochs, batch: 2, lr: 1e-3, weight_decay: 0.1, warmup: 1, seed: 3 };
        train_clip(&be, &mut clip, &proc, &pairs, &opts, |_, loss| assert!(loss.is_finite())).unwrap();
    });
}
