//! `cargo xtask deb`: the Debian package for many hosts. Builds the binary, stages
//! under target/deb/root exactly what `cargo xtask install --prefix /usr` installs (the
//! same code, `install::place`), then has cargo-deb pack that stage as
//! `[package.metadata.deb]` in Cargo.toml lists it (the binary itself straight from the
//! build, which cargo-deb strips), with dist/debian/ for the maintainer scripts and the
//! changelog. The .deb goes to `--output`; `apt install
//! ./flowmeter_*.deb` on a host installs it (README, "Many hosts").

use std::{
    fs,
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context as _, Result, ensure};
use clap::Args;

use crate::{Project, cmd, install, setup};

/// The stage, relative to the workspace root: Cargo.toml's asset paths name it.
pub const STAGE: &str = "target/deb/root";

#[derive(Args)]
pub struct DebArgs {
    /// Package the debug build instead of release: quick to build and faster compression,
    /// for tests and a look (a host should get the release build)
    #[arg(long)]
    debug: bool,
    /// Directory the .deb is written to [default: target/debian in the workspace]
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// Builds the package; its path is the last line printed (`package: PATH`).
pub fn run(project: &Project, args: &DebArgs) -> Result<()> {
    setup::cargo_deb(&project.cache)?;
    project.build(!args.debug)?;
    let profile = if args.debug { "debug" } else { "release" };
    let built = project.target_dir()?.join(profile).join("flowmeter");

    // A fresh stage each time: a file left from an older layout must not slip in.
    let stage = project.root.join(STAGE);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    install::place(
        &built,
        &project.root.join("dist"),
        Path::new("/usr"),
        &stage,
        true,
    )?;

    let output = match &args.output {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("making {} absolute", dir.display()))?,
        None => project.root.join("target/debian"),
    };
    fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let mut cargo_deb = project.cargo(["deb", "--no-build", "--strip", "--output"]);
    // The debug build is cargo's dev profile (cargo-deb 3.8 warns that it may refuse it
    // one day: setup pins the version).
    cargo_deb
        .arg(&output)
        .args(
            args.debug
                .then_some(["--profile", "dev", "--fast"])
                .into_iter()
                .flatten(),
        )
        .stderr(Stdio::inherit());
    eprintln!("$ {}", cmd::display(&cargo_deb));
    // cargo-deb prints the package's path on stdout, its warnings on stderr.
    let printed = cmd::output(&mut cargo_deb)?;
    let deb = PathBuf::from(printed.lines().last().unwrap_or_default().trim());
    ensure!(
        deb.extension().is_some_and(|ext| ext == "deb") && deb.is_file(),
        "cargo deb printed no path of a .deb: {printed:?}"
    );
    println!("package: {}", deb.display());
    Ok(())
}
