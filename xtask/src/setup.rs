//! Prerequisites: the Debian packages that tests and benches call, nightly's rust-src (for
//! `-Z build-std=core`) and bpf-linker built against nightly's own libLLVM. Each step skips
//! what is already there and says in one line what it did.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cache::Cache, cmd};

/// Debian packages needed by tests and benches.
const DEBIAN_PACKAGES: &[&str] = &[
    "bpftool",
    "iperf3",
    "netsniff-ng",
    "iputils-ping",
    "iproute2",
    "iftop",
    "nethogs",
    "file",
    // nfacctd, the IPFIX collector of tests/ipfix_nfacctd.rs.
    "pmacct",
    // `cargo xtask deb`'s test: the package's checker.
    "lintian",
    // The real Prometheus server that tests/metrics_prometheus.rs scrapes `--metrics` with.
    "prometheus",
    // The MASQUERADE rule of tests/owners.rs's container host.
    "nftables",
];

const BPF_LINKER_VERSION: &str = "0.13.0";

/// What `cargo xtask deb` builds the package with.
const CARGO_DEB_VERSION: &str = "3.8.0";

pub fn is_root() -> Result<bool> {
    Ok(cmd::output(Command::new("id").arg("-u"))?.trim() == "0")
}

/// Installs the missing Debian packages with apt-get (needs root).
pub fn debian_packages() -> Result<()> {
    let mut missing = Vec::new();
    for &pkg in DEBIAN_PACKAGES {
        let query = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}\t${Version}", pkg])
            .output()
            .context("could not run `dpkg-query` (setup supports Debian-based systems only)")?;
        let out = String::from_utf8_lossy(&query.stdout);
        match out.split_once('\t') {
            Some(("install ok installed", version)) if query.status.success() => {
                println!("{pkg} {version}: already installed (Debian package)");
            }
            _ => missing.push(pkg),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root()? {
        bail!(
            "missing Debian packages: {list}; install them as root \
             (`apt-get install {list}`) or run `cargo xtask setup` as root",
            list = missing.join(" ")
        );
    }
    for pkg in &missing {
        println!("{pkg}: installing (apt-get)");
    }
    cmd::run(Command::new("apt-get").arg("update"))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

/// What `cargo build` needs for the eBPF side: nightly rust-src and bpf-linker.
pub fn toolchain(cache: &Cache) -> Result<()> {
    nightly_rust_src()?;
    bpf_linker(cache)
}

fn nightly_rust_src() -> Result<()> {
    let probe = Command::new("rustc")
        .args(["+nightly", "--version"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .context("could not run `rustc` (is rustup installed?)")?;
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr);
        bail!(
            "the nightly toolchain is missing (`rustc +nightly --version`: {}); the eBPF crate \
             builds only with nightly: `rustup toolchain install nightly --component rust-src`",
            why.lines().next().unwrap_or("failed")
        );
    }
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    // Installed components are listed with their target triple, except rust-src.
    if installed.lines().any(|l| l.trim() == "rust-src") {
        println!("nightly rust-src: already installed");
        return Ok(());
    }
    println!("nightly rust-src: installing (rustup)");
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// Builds bpf-linker into the cache, linked against the libLLVM that ships with nightly (no
/// LLVM development package needed). Rebuilds when nightly's libLLVM changes.
fn bpf_linker(cache: &Cache) -> Result<()> {
    let sysroot = PathBuf::from(
        cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?.trim(),
    );
    let libllvm = find_libllvm(&sysroot)?;
    let lib_name = libllvm
        .file_name()
        .context("libLLVM path has no file name")?
        .to_string_lossy()
        .into_owned();
    link_libllvm(cache, &libllvm, &lib_name)?;

    let installed = format!("bpf-linker {BPF_LINKER_VERSION}");
    let bin_dir = cache.bin_dir();
    let stale = match (installed_version(cache), fs::read_to_string(cache.stamp())) {
        (Some(v), Ok(stamp)) if v == BPF_LINKER_VERSION && stamp.trim() == lib_name => {
            println!(
                "{installed}: already installed in {} (for {lib_name})",
                bin_dir.display()
            );
            return Ok(());
        }
        (None, _) => "missing or does not run".to_owned(),
        (Some(v), _) if v != BPF_LINKER_VERSION => format!("found version {v}"),
        (Some(_), Ok(stamp)) => format!("was built against {}", stamp.trim()),
        (Some(_), Err(_)) => "no stamp records its libLLVM".to_owned(),
    };

    let feature = format!("llvm-{}", llvm_major()?);
    println!(
        "{installed}: installing into {} against {lib_name} ({stale}; takes a minute or two)",
        bin_dir.display()
    );
    let _ = fs::remove_file(cache.stamp());
    let root = cache.dir().as_os_str();
    let install = |locked: bool| {
        let mut c = Command::new("cargo");
        c.current_dir(cache.dir())
            .env("LLVM_PREFIX", cache.llvm_prefix())
            .args(["+stable", "install", "--force"])
            .args(locked.then_some("--locked"))
            .arg("--root")
            .arg(root)
            .arg(format!("bpf-linker@{BPF_LINKER_VERSION}"))
            .args(["--no-default-features", "--features", &feature]);
        cmd::run(&mut c)
    };
    if let Err(e) = install(true) {
        eprintln!("{e:#}; retrying without --locked");
        install(false)?;
    }
    match installed_version(cache) {
        Some(v) if v == BPF_LINKER_VERSION => {}
        other => bail!(
            "{} does not run after installing it (version: {other:?})",
            cache.bpf_linker().display()
        ),
    }
    fs::write(cache.stamp(), format!("{lib_name}\n"))
        .with_context(|| format!("writing {}", cache.stamp().display()))
}

/// `$SYSROOT/lib/libLLVM.so.*`, e.g. `libLLVM.so.22.1-rust-1.97.0-nightly`.
fn find_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let mut found: Vec<PathBuf> = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("libLLVM.so."))
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next().with_context(|| {
        format!(
            "no libLLVM.so.* in {}: nightly no longer ships a shared libLLVM",
            lib.display()
        )
    })
}

/// `llvm/lib/libLLVM.so` (what bpf-linker's build links with) and `llvm/lib/<soname>` (what
/// the built binary loads through its rpath) both point at nightly's libLLVM.
fn link_libllvm(cache: &Cache, libllvm: &Path, lib_name: &str) -> Result<()> {
    let dir = cache.llvm_lib_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("libLLVM.so.") && name != lib_name {
            fs::remove_file(dir.join(&*name)).ok(); // left behind by an older nightly
        }
    }
    for name in ["libLLVM.so", lib_name] {
        let link = dir.join(name);
        if fs::read_link(&link).is_ok_and(|target| target == libllvm) {
            continue;
        }
        let _ = fs::remove_file(&link);
        symlink(libllvm, &link)
            .with_context(|| format!("linking {} to {}", link.display(), libllvm.display()))?;
    }
    Ok(())
}

/// The version that `bpf-linker --version` in the cache reports, if it runs at all.
fn installed_version(cache: &Cache) -> Option<String> {
    let out = Command::new(cache.bpf_linker())
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let out = String::from_utf8_lossy(&out.stdout);
    out.split_whitespace().nth(1).map(str::to_owned)
}

/// The major version in `rustc +nightly -vV`'s line `LLVM version: 22.1.4`.
fn llvm_major() -> Result<u32> {
    let vv = cmd::output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    vv.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next()?.trim().parse().ok())
        .context("`rustc +nightly -vV` reports no `LLVM version: N.N.N` line")
}

/// Installs cargo-deb into the cache's `bin/` (on the PATH of every cargo run of ours),
/// unless that version is there: `cargo xtask deb` runs it as `cargo deb`.
pub fn cargo_deb(cache: &Cache) -> Result<()> {
    let installed = format!("cargo-deb {CARGO_DEB_VERSION}");
    let found = Command::new(cache.bin_dir().join("cargo-deb"))
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    if found.as_deref() == Some(installed.as_str()) {
        println!(
            "{installed}: already installed in {}",
            cache.bin_dir().display()
        );
        return Ok(());
    }
    println!(
        "{installed}: installing into {} (found {}; takes a few minutes)",
        cache.bin_dir().display(),
        found.as_deref().unwrap_or("none")
    );
    // On a fresh machine the cache does not exist yet, and cargo cannot start in it.
    fs::create_dir_all(cache.dir())
        .with_context(|| format!("creating {}", cache.dir().display()))?;
    cmd::run(
        Command::new("cargo")
            .current_dir(cache.dir())
            .args(["+stable", "install", "--force", "--locked", "--root"])
            .arg(cache.dir())
            .arg(format!("cargo-deb@{CARGO_DEB_VERSION}")),
    )
}
