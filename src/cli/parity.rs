//! `hhi parity DIR`: recompute a transformers fixture and report the error.

use super::DeviceArg;
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
    if a.dtype != DType::F32 {
        return Err(Error::Invalid(format!("--dtype {}: only f32 is implemented so far (bf16 on CUDA is in progress)", a.dtype)));
    }
    let report = hhi::on_device!(a.device.device, |be| hhi::parity::run(be, &a.dir, a.dtype))?;
    say!("{report}");
    if report.ok() {
        Ok(())
    } else if report.checks.is_empty() {
        Err(Error::Invalid(format!("{}: the fixture has no checkable group", a.dir.display())))
    } else {
        Err(Error::Invalid(format!("{}: {} parity check(s) failed", a.dir.display(), report.failed())))
    }
}
