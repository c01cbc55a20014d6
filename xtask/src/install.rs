//! `cargo xtask install`: flowmeter as a service. Builds the release binary, then installs
//! it, its man page, the default configuration (never over an existing one), the systemd
//! unit and the logrotate file, each step in one line. `--root DIR` stages everything
//! under DIR (a package's DESTDIR) and touches nothing else. See docs/service.md.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Args;

use crate::{Project, cmd, setup};

/// Where the unit, the configuration and the log live: fixed system paths, whatever
/// the prefix (the unit and the logrotate file name them).
const CONFIG: &str = "/etc/flowmeter/flowmeter.toml";
const UNIT: &str = "/etc/systemd/system/flowmeter.service";
const LOGROTATE: &str = "/etc/logrotate.d/flowmeter";
const LOG_DIR: &str = "/var/log/flowmeter";
/// The binary's path in dist/flowmeter.service, replaced by the installed one.
const UNIT_BINARY: &str = "/usr/local/bin/flowmeter";
/// systemd's sign that it is the running init.
const SYSTEMD_RUNNING: &str = "/run/systemd/system";

#[derive(Args)]
pub struct InstallArgs {
    /// Where the binary and the man page go: PREFIX/bin, PREFIX/share/man
    #[arg(long, value_name = "DIR", default_value = "/usr/local")]
    prefix: PathBuf,
    /// Staging root (DESTDIR): install under DIR instead of /, for packaging or a look
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Only the binary, the man page and the configuration: no unit, no logrotate
    /// file, no log directory
    #[arg(long)]
    no_systemd: bool,
    /// Install the debug build instead of release: quick to build, for tests and a look
    #[arg(long)]
    debug: bool,
}

pub fn run(project: &Project, args: &InstallArgs) -> Result<()> {
    let prefix = &args.prefix;
    ensure!(
        prefix.is_absolute(),
        "--prefix must be an absolute path, not {}",
        prefix.display()
    );
    // The unit's ExecStart names the binary: keep to characters systemd takes literally.
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@".contains(c);
    ensure!(
        prefix.to_str().is_some_and(|p| p.chars().all(plain)),
        "--prefix {} has characters the systemd unit would need quoted; use a plain path",
        prefix.display()
    );
    let root = std::path::absolute(&args.root)
        .with_context(|| format!("making {} absolute", args.root.display()))?;
    let live = root == Path::new("/");
    if live && !setup::is_root()? {
        bail!(
            "installing into / needs root: run `sudo -E env PATH=\"$PATH\" cargo xtask install`, \
             or stage it elsewhere with `cargo xtask install --root DIR`"
        );
    }
    project.build(!args.debug)?;
    let profile = if args.debug { "debug" } else { "release" };
    let built = project.target_dir()?.join(profile).join("flowmeter");
    let dist = project.root.join("dist");
    place(&built, &dist, prefix, &root, !args.no_systemd)?;
    if args.no_systemd {
        return Ok(());
    }

    if !live {
        println!(
            "systemd: staged under {}; on the target host run `systemctl daemon-reload`, \
             then `systemctl enable --now flowmeter`",
            root.display()
        );
    } else if !Path::new(SYSTEMD_RUNNING).exists() {
        println!(
            "systemd: not running here ({SYSTEMD_RUNNING} is missing); the unit is in place \
             for when it is: `systemctl enable --now flowmeter`"
        );
    } else {
        cmd::run(Command::new("systemctl").arg("daemon-reload"))?;
        let active = Command::new("systemctl")
            .args(["is-active", "--quiet", "flowmeter.service"])
            .status()
            .is_ok_and(|status| status.success());
        if active {
            println!(
                "systemd: reloaded; flowmeter is running the old binary: \
                 `systemctl restart flowmeter` to run the new one"
            );
        } else {
            println!(
                "systemd: reloaded; start it now and at boot: `systemctl enable --now flowmeter`"
            );
        }
    }
    Ok(())
}

/// Puts the files in place under `root`: `built` as PREFIX/bin/flowmeter, its man page,
/// the default configuration from `dist` (unless one is there), and with `systemd` the
/// unit, the logrotate file and the log directory. One line each. `cargo xtask deb`
/// stages its package's files with the same steps.
pub fn place(built: &Path, dist: &Path, prefix: &Path, root: &Path, systemd: bool) -> Result<()> {
    let staged = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));

    let bin = prefix.join("bin/flowmeter");
    install_copy(built, &staged(&bin), 0o755)?;
    println!("binary: {} (0755)", staged(&bin).display());

    // An empty --config: the page must not depend on this host's /etc/flowmeter.
    let page = cmd::output(Command::new(built).args(["man", "--config", "/dev/null"]))
        .context("`flowmeter man` could not make the man page")?;
    let man = staged(&prefix.join("share/man/man1/flowmeter.1"));
    install_bytes(&man, page.as_bytes(), 0o644)?;
    println!("man page: {}", man.display());

    let config = staged(Path::new(CONFIG));
    if config.symlink_metadata().is_ok() {
        println!(
            "config: kept {} as it is (never overwritten; the default is dist/flowmeter.toml)",
            config.display()
        );
    } else {
        install_bytes(&config, &read(&dist.join("flowmeter.toml"))?, 0o644)?;
        println!(
            "config: {} (the default: every option commented out)",
            config.display()
        );
    }

    if !systemd {
        println!("systemd unit, logrotate file, log directory: skipped (--no-systemd)");
        return Ok(());
    }

    let template = String::from_utf8(read(&dist.join("flowmeter.service"))?)
        .context("dist/flowmeter.service is not UTF-8")?;
    let unit = unit_for(&template, &bin)?;
    install_bytes(&staged(Path::new(UNIT)), unit.as_bytes(), 0o644)?;
    println!(
        "systemd unit: {} (runs {} log)",
        staged(Path::new(UNIT)).display(),
        bin.display()
    );

    let logrotate = staged(Path::new(LOGROTATE));
    install_bytes(&logrotate, &read(&dist.join("flowmeter.logrotate"))?, 0o644)?;
    println!("logrotate: {}", logrotate.display());

    let logs = staged(Path::new(LOG_DIR));
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    set_mode(&logs, 0o750)?;
    println!("log directory: {} (0750)", logs.display());

    Ok(())
}

/// The unit with ExecStart pointing at `bin`.
fn unit_for(template: &str, bin: &Path) -> Result<String> {
    let from = format!("ExecStart={UNIT_BINARY} ");
    ensure!(
        template.matches(&from).count() == 1,
        "dist/flowmeter.service must have exactly one `{from}...` line"
    );
    Ok(template.replace(&from, &format!("ExecStart={} ", bin.display())))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Copies `from` to `to` through a temporary file and a rename, so that a running
/// flowmeter keeps its old binary and never sees a half-written one.
fn install_copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let temp = temp_beside(to)?;
    fs::copy(from, &temp)
        .with_context(|| format!("copying {} to {}", from.display(), temp.display()))?;
    finish(&temp, to, mode)
}

/// Writes `bytes` to `to` through a temporary file and a rename.
fn install_bytes(to: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = temp_beside(to)?;
    let mut file =
        fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    finish(&temp, to, mode)
}

/// A temporary name in `to`'s directory (created if missing, 0755).
fn temp_beside(to: &Path) -> Result<PathBuf> {
    let dir = to
        .parent()
        .with_context(|| format!("{} has no directory", to.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    Ok(dir.join(format!(".{name}.xtask-install.{}", std::process::id())))
}

fn finish(temp: &Path, to: &Path, mode: u32) -> Result<()> {
    let result = set_mode(temp, mode).and_then(|()| {
        fs::rename(temp, to).with_context(|| format!("installing {}", to.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_installed_binary() {
        let template = "[Service]\nExecStart=/usr/local/bin/flowmeter log --config /etc/x\n";
        let unit = unit_for(template, Path::new("/opt/fm/bin/flowmeter")).unwrap();
        assert_eq!(
            unit,
            "[Service]\nExecStart=/opt/fm/bin/flowmeter log --config /etc/x\n"
        );
        assert!(unit_for("[Service]\nExecStart=/bin/true\n", Path::new("/x")).is_err());
    }

    #[test]
    fn the_shipped_unit_has_one_execstart_to_rewrite() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/flowmeter.service");
        let template = fs::read_to_string(dist).unwrap();
        let unit = unit_for(&template, Path::new("/usr/bin/flowmeter")).unwrap();
        assert!(
            unit.contains("\nExecStart=/usr/bin/flowmeter log "),
            "{unit}"
        );
    }
}
