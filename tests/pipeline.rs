//! The pipeline's stage commands end to end on tiny random Hugging Face
//! checkpoints (the t5_tiny, clip_tiny and gpt2_tiny fixtures) and the five
//! photographs of clip_preprocess: train-summarizer, pseudo-label,
//! train-captioner and predict. Every path runs, a rerun after a stop or a
//! kill gives the uninterrupted run's output, and bad inputs are named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    common::repo("tests/fixtures").join(name)
}

fn hhi(args: &[&str]) -> Output {
    Command::new(common::hhi_bin()).args(args).output().expect("run hhi")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const PHOTOS: [&str; 5] = ["astronaut.jpg", "camera_alpha.png", "chelsea_grey.png", "coffee.webp", "rocket_cmyk.jpg"];

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn train_then_predict_resumes_and_reports_bad_inputs() {
    let dir = common::tempdir("captioner");
    let photos = fixture("clip_preprocess");
    let labels = ["_ hugging _", "_ lifting _", "_ hugging _", "_ greeting _", "_ carrying _"];
    let pseudo: Vec<String> =
        PHOTOS.iter().zip(labels).enumerate().map(|(i, (f, l))| serde_json::json!({"image": photos.join(f), "label": l, "weight": 0.5 + i as f64 * 0.25}).to_string()).collect();
    let pseudo_path = dir.join("pseudo.jsonl");
    write_lines(&pseudo_path, &pseudo);
    let captioner = dir.join("captioner");
    let (clip, gpt2) = (fixture("clip_tiny"), fixture("gpt2_tiny"));
    let args = ["train-captioner", "--clip", p(&clip), "--gpt2", p(&gpt2), "--pseudo-labels", p(&pseudo_path), "--out", p(&captioner)];
    let out = hhi(&[&args[..], &["--prefix-length", "2", "--epochs", "2", "--batch", "2", "--lr", "1e-3", "--max-tokens", "8"]].concat());
    assert!(out.status.success(), "train-captioner failed: {}", String::from_utf8_lossy(&out.stderr));
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(captioner.join(f).exists(), "the captioner folder lacks {f}");
    }

    // --only-prefix trains the MLP alone: GPT-2 comes out exactly as it went in.
    let frozen = dir.join("frozen");
    let args = ["train-captioner", "--clip", p(&clip), "--gpt2", p(&gpt2), "--pseudo-labels", p(&pseudo_path), "--out", p(&frozen)];
    let out = hhi(&[&args[..], &["--prefix-length", "2", "--epochs", "2", "--batch", "2", "--lr", "1e-2", "--only-prefix"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (trained, base) = (hhi::io::safetensors::load(&frozen.join("model.safetensors")).unwrap(), hhi::io::safetensors::load(&gpt2.join("model.safetensors")).unwrap());
    let mut compared = 0;
    for (name, t) in &base {
        let got = &trained[&format!("gpt.{name}")];
        assert_eq!(got.to_f32(), t.to_f32(), "{name} changed under --only-prefix");
        compared += 1;
    }
    assert!(compared > 10);
    let log = String::from_utf8_lossy(&out.stderr);
    let losses: Vec<f32> = log.lines().filter_map(|l| l.split("loss ").nth(1)).map(|x| x.trim().parse().unwrap()).collect();
    assert!(losses.len() == 2 && losses[1] < losses[0], "the MLP alone should still learn: {log}");

    // Predict for the five photos in two batches; then as if killed after the first batch.
    let manifest = dir.join("manifest.jsonl");
    write_lines(&manifest, &PHOTOS.iter().map(|f| serde_json::json!({"id": f, "image": photos.join(f)}).to_string()).collect::<Vec<_>>());
    let predict = |out_file: &Path| {
        hhi(&[
            "predict",
            "--captioner",
            p(&captioner),
            "--clip",
            p(&clip),
            "--manifest",
            p(&manifest),
            "--out",
            p(out_file),
            "--beams",
            "4",
            "--keep",
            "3",
            "--max-tokens",
            "6",
            "--batch",
            "3",
        ])
    };
    let full = dir.join("full.jsonl");
    let out = predict(&full);
    assert!(out.status.success(), "predict failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let preds = v["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 3, "{line}");
        let scores: Vec<f64> = preds.iter().map(|x| x["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().all(|s| *s <= 0.0), "scores are log-probabilities, best first: {scores:?}");
    }
    let resumed = dir.join("resumed.jsonl");
    write_lines(&resumed, &lines[..3].iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let out = predict(&resumed);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 images already predicted, 2 to go"));
    assert_eq!(std::fs::read_to_string(&resumed).unwrap(), text, "a resumed run must end with the uninterrupted run's output");

    // Evaluate the predictions against gold labels of two sources.
    let gold = dir.join("gold.jsonl");
    write_lines(
        &gold,
        &PHOTOS
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (f, l))| serde_json::json!({"id": f, "label": l, "source": if i < 3 { "news" } else { "web" }}).to_string())
            .collect::<Vec<_>>(),
    );
    let report_path = dir.join("report.json");
    let out = hhi(&["evaluate", "--predictions", p(&full), "--gold", p(&gold), "--out", p(&report_path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("majority baseline (_ hugging _)"));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["n"], 5);
    for k in ["1", "5", "8"] {
        for source in ["news", "web"] {
            assert!(report["k"][k]["per_source"][source]["bleu4"].is_number(), "{report}");
        }
    }

    // A manifest line that is not JSON: named with its line, nothing predicted.
    let broken = dir.join("broken.jsonl");
    write_lines(&broken, &[lines[0].to_string(), "{not json".into()]);
    let out = hhi(&["predict", "--captioner", p(&captioner), "--clip", p(&clip), "--manifest", p(&broken), "--out", p(&dir.join("x.jsonl"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("broken.jsonl") && err.contains("line 2"), "{err}");

    // An image that does not decode: named, skipped, counted; the others predicted.
    let bad = dir.join("not_an_image.jpg");
    std::fs::write(&bad, b"plain text").unwrap();
    let out_file = dir.join("with_bad.jsonl");
    let out = hhi(&["predict", "--captioner", p(&captioner), "--clip", p(&clip), "--images", p(&photos.join(PHOTOS[0])), p(&bad), "--out", p(&out_file), "--beams", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not_an_image.jpg") && err.contains("1 of 2 images could not be read"), "{err}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap().lines().count(), 1);

    // An empty pseudo-label file and a missing model folder.
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = hhi(&["train-captioner", "--clip", p(&clip), "--gpt2", p(&gpt2), "--pseudo-labels", p(&empty), "--out", p(&dir.join("y"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("empty.jsonl") && err.contains("no records"), "{err}");
    let out = hhi(&["train-captioner", "--clip", p(&dir.join("no-such-clip")), "--gpt2", p(&gpt2), "--pseudo-labels", p(&pseudo_path), "--out", p(&dir.join("z"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-clip"), "{err}");
}

#[test]
fn pseudo_labels_resume_after_a_stop_and_carry_weights() {
    let dir = common::tempdir("pseudo-label");
    let captions = [
        "Alex hands a trophy to Bailey",
        "two players hug at the net",
        "a coach helps an athlete",
        "leaders greet each other",
        "she carries her friend",
        "they play chess in the park",
        "the mayor interviews a firefighter",
    ];
    let weak = dir.join("weak.jsonl");
    write_lines(&weak, &captions.iter().enumerate().map(|(i, c)| serde_json::json!({"image": format!("img{i}.jpg"), "caption": c}).to_string()).collect::<Vec<_>>());
    let t5 = fixture("t5_tiny");
    let run = |out: &Path, extra: &[&str]| hhi(&[&["pseudo-label", "--summarizer", p(&t5), "--weak", p(&weak), "--out", p(out), "--batch", "3"][..], extra].concat());
    let full = dir.join("full.jsonl");
    let out = run(&full, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stopped = dir.join("stopped.jsonl");
    let out = run(&stopped, &["--stop-after", "1"]);
    assert!(out.status.success() && !stopped.exists() && dir.join("stopped.jsonl.partial").exists());
    let out = run(&stopped, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 captions already summarized, 4 to go"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), std::fs::read_to_string(&full).unwrap());
    assert!(!dir.join("stopped.jsonl.partial").exists());
    // Kept lines carry their input, an -ing label and a weight.
    for line in std::fs::read_to_string(&full).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["image"].is_string() && v["caption"].is_string() && v["weight"].as_f64().unwrap() > 0.0);
        assert!(v["label"].as_str().unwrap().split_whitespace().nth(1).unwrap().ends_with("ing"), "{line}");
    }
    // A line without a caption is named.
    let bad = dir.join("bad.jsonl");
    write_lines(&bad, &[r#"{"image": "a.jpg", "caption": "x"}"#.into(), r#"{"image": "b.jpg"}"#.into()]);
    let out = hhi(&["pseudo-label", "--summarizer", p(&t5), "--weak", p(&bad), "--out", p(&dir.join("o.jsonl"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bad.jsonl") && err.contains("line 2") && err.contains("caption"), "{err}");
}

#[test]
fn train_summarizer_fits_pairs_and_saves_a_usable_folder() {
    let dir = common::tempdir("summarizer");
    let pairs = dir.join("pairs.jsonl");
    let rows = [("Alex hands a trophy to Bailey", "_ handing a trophy to _"), ("two players hug at the net", "_ hugging _"), ("a coach helps an athlete", "_ helping _")];
    write_lines(&pairs, &rows.iter().map(|(c, l)| serde_json::json!({"caption": c, "label": l}).to_string()).collect::<Vec<_>>());
    let out_dir = dir.join("summarizer");
    let t5 = fixture("t5_tiny");
    let out = hhi(&["train-summarizer", "--t5", p(&t5), "--pairs", p(&pairs), "--out", p(&out_dir), "--epochs", "25", "--batch", "2", "--lr", "1e-2", "--eval-share", "0"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let losses: Vec<f32> = log.lines().filter_map(|l| l.split("loss ").nth(1)).map(|x| x.split_whitespace().next().unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 25, "{log}");
    assert!(losses[24] < losses[0] / 3.0, "three pairs should be fitted: {losses:?}");
    // The saved folder is a summarizer the next stage takes.
    let weak = dir.join("weak.jsonl");
    write_lines(&weak, &[serde_json::json!({"image": "a.jpg", "caption": rows[1].0}).to_string()]);
    let out = hhi(&["pseudo-label", "--summarizer", p(&out_dir), "--weak", p(&weak), "--out", p(&dir.join("labels.jsonl"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A folder with only config.json starts from a random T5 (with --tokenizer).
    let config_only = dir.join("config_only");
    std::fs::create_dir_all(&config_only).unwrap();
    std::fs::copy(t5.join("config.json"), config_only.join("config.json")).unwrap();
    let out = hhi(&[
        "train-summarizer",
        "--t5",
        p(&config_only),
        "--tokenizer",
        p(&t5.join("tokenizer.json")),
        "--pairs",
        p(&pairs),
        "--out",
        p(&dir.join("from_scratch")),
        "--epochs",
        "1",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains("random initialisation"), "{log}");
    // A pair without its target field is named.
    write_lines(&pairs, &[r#"{"caption": "x"}"#.into()]);
    let out = hhi(&["train-summarizer", "--t5", p(&t5), "--pairs", p(&pairs), "--out", p(&dir.join("o"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pairs.jsonl") && err.contains("line 1") && err.contains("`label`"), "{err}");
}

/// A tiny random GPT-2 with room for few-shot prompts (gpt2_tiny's tokenizer).
fn tiny_llm(dir: &Path) -> PathBuf {
    let cfg = dir.join("llm_config.json");
    let json = serde_json::json!({"model_type": "gpt2", "vocab_size": 300, "n_positions": 384, "n_embd": 16, "n_layer": 1, "n_head": 2, "eos_token_id": 0, "bos_token_id": 0});
    std::fs::write(&cfg, json.to_string()).unwrap();
    let data = dir.join("llm_data.txt");
    std::fs::write(&data, "Alex hugging Bailey\nAlex lifting Bailey\n").unwrap();
    let out = dir.join("llm");
    let tokenizer = fixture("gpt2_tiny").join("tokenizer.json");
    let run =
        hhi(&["train-lm", "--config", p(&cfg), "--tokenizer", p(&tokenizer), "--data", p(&data), "--out", p(&out), "--steps", "2", "--batch", "2", "--seq", "8", "--warmup", "1"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    out
}

#[test]
fn synthetic_stages_resume_to_the_uninterrupted_output() {
    let dir = common::tempdir("synthetic");
    let llm = tiny_llm(&dir);
    let seeds = dir.join("seeds.txt");
    std::fs::write(&seeds, "Alex hugging Bailey\nAlex handing a trophy to Bailey\nAlex lifting Bailey\nAlex greeting Bailey\n").unwrap();
    let interactions = |out: &Path, extra: &[&str]| {
        hhi(&[&["interactions", "--llm", p(&llm), "--seeds", p(&seeds), "--out", p(out), "--prompts", "5", "--batch", "2", "--shots", "3", "--max-new-tokens", "10"][..], extra]
            .concat())
    };
    let full = dir.join("interactions.txt");
    let out = interactions(&full, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stopped = dir.join("interactions_stopped.txt");
    assert!(interactions(&stopped, &["--stop-after", "2"]).status.success());
    assert!(!stopped.exists(), "a stopped run must not write its output");
    let out = interactions(&stopped, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 batches already done, 1 to go"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), std::fs::read_to_string(&full).unwrap());

    let fewshot = dir.join("fewshot.jsonl");
    write_lines(
        &fewshot,
        &[
            r#"{"interaction": "Alex hugging Bailey", "caption": "Alex hugs Bailey at the airport."}"#.into(),
            r#"{"interaction": "Alex lifting Bailey", "caption": "Alex lifts Bailey after the win."}"#.into(),
        ],
    );
    let captions = |out: &Path, extra: &[&str]| {
        hhi(&[
            &[
                "captions",
                "--llm",
                p(&llm),
                "--interactions",
                p(&seeds),
                "--fewshot",
                p(&fewshot),
                "--out",
                p(out),
                "--shots",
                "2",
                "--batch",
                "3",
                "--per-interaction",
                "2",
                "--max-new-tokens",
                "12",
            ][..],
            extra,
        ]
        .concat())
    };
    let full = dir.join("captions.jsonl");
    let out = captions(&full, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("of 8 captions kept"));
    let stopped = dir.join("captions_stopped.jsonl");
    assert!(captions(&stopped, &["--stop-after", "1"]).status.success());
    assert!(captions(&stopped, &[]).status.success());
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), std::fs::read_to_string(&full).unwrap());
    // Stage 3's NLI filter (a tiny random BART): what it keeps is a subset, each with P(entailment) > 0.5.
    let filtered = dir.join("captions_nli.jsonl");
    let out = captions(&filtered, &["--nli", common::repo("tests/fixtures/bart_tiny").to_str().unwrap()]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NLI entailment > 0.5"), "{}", String::from_utf8_lossy(&out.stderr));
    let all = std::fs::read_to_string(&full).unwrap();
    for line in std::fs::read_to_string(&filtered).unwrap().lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["p_entailment"].as_f64().unwrap() > 0.5, "{line}");
        v.as_object_mut().unwrap().remove("p_entailment");
        assert!(all.contains(&v.to_string()), "{line} is not among the unfiltered captions");
    }

    // Bad inputs: an empty seeds file, a few-shot record without a caption.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let out = hhi(&["interactions", "--llm", p(&llm), "--seeds", p(&empty), "--out", p(&dir.join("x.txt"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("empty.txt") && err.contains("no lines"), "{err}");
    write_lines(&fewshot, &[r#"{"interaction": "Alex hugging Bailey"}"#.into()]);
    let out = captions(&dir.join("y.jsonl"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("fewshot.jsonl") && err.contains("record 1") && err.contains("`caption`"), "{err}");
}

#[test]
fn train_clip_learns_world_pairs_and_saves_a_clip_folder() {
    let dir = common::tempdir("train-clip");
    let world = dir.join("world");
    let out = hhi(&["world", "--out", p(&world), "--weak", "48", "--test", "4", "--categorical", "4", "--image-size", "32"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg = dir.join("clip_config.json");
    let json = serde_json::json!({
        "model_type": "clip", "projection_dim": 16,
        "text_config": {"vocab_size": 300, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 64, "eos_token_id": 0},
        "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    });
    std::fs::write(&cfg, json.to_string()).unwrap();
    let tokenizer = fixture("gpt2_tiny").join("tokenizer.json");
    let clip = dir.join("clip");
    let out = hhi(&[
        "train-clip",
        "--config",
        p(&cfg),
        "--tokenizer",
        p(&tokenizer),
        "--pairs",
        p(&world.join("weak.jsonl")),
        "--out",
        p(&clip),
        "--epochs",
        "6",
        "--batch",
        "16",
        "--lr",
        "3e-3",
        "--warmup",
        "2",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let losses: Vec<f32> = log.lines().filter_map(|l| l.split("loss ").nth(1)).map(|x| x.trim().parse().unwrap()).collect();
    assert_eq!(losses.len(), 6, "{log}");
    assert!(losses[5] < losses[0], "the contrastive loss should fall: {losses:?}");
    // The folder is a CLIP that the other commands take.
    let out = hhi(&["embed", "--model", p(&clip), "--image", p(&world.join("images/test/000000.png"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts `hhi args`, waits for a stderr line containing `marker`, and kills
/// the process there (SIGKILL: no cleanup runs). Returns whether the marker
/// came before the process ended on its own.
fn kill_at(args: &[String], marker: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(common::hhi_bin()).args(args).stderr(std::process::Stdio::piped()).spawn().expect("run hhi");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = stderr.lines().map_while(|l| l.ok()).any(|l| l.contains(marker));
    child.kill().ok();
    child.wait().ok();
    seen
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn killed_stages_rerun_to_the_uninterrupted_output() {
    let dir = common::tempdir("killed");
    let photos = fixture("clip_preprocess");
    let labels = ["_ hugging _", "_ lifting _", "_ hugging _", "_ greeting _", "_ carrying _"];
    let pseudo_path = dir.join("pseudo.jsonl");
    write_lines(&pseudo_path, &PHOTOS.iter().zip(labels).map(|(f, l)| serde_json::json!({"image": photos.join(f), "label": l}).to_string()).collect::<Vec<_>>());
    let (clip, gpt2) = (fixture("clip_tiny"), fixture("gpt2_tiny"));
    let run = |args: &[String]| Command::new(common::hhi_bin()).args(args).output().expect("run hhi");

    // train-captioner, killed after its first of six epochs, then rerun.
    let train = |out: &Path| {
        owned(&[
            "train-captioner",
            "--clip",
            p(&clip),
            "--gpt2",
            p(&gpt2),
            "--pseudo-labels",
            p(&pseudo_path),
            "--out",
            p(out),
            "--prefix-length",
            "2",
            "--epochs",
            "6",
            "--batch",
            "1",
            "--lr",
            "1e-3",
            "--max-tokens",
            "8",
        ])
    };
    let (full, killed) = (dir.join("full"), dir.join("killed"));
    assert!(run(&train(&full)).status.success());
    assert!(kill_at(&train(&killed), "epoch   1"), "train-captioner ended before its first epoch was logged");
    assert!(!killed.join("model.safetensors").exists(), "a killed training must not leave a model behind");
    assert!(run(&train(&killed)).status.success());
    let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(bytes(&killed) == bytes(&full), "the rerun after a kill trained a different model");

    // predict, killed after its first batch of one image, then rerun.
    let manifest = dir.join("manifest.jsonl");
    write_lines(&manifest, &PHOTOS.iter().map(|f| serde_json::json!({"id": f, "image": photos.join(f)}).to_string()).collect::<Vec<_>>());
    let predict = |out: &Path| {
        owned(&[
            "predict",
            "--captioner",
            p(&full),
            "--clip",
            p(&clip),
            "--manifest",
            p(&manifest),
            "--out",
            p(out),
            "--beams",
            "3",
            "--keep",
            "2",
            "--max-tokens",
            "5",
            "--batch",
            "1",
        ])
    };
    let (full_pred, killed_pred) = (dir.join("full.jsonl"), dir.join("killed.jsonl"));
    assert!(run(&predict(&full_pred)).status.success());
    assert!(kill_at(&predict(&killed_pred), "predicted 1 of 5"), "predict ended before its first batch");
    let out = run(&predict(&killed_pred));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&killed_pred).unwrap(), std::fs::read_to_string(&full_pred).unwrap());
}
