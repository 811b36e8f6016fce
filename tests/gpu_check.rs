//! `scripts/gpu-check --dry-run` on this machine, cut to its tunings step:
//! the check's own plumbing (finding the binary, opening the device, running
//! a step with a time limit, the summary and issue 3's targets parsed from
//! the logs) runs on the kernel emulator, so a change that breaks the script
//! fails here rather than during a short GPU lease. The whole dry run (every
//! step, ~10 minutes) is `scripts/gpu-check --dry-run`.

mod common;

use std::process::Command;

#[test]
fn gpu_check_dry_run_runs_its_steps_on_the_emulator() {
    if let Err(why) = hhi::backend::cuda::Cuda::emulated(hhi::tensor::DType::BF16) {
        common::say_skipped(&format!("skipped: {why}"));
        return;
    }
    // A bundle folder as scripts/gpu-bundle leaves it, holding this build's binary.
    let bundle = common::tempdir("gpu-check-bundle");
    std::os::unix::fs::symlink(common::hhi_bin(), bundle.join("hhi")).unwrap();
    let out = common::tempdir("gpu-check-out");
    let tunings = ["attn_decode=tiled", "ln_backward=pipelined4"];
    let run = Command::new(common::repo("scripts/gpu-check"))
        .current_dir(common::repo("."))
        .arg("--dry-run")
        .arg(&*out)
        .env("HHI_BUNDLE", &*bundle)
        .env("HHI_GPU_CHECK_STEPS", "tunings")
        .env("HHI_GPU_CHECK_TUNINGS", tunings.join(" "))
        .output()
        .expect("run scripts/gpu-check");
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap_or_default();
    let said = format!("{}{}\nsummary:\n{summary}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "gpu-check --dry-run failed:\n{said}");
    assert!(summary.contains("--dry-run") && summary.contains("kernel emulator"), "the summary says what ran:\n{said}");
    for tune in tunings {
        let step = format!("tune-{tune}");
        let line = summary.lines().find(|l| l.starts_with(&step)).unwrap_or_else(|| panic!("no line for {step}:\n{said}"));
        assert!(line.contains("PASS"), "{step}: {line}\n{said}");
        assert!(summary.contains(&format!("with HHI_CUDA_TUNE={tune}")), "{step}'s timings are summed up:\n{said}");
    }
    // The sizes were cut (emulated-hhi): the decode line at batch 1, 64 cached rows.
    assert!(summary.contains("attention decode B1 cache 64 H12 d64"), "{said}");
    assert!(summary.contains("issue 3 targets"), "the targets are read from the logs:\n{said}");
}
