//! The `hhi` command line: parse arguments, run the subcommand, turn errors
//! into one line on stderr and a non-zero exit.

use clap::Parser;

fn main() {
    let cli = hhi_cli::Cli::parse();
    if let Err(e) = hhi_cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[path = "cli/mod.rs"]
mod hhi_cli;
