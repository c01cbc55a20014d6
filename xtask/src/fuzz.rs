//! `cargo xtask fuzz`: the parser fuzzer (`tests/fuzz_parser.rs`) in a release build, for
//! as many frames as asked (1,000,000 unless told) from a seed that is printed, so that
//! a run can be repeated. The test itself prints the summary: frames, outcomes per
//! program (flow, non-IP, malformed, refused by the kernel's test run), seconds.

use std::{fs::File, io::Read as _};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{Project, cmd};

#[derive(Args)]
pub struct FuzzArgs {
    /// How many frames to run through each of the three programs
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    frames: u64,
    /// The seed of the frames (random unless given; the run prints it)
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

pub fn run(project: &Project, args: &FuzzArgs) -> Result<()> {
    project.setup(false)?;
    let seed = match args.seed {
        Some(seed) => seed,
        None => random_seed()?,
    };
    eprintln!(
        "fuzzing the parser: {} frames, seed {seed} (`cargo xtask fuzz --frames {} --seed {seed}` \
         runs the same frames again)",
        args.frames, args.frames
    );
    cmd::run(
        project
            .cargo(["test", "--release", "--test", "fuzz_parser"])
            .env("FLOWMETER_FUZZ_FRAMES", args.frames.to_string())
            .env("FLOWMETER_FUZZ_SEED", seed.to_string())
            .args(["--", "--nocapture"]),
    )
}

fn random_seed() -> Result<u64> {
    let mut bytes = [0; 8];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("could not read a seed from /dev/urandom")?;
    Ok(u64::from_le_bytes(bytes))
}
