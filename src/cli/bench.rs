//! placeholder
use hhi::Result;
#[derive(clap::Subcommand)]
pub enum Command { Train }
pub fn run(_c: Command) -> Result<()> { Ok(()) }
