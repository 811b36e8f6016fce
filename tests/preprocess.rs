//! Image preprocessing against transformers' CLIPImageProcessor (PIL
//! backend) on real photographs in several formats and modes
//! (tests/fixtures/clip_preprocess, made by make_fixtures.py), and CLIP image
//! embeddings from our pixels against embeddings from transformers' pixels.

mod common;
use common::{repo, tempdir};

use hhi::backend::cpu::Cpu;
use hhi::io::image::ImageProcessor;
use hhi::models::clip::{Clip, ClipConfig, VisionActs};

const PHOTOS: [&str; 5] = ["astronaut.jpg", "chelsea_grey.png", "coffee.webp", "camera_alpha.png", "rocket_cmyk.jpg"];

fn expected(name: &str) -> Vec<f32> {
    let refs = hhi::io::safetensors::load(&repo("tests/fixtures/clip_preprocess/expected.safetensors")).unwrap();
    refs[&format!("pixel_values.{name}")].to_f32()
}

#[test]
fn preprocessing_matches_clip_image_processor() {
    let dir = repo("tests/fixtures/clip_preprocess");
    let proc = ImageProcessor::load(&dir, 224).unwrap();
    for name in PHOTOS {
        let got = proc.preprocess_file(&dir.join(name)).unwrap();
        let want = expected(name);
        assert_eq!(got.len(), want.len(), "{name}");
        let mad = got.iter().zip(&want).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / want.len() as f64;
        let max = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name:<18} mean |Δ| {mad:.2e}  max |Δ| {max:.2e}");
        assert!(mad < 0.01, "{name}: mean absolute difference {mad} ≥ 0.01");
    }
}

#[test]
fn embeddings_from_our_pixels_match_embeddings_from_transformers_pixels() {
    let dir = repo("tests/fixtures/clip_preprocess");
    let proc = ImageProcessor::load(&dir, 224).unwrap();
    let json = serde_json::json!({"model_type": "clip", "projection_dim": 16,
        "text_config": {"vocab_size": 30, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 64, "patch_size": 8}});
    let scratch = tempdir("clip_pre");
    let cfg = ClipConfig::from_json(&scratch.join("config.json"), &json).unwrap();
    let model = Clip::init_random(&Cpu, cfg, 3).unwrap();
    let (ours, theirs): (Vec<f32>, Vec<f32>) =
        (PHOTOS.iter().flat_map(|n| proc.preprocess_file(&dir.join(n)).unwrap()).collect(), PHOTOS.iter().flat_map(|n| expected(n)).collect());
    let embed = |pixels: &[f32]| {
        let mut acts = VisionActs::new(&Cpu, &model, PHOTOS.len()).unwrap();
        model.vision_forward(&Cpu, &mut acts, pixels).unwrap();
        acts.embeds.clone()
    };
    let (a, b) = (embed(&ours), embed(&theirs));
    for (i, (x, y)) in a.chunks(16).zip(b.chunks(16)).enumerate() {
        let cos = x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>() / (x.iter().map(|p| p * p).sum::<f32>().sqrt() * y.iter().map(|q| q * q).sum::<f32>().sqrt());
        println!("{:<18} cosine {cos:.6}", PHOTOS[i]);
        assert!(cos >= 0.999, "{}: cosine {cos} < 0.999", PHOTOS[i]);
    }
}

#[test]
fn a_file_that_does_not_decode_is_a_clear_error() {
    let dir = tempdir("bad_image");
    let path = dir.join("broken.jpg");
    std::fs::write(&path, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let msg = ImageProcessor::clip_default(224).preprocess_file(&path).unwrap_err().to_string();
    assert!(msg.contains("broken.jpg") && msg.contains("cannot decode"), "unclear error: {msg}");
}

#[test]
fn embed_skips_a_broken_image_names_it_and_writes_the_rest() {
    let dir = tempdir("embed_cli");
    let broken = dir.join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let photos = repo("tests/fixtures/clip_preprocess");
    let out_file = dir.join("embeddings.jsonl");
    let out = std::process::Command::new(common::hhi_bin())
        .args(["embed", "--model"])
        .arg(repo("tests/fixtures/clip_tiny"))
        .arg("--image")
        .arg(photos.join("astronaut.jpg"))
        .arg(&broken)
        .arg(photos.join("coffee.webp"))
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("broken.png") && err.contains("1 of 3 images") && !err.contains("panicked"), "unclear error: {err}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["embedding"].as_array().unwrap().len(), 8, "clip_tiny projects to 8 dimensions");
}
