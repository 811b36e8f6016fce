//! T5 pieces beyond the parity fixtures: the relative position buckets
//! against transformers' own (stored by make_fixtures.py for distances far
//! past `max_distance`), and clear errors for configs the graph cannot run.

mod common;
use common::{repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::backend::Backend;
use hhi::io::checkpoint::ModelDir;
use hhi::models::t5::{buckets, Activations, Seq2SeqBatch, T5Cache, T5Config, T5};
use hhi::rng::Rng;
use hhi::tensor::DType;

#[test]
fn relative_position_buckets_match_transformers() {
    let text = std::fs::read_to_string(repo("tests/fixtures/t5_buckets.json")).expect("t5_buckets.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = json["relative_positions"][0].as_i64().unwrap();
    let tables = json["tables"].as_array().unwrap();
    assert!(tables.len() >= 8);
    for t in tables {
        let (nb, md, bi) = (t["num_buckets"].as_u64().unwrap() as usize, t["max_distance"].as_u64().unwrap() as usize, t["bidirectional"].as_bool().unwrap());
        for (i, want) in t["buckets"].as_array().unwrap().iter().enumerate() {
            let rel = first + i as i64;
            assert_eq!(buckets::bucket(rel, bi, nb, md) as i64, want.as_i64().unwrap(), "bucket of {rel} (num_buckets {nb}, max_distance {md}, bidirectional {bi})");
        }
    }
}

#[test]
fn unknown_feed_forward_is_a_clear_error() {
    let src = repo("tests/fixtures/t5_tiny");
    let dir = tempdir("t5_bad_ff");
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    for (proj, expect) in [("gated-swishy", "unknown activation `swishy`"), ("double-gated-gelu", "is not `ACT` or `gated-ACT`")] {
        cfg["feed_forward_proj"] = proj.into();
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let err = ModelDir::open(&dir).and_then(|d| d.load_t5(&Cpu, None)).err().expect("a bad feed_forward_proj must fail");
        let msg = err.to_string();
        assert!(msg.contains("config.json") && msg.contains(expect), "unclear error: {msg}");
    }
}

#[test]
fn weights_of_another_shape_name_the_tensor() {
    let src = repo("tests/fixtures/t5_tiny");
    let dir = tempdir("t5_bad_shape");
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["d_ff"] = 30.into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let msg = ModelDir::open(&dir).and_then(|d| d.load_t5(&Cpu, None)).err().expect("mismatched weights must fail").to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("DenseReluDense.wi.weight"), "unclear error: {msg}");
}

#[test]
fn summarize_prints_the_top_beams_best_first() {
    let out = std::process::Command::new(common::hhi_bin())
        .args(["summarize", "--model"])
        .arg(repo("tests/fixtures/t5_tiny"))
        .args(["--input", "alex hands a trophy to bailey", "--input", "the coach helps an athlete", "--num-beams", "3", "--top-k-beams", "3"])
        .output()
        .expect("run hhi");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let scores: Vec<f64> = line["summaries"].as_array().unwrap().iter().map(|s| s["score"].as_f64().unwrap()).collect();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "beams not best first: {scores:?}");
    }
}

#[test]
fn summarize_names_the_bad_jsonl_line() {
    let dir = tempdir("t5_bad_jsonl");
    std::fs::write(dir.join("in.jsonl"), "{\"text\": \"two players hug\"}\n{\"caption\": \"x\"}\n").unwrap();
    let out =
        std::process::Command::new(common::hhi_bin()).args(["summarize", "--model"]).arg(repo("tests/fixtures/t5_tiny")).arg("--file").arg(dir.join("in.jsonl")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("in.jsonl") && err.contains("line 2") && !err.contains("panicked"), "unclear error: {err}");
}

/// t5_gated_untied's shape (1 encoder layer, 3 decoder layers, gated
/// feed-forward) with random weights, every norm's perturbed by N(0, 0.5)
/// (transformers initialises them all to ones, and so do the fixtures: a norm
/// applied with another's weights would pass parity).
fn t5_with_random_norms(rng: &mut Rng) -> (T5Config, Vec<f32>) {
    let path = repo("tests/fixtures/t5_gated_untied/config.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cfg = T5Config::from_json(&path, &json).unwrap();
    let mut flat = Cpu.download(Cpu::view(&T5::init_random(&Cpu, cfg.clone(), 4).unwrap().params)).unwrap();
    for part in norm_weights(&cfg) {
        flat[part.clone()].iter_mut().for_each(|w| *w += 0.5 * rng.normal() as f32);
    }
    (cfg, flat)
}

/// Where each norm's weights sit in the flat parameters.
fn norm_weights(cfg: &T5Config) -> Vec<std::ops::Range<usize>> {
    T5::<Cpu>::layout(cfg).tensors().into_iter().filter(|p| p.name.ends_with("layer_norm.weight")).map(|p| p.offset..p.offset + p.numel()).collect()
}

/// d loss / d (each norm's weights) from the backward against central
/// differences of the loss along a random direction: a forward that applies
/// one norm's weights where another's belong (encoder included, which the
/// cached-decoding test shares with the full forward) disagrees with its
/// backward. CPU, f32.
#[test]
fn norm_weight_gradients_match_finite_differences() {
    let mut rng = Rng::new(22);
    let (cfg, flat) = t5_with_random_norms(&mut rng);
    let (b, s, t, v) = (2, 6, 4, cfg.vocab_size);
    let mut ids = |n: usize| (0..n).map(|_| rng.below(v) as i32).collect::<Vec<_>>();
    let (input_ids, decoder_ids, labels) = (ids(b * s), ids(b * t), ids(b * t));
    let mask = Some([vec![1.0; s], vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0]].concat());
    let batch = Seq2SeqBatch { b, s, t, input_ids, mask, decoder_ids, labels: Some(labels) };
    let loss = |flat: &[f32], grads: Option<&mut Vec<f32>>| {
        let model = T5::from_flat(&Cpu, cfg.clone(), flat.to_vec()).unwrap();
        let mut acts = Activations::new(&Cpu, &model, b, s, t).unwrap();
        let loss = model.forward(&Cpu, &mut acts, &batch, grads.is_some()).unwrap().unwrap() as f64;
        if let Some(g) = grads {
            model.backward(&Cpu, &mut acts, g);
        }
        loss
    };
    let mut grads = vec![0f32; flat.len()];
    loss(&flat, Some(&mut grads));
    let norms = norm_weights(&cfg).into_iter().enumerate().map(|(k, range)| (format!("norm {k}"), range)).collect();
    common::check_directional_gradients("t5", &flat, &grads, norms, 1e-2, 1e-3, &mut rng, |f| loss(f, None));
}

/// The decoder's KV-cache steps (each residual add fused with the next norm)
/// against the full forward of the same tokens, on t5_gated_untied's shape
/// (3 decoder layers, gated) with every norm given weights of its own, so a
/// norm applied with another's weights fails (as it fails the fixtures'
/// greedy and beam ids since their norms differ too). CPU and emulator.
fn check_cached_decoding<B: Backend>(be: &B) {
    let mut rng = Rng::new(21);
    let (cfg, flat) = t5_with_random_norms(&mut rng);
    let model = T5::from_flat(be, cfg.clone(), flat).unwrap();
    let (b, s, t, v) = (2, 7, 5, cfg.vocab_size);
    let input_ids: Vec<i32> = (0..b * s).map(|_| 2 + rng.below(v - 2) as i32).collect();
    let mut decoder_ids: Vec<i32> = (0..b * t).map(|_| rng.below(v) as i32).collect();
    (0..b).for_each(|r| decoder_ids[r * t] = 0);

    let batch = Seq2SeqBatch { b, s, t, input_ids: input_ids.clone(), mask: None, decoder_ids: decoder_ids.clone(), labels: None };
    let mut acts = Activations::new(be, &model, b, s, t).unwrap();
    model.forward(be, &mut acts, &batch, false).unwrap();
    let full = be.download(B::view(&acts.logits)).unwrap();

    let mut cache = T5Cache::new(be, &model, &input_ids, None, b, 1, t).unwrap();
    for j in 0..t {
        let tokens: Vec<i32> = (0..b).map(|r| decoder_ids[r * t + j]).collect();
        model.decode_step(be, &mut cache, &tokens).unwrap();
        let step = be.download(cache.logits()).unwrap();
        for r in 0..b {
            let want = &full[(r * t + j) * v..(r * t + j + 1) * v];
            let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
            let err = step[r * v..(r + 1) * v].iter().zip(want).fold(0f32, |m, (a, w)| m.max((a - w).abs())) / scale;
            assert!(err < 1e-5, "{}: row {r} step {j}: cached logits differ from the full forward by {err:.2e}", be.name());
        }
    }
}

#[test]
fn cached_decoding_matches_the_full_forward_on_cpu() {
    check_cached_decoding(&Cpu);
}

#[test]
fn cached_decoding_matches_the_full_forward_on_the_kernel_emulator() {
    check_cached_decoding(&common::emulated(DType::F32));
}
