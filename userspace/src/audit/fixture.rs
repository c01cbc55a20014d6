//! What the checks' tests share: a host's files written under a temporary directory and
//! opened as a [`Root`] (as `--root` opens a mounted disk), and the findings in the form
//! the tests compare.

use std::fs;

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
