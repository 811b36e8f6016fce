//! `hhi world`: generate the synthetic HHI world (images, captions, splits).

use hhi::world::{generate, WorldConfig};
use hhi::Result;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (must not exist; written atomically).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the interaction frequency ranking (default: --seed).
    #[arg(long)]
    inventory_seed: Option<u64>,
    /// Weakly captioned images (the Who's Waldo analogue).
    #[arg(long, default_value_t = 10_000)]
    weak: usize,
    /// Test images with gold labels (the Waldo and Wenda analogue).
    #[arg(long, default_value_t = 1000)]
    test: usize,
    /// Images with one verb each (the imSitu-HHI analogue).
    #[arg(long, default_value_t = 1000)]
    categorical: usize,
    /// Web alt-text pairs (web.jsonl, images/web/) for pre-training a CLIP
    /// stand-in: every interaction equally, captions as noisy as --noise.
    #[arg(long, default_value_t = 0)]
    web: usize,
    /// Image side in pixels (32..=224).
    #[arg(long, default_value_t = 64)]
    image_size: u32,
    /// Share of weak captions whose interaction is absent or wrong.
    #[arg(long, default_value_t = 0.15)]
    noise: f64,
    /// Also write contact_sheet.png (examples of every interaction, labelled).
    #[arg(long)]
    contact_sheet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = WorldConfig {
        seed: a.seed,
        inventory_seed: a.inventory_seed.unwrap_or(a.seed),
        weak: a.weak,
        test: a.test,
        categorical: a.categorical,
        web: a.web,
        image_size: a.image_size,
        noise: a.noise,
        contact_sheet: a.contact_sheet,
    };
    let start = Instant::now();
    let stats = generate(&cfg, &a.out, &|msg| eprintln!("{msg}"))?;
    say!(
        "wrote {} in {:.1} s: {} interactions over {} gerunds; head {} / tail {} interactions",
        a.out.display(),
        start.elapsed().as_secs_f64(),
        stats["num_interactions"],
        stats["num_gerunds"],
        stats["head_tail"]["head_interactions"],
        stats["head_tail"]["tail_interactions"]
    );
    Ok(())
}
