//! `cargo xtask deb` against `cargo xtask install`: the package built from the debug
//! binary (minutes quicker than release, same files) holds exactly what `install
//! --prefix /usr --root DIR` stages, byte for byte where the package keeps the bytes, at
//! the places Debian wants (the unit in /usr/lib/systemd/system, the man page
//! gzipped), with sane control fields, and lintian finds no error in it. Needs
//! dpkg-deb, lintian and cargo-deb (`cargo xtask setup`).

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Where install puts a file, relative to the root, and where the package puts it.
const MOVED: &[(&str, &str)] = &[
    (
        "etc/systemd/system/flowmeter.service",
        "usr/lib/systemd/system/flowmeter.service",
    ),
    (
        "usr/share/man/man1/flowmeter.1",
        "usr/share/man/man1/flowmeter.1.gz",
    ),
];

/// What Debian asks of every package beyond what install installs.
const PACKAGE_ONLY: &[&str] = &[
    "usr/share/doc/flowmeter/copyright",
    "usr/share/doc/flowmeter/changelog.Debian.gz",
];

#[test]
fn the_package_holds_what_install_installs_and_lintian_passes() {
    let temp = tempfile::tempdir().unwrap();
    let staged = temp.path().join("install");
    xtask(
        &["install", "--debug", "--prefix", "/usr", "--root"],
        &staged,
    );
    let out = temp.path().join("out");
    let printed = xtask(&["deb", "--debug", "--output"], &out);
    let deb = printed
        .lines()
        .find_map(|line| line.strip_prefix("package: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no `package: PATH` line in:\n{printed}"));

    // The same files with the same modes, some of them where Debian wants them.
    let installed = files_under(&staged);
    let mut expected: BTreeMap<String, u32> = installed
        .iter()
        .map(|(path, &mode)| (packaged_path(path), mode))
        .collect();
    expected.extend(PACKAGE_ONLY.iter().map(|path| (path.to_string(), 0o644)));
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert_eq!(
        package_files(&listing),
        expected,
        "dpkg-deb --contents:\n{listing}"
    );

    // The bytes: identical where the package keeps them, the man page gzipped, the
    // binary stripped but running.
    let unpacked = temp.path().join("unpacked");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    for path in installed.keys() {
        let (ours, theirs) = (staged.join(path), unpacked.join(packaged_path(path)));
        let theirs = match path.as_str() {
            "usr/bin/flowmeter" => {
                let version = run(Command::new(&theirs).arg("--version"));
                assert!(version.starts_with("flowmeter "), "{version}");
                continue;
            }
            "usr/share/man/man1/flowmeter.1" => {
                run(Command::new("gzip").arg("-dc").arg(&theirs)).into_bytes()
            }
            _ => fs::read(&theirs).unwrap(),
        };
        assert!(
            fs::read(&ours).unwrap() == theirs,
            "{path} differs in the package"
        );
    }
    let unit = fs::read_to_string(staged.join(MOVED[0].0)).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/flowmeter log --config /etc/flowmeter/flowmeter.toml "),
        "{unit}"
    );
    // Metrics are off unless configured: neither the unit nor the default config opens a port.
    let config = fs::read_to_string(staged.join("etc/flowmeter/flowmeter.toml")).unwrap();
    assert!(!unit.contains("--metrics"), "{unit}");
    assert!(
        config.contains("\n# metrics = \"127.0.0.1:9465\"\n"),
        "{config}"
    );
    assert!(
        !config.lines().any(|l| l.starts_with("metrics")),
        "{config}"
    );

    // What install makes that is no file: the log directory, root's only.
    let logs = staged.join("var/log/flowmeter");
    assert_eq!(
        fs::metadata(&logs).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    let postinst = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("postinst"));
    assert!(
        postinst.contains("install -d -m 0750 /var/log/flowmeter"),
        "{postinst}"
    );
    // The service is neither enabled nor started by the package: enabled again only if
    // it was (the form of postinst that guards with debian-installed), never started.
    assert!(
        postinst.contains("if deb-systemd-helper debian-installed flowmeter.service; then"),
        "{postinst}"
    );
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");

    // Every file in /etc is the admin's: a conffile, kept over upgrades.
    let conffiles = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles"));
    let mut conffiles: Vec<&str> = conffiles.lines().collect();
    conffiles.sort_unstable();
    assert_eq!(
        conffiles,
        [
            "/etc/flowmeter/flowmeter.toml",
            "/etc/logrotate.d/flowmeter"
        ]
    );

    let control = run(Command::new("dpkg-deb").arg("--field").arg(&deb));
    for field in [
        "Package: flowmeter\n",
        "Section: net\n",
        "Priority: optional\n",
        "Recommends: logrotate\n",
        "Maintainer: ",
        "\nDescription: Per-flow traffic meter",
    ] {
        assert!(control.contains(field), "no {field:?} in:\n{control}");
    }
    let depends = control
        .lines()
        .find_map(|line| line.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends in:\n{control}"));
    assert!(
        depends.contains("libc6 (>= "),
        "computed from the binary: {depends}"
    );

    // lintian: errors fail the test; warnings are printed.
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .output()
        .expect("lintian is missing: `cargo xtask setup` installs it");
    let said = String::from_utf8_lossy(&lintian.stdout);
    eprintln!("lintian:\n{said}");
    assert!(lintian.status.success(), "lintian reports errors:\n{said}");
    assert!(!said.lines().any(|l| l.starts_with("E: ")), "{said}");
}

/// Runs `cargo xtask ARGS DIR` (the built xtask binary) and returns its stdout.
fn xtask(args: &[&str], dir: &Path) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .arg(dir))
}

fn run(cmd: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8(stdout).unwrap(),
        String::from_utf8_lossy(&stderr),
    );
    assert!(
        status.success(),
        "{cmd:?}: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn packaged_path(installed: &str) -> String {
    MOVED
        .iter()
        .find(|(from, _)| *from == installed)
        .map_or(installed, |(_, to)| to)
        .to_owned()
}

/// Every regular file under `root`, relative to it, with its permission bits.
fn files_under(root: &Path) -> BTreeMap<String, u32> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                let path = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                files.insert(path, meta.permissions().mode() & 0o7777);
            }
        }
    }
    files
}

/// The regular files of a `dpkg-deb --contents` listing (`-rwxr-xr-x 0/0 SIZE DATE TIME
/// ./PATH`), with their permission bits.
fn package_files(listing: &str) -> BTreeMap<String, u32> {
    listing
        .lines()
        .filter(|line| line.starts_with('-'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.last().unwrap().trim_start_matches("./").to_owned();
            let mode = fields[0][1..]
                .bytes()
                .enumerate()
                .filter(|&(_, c)| c != b'-')
                .fold(0, |mode, (bit, _)| mode | 1 << (8 - bit));
            (path, mode)
        })
        .collect()
}
