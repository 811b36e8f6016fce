//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A test's scratch folder: removed when dropped, unless the test is
/// failing (then it stays for a look, and the failure message names it).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for a look", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh, empty folder under the system temp dir, unique to this process.
pub fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("hhi-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A path inside the repository: `$HHI_REPO` when set (scripts/gpu-check runs
/// test binaries built on another machine), else where cargo built them.
pub fn repo(path: &str) -> PathBuf {
    std::env::var_os("HHI_REPO").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join(path)
}

/// The `hhi` binary: `$HHI_BIN` when set, else the one cargo built with the tests.
pub fn hhi_bin() -> PathBuf {
    std::env::var_os("HHI_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hhi")), PathBuf::from)
}

/// Says why a test skips its checks, straight to stderr: the test harness
/// captures only the print macros, so a plain `cargo test` shows the line.
pub fn say_skipped(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `cuda:0` computing in `dtype` for GPU tests, or `None` after saying why
/// they are skipped (the line scripts/gpu-check greps for).
pub fn cuda_or_skip(test: &str, dtype: hhi::tensor::DType) -> Option<hhi::backend::cuda::Cuda> {
    match hhi::backend::cuda::Cuda::new(0, dtype) {
        Ok(cuda) => Some(cuda),
        Err(why) => {
            say_skipped(&format!("{test}: skipped: no CUDA device ({why})"));
            None
        }
    }
}

/// The CUDA backend on the kernel emulator (build.rs builds it with g++).
pub fn emulated(dtype: hhi::tensor::DType) -> hhi::backend::cuda::Cuda {
    hhi::backend::cuda::Cuda::emulated(dtype).expect("the kernel emulator (build.rs builds it with a C++20 compiler)")
}

/// Model-level gradient check of some parameter tensors: for each named range
/// of the flat parameters, the backward's gradient (`grads`, of `flat`) along
/// a random direction against central differences of `loss` with step
/// `eps`; the two must agree within 3% plus `abs_tolerance`.
#[allow(clippy::too_many_arguments)]
pub fn check_directional_gradients(
    label: &str,
    flat: &[f32],
    grads: &[f32],
    tensors: Vec<(String, std::ops::Range<usize>)>,
    eps: f32,
    abs_tolerance: f64,
    rng: &mut hhi::rng::Rng,
    loss: impl Fn(&[f32]) -> f64,
) {
    for (name, range) in tensors {
        let dir: Vec<f32> = range.clone().map(|_| rng.normal() as f32).collect();
        let analytic: f64 = grads[range.clone()].iter().zip(&dir).map(|(&g, &d)| g as f64 * d as f64).sum();
        let moved = |sign: f32| {
            let mut f = flat.to_vec();
            f[range.clone()].iter_mut().zip(&dir).for_each(|(w, &d)| *w += sign * eps * d);
            loss(&f)
        };
        let numeric = (moved(1.0) - moved(-1.0)) / (2.0 * eps as f64);
        println!("{label} {name}: backward {analytic:.6}, finite differences {numeric:.6}");
        assert!((analytic - numeric).abs() <= 0.03 * analytic.abs() + abs_tolerance, "{label} {name}: backward gives {analytic:.5}, finite differences {numeric:.5}");
    }
}
