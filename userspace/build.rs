//! Builds the eBPF programs in `xdp/` with the nightly toolchain (through aya-build) and
//! leaves the object in OUT_DIR, where `datapath` embeds it.

use std::{env, path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest_dir.join("xdp");
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!(
            "bpf-linker is not on PATH: build through `cargo xtask build` (or `cargo xtask run`), \
             which installs it and the nightly rust-src it needs"
        );
    }
    // aya-build runs `cargo build --package flowmeter-ebpf` in the current directory;
    // the eBPF crate is its own workspace, so run it from there.
    env::set_current_dir(&ebpf_dir).context("entering xdp/")?;
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "flowmeter-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}
