//! What the checks' tests share: a host's files written under a temporary directory and
//! opened as a [`Root`] (as `--root` opens a mounted disk), a fake `/proc` entry for a
//! process, and the findings in the form the tests compare.

use std::{fs, os::unix::fs::symlink, path::Path};

use tempfile::TempDir;

use super::{
    finding::{Findings, Severity},
    root::Root,
};

/// A tree holding `files` (paths as the audited host sees them, and their contents). The
/// tree lasts as long as the returned directory.
pub fn tree<C: AsRef<[u8]>>(files: &[(&str, C)]) -> (TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    let root = Root::open(dir.path()).unwrap();
    (dir, root)
}

/// Each finding as (id, severity, evidence), in the order found.
pub fn found(out: &Findings) -> Vec<(&str, Severity, &str)> {
    out.found
        .iter()
        .map(|f| (f.id.as_str(), f.severity, f.evidence.as_str()))
        .collect()
}

/// A process as `/proc/PID` shows it, under the fake proc root `proc`: its comm, the
/// target of its `exe` link as the kernel writes it (`/memfd:agent (deleted)`), its
/// command line and its `cgroup` file. Sleeping, no terminal, a second of CPU.
pub fn process(proc: &Path, pid: u32, comm: &str, exe: &str, cmdline: &[&str], cgroup: &str) {
    let dir = proc.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime ..., then 0 for the rest: field 22 (starttime) included.
    let rest = vec!["0"; 52 - 15].join(" ");
    let stat = format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194304 0 0 0 0 50 50 {rest}\n");
    fs::write(dir.join("stat"), stat).unwrap();
    fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
    let status = format!("Name:\t{comm}\nHugetlbPages:\t       0 kB\n");
    fs::write(dir.join("status"), status).unwrap();
    let mut args = cmdline.join("\0");
    args.push('\0');
    fs::write(dir.join("cmdline"), args).unwrap();
    fs::write(dir.join("cgroup"), cgroup).unwrap();
    symlink(exe, dir.join("exe")).unwrap();
}
