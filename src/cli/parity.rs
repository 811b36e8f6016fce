//! `hhi parity DIR`: recompute a transformers fixture and report the error.

use super::DeviceArg;
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Fixture folder: config.json, model.safetensors, reference.safetensors (PARITY.md).
    dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    let dtype = a.device.dtype();
    let report = hhi::on_device!(a.device.device, dtype, |be| hhi::parity::run(be, &a.dir, dtype))?;
    say!("{report}");
    if report.ok() {
        Ok(())
    } else if report.checks.is_empty() {
        Err(Error::Invalid(format!("{}: the fixture has no checkable group", a.dir.display())))
    } else {
        Err(Error::Invalid(format!("{}: {} parity check(s) failed", a.dir.display(), report.failed())))
    }
}
