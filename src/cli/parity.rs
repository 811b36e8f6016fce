//! `hhi parity DIR`: recompute a transformers fixture and report the error.

use super::DeviceArg;
use hhi::backend::cpu::Cpu;
use hhi::tensor::DType;
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Fixture folder: config.json, model.safetensors, reference.safetensors (PARITY.md).
    dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    /// Compute precision (f32 on the CPU).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::parse(s).ok_or_else(|| format!("unknown dtype `{s}` (f32, bf16)"))
}

pub fn run(a: Args) -> Result<()> {
    a.device.device.require_cpu()?;
    if a.dtype != DType::F32 {
        return Err(Error::Invalid(format!("--dtype {} needs the CUDA backend; the CPU backend computes in f32", a.dtype)));
    }
    let report = hhi::parity::run(&Cpu, &a.dir, a.dtype)?;
    say!("{report}");
    if report.ok() {
        Ok(())
    } else if report.checks.is_empty() {
        Err(Error::Invalid(format!("{}: the fixture has no checkable group", a.dir.display())))
    } else {
        Err(Error::Invalid(format!("{}: {} parity check(s) failed", a.dir.display(), report.failed())))
    }
}
