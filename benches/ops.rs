//! Microbenchmarks of the CPU backend's ops at GPT-2 124M training shapes
//! (4 × 128 tokens; the suite itself is `hhi::backend::bench`, which
//! `hhi bench ops --device cuda` runs on a GPU):
//!     cargo bench --bench ops [-- FILTER]

use hhi::backend::bench::{run, Shapes};
use hhi::backend::cpu::Cpu;

fn main() -> hhi::Result<()> {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    println!("{:<44} {:>10} {:>14}", "op", "median ms", "throughput");
    run(&Cpu, Shapes { batch: 4, t: 128, reps: 5 }, &filter, &mut |t| println!("{}", t.line(None)))?;
    Ok(())
}
