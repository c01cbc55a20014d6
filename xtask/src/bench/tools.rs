//! bandwhich, from crates.io into the tool cache's `bin/`: tried once; when it does not
//! build, the reason is kept in the cache (`bandwhich.failed`) and the bench goes on
//! without it.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result};

use super::procs;
use crate::cache::Cache;

/// Where bandwhich is, or (inner `Err`) why it is not.
pub fn bandwhich(cache: &Cache, log_dir: &Path) -> Result<Result<PathBuf, String>> {
    let bin = cache.bin_dir().join("bandwhich");
    if let Some(version) = version(&bin) {
        println!(
            "{version}: already installed in {}",
            cache.bin_dir().display()
        );
        return Ok(Ok(bin));
    }
    let stamp = cache.dir().join("bandwhich.failed");
    if let Ok(why) = fs::read_to_string(&stamp) {
        println!(
            "bandwhich: skipped, it did not build here before ({}); delete {} to try again",
            why.trim(),
            stamp.display()
        );
        return Ok(Err(format!(
            "bandwhich: does not build here ({})",
            why.trim()
        )));
    }
    let log = log_dir.join("bandwhich-install.log");
    println!(
        "bandwhich: installing into {} (cargo install --locked; a few minutes, tried once; \
         output in {})",
        cache.bin_dir().display(),
        log.display()
    );
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let status = Command::new("cargo")
        .current_dir(cache.dir())
        .args(["+stable", "install", "--locked", "bandwhich", "--root"])
        .arg(cache.dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status();
    procs::check()?;
    let why = match (status, version(&bin)) {
        (Ok(_), Some(version)) => {
            println!("{version}: installed");
            return Ok(Ok(bin));
        }
        (Ok(status), None) => {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let error = text
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("no error line");
            format!("`cargo install --locked bandwhich` {status}: {error}")
        }
        (Err(e), _) => format!("could not run cargo: {e}"),
    };
    println!("bandwhich: {why}");
    fs::write(&stamp, format!("{why}\n"))
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(Err(format!("bandwhich: does not build here ({why})")))
}

/// `bandwhich 0.23.1`, if it runs.
fn version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
