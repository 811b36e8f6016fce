//! `hhi parity DIR…`: recompute transformers fixtures and report the errors.

use super::DeviceArg;
use hhi::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Fixture folders: config.json, model.safetensors, reference.safetensors
    /// (PARITY.md). Several are checked on one opened device, each reported
    /// in turn; the command fails if any of them does.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(a: Args) -> Result<()> {
    let dtype = a.device.dtype();
    let many = a.dirs.len() > 1;
    // Each folder's outcome: Ok, or why it failed (a bad fixture does not stop the rest).
    let outcomes: Vec<Result<()>> = hhi::on_device!(a.device.device, dtype, |be| {
        say!("parity on {}", hhi::backend::Backend::name(be));
        a.dirs
            .iter()
            .map(|dir| {
                if many {
                    say!("== {}", dir.display());
                }
                let report = hhi::parity::run(be, dir, dtype)?;
                say!("{report}");
                if report.ok() {
                    Ok(())
                } else if report.checks.is_empty() {
                    Err(Error::Invalid(format!("{}: the fixture has no checkable group", dir.display())))
                } else {
                    Err(Error::Invalid(format!("{}: {} parity check(s) failed", dir.display(), report.failed())))
                }
            })
            .collect()
    });
    let mut failures: Vec<Error> = outcomes.into_iter().filter_map(|o| o.err()).collect();
    match failures.len() {
        0 => Ok(()),
        1 if !many => Err(failures.remove(0)),
        n => {
            let each: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
            Err(Error::Invalid(format!("{n} of {} fixture folders failed: {}", a.dirs.len(), each.join("; "))))
        }
    }
}
