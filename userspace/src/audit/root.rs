//! The filesystem tree being audited: `/` on the live system, or a mounted disk or test
//! fixture. Checks name files as the audited host sees them (`/etc/rc.local`); this
//! module finds them under the root, following symbolic links inside the tree (an
//! absolute link on a mounted disk points into that disk, never into the auditing host).
//!
//! A missing file is not a finding: the check has nothing to look at. A file that exists
//! but cannot be read is an `unreadable` info finding, and its checks are skipped.

use std::{
    fs, io,
    path::{Component, Path, PathBuf},
};

use super::{
    advice,
    finding::{Finding, Findings, Severity},
};

/// Symbolic links followed in one path before giving up (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

/// Why the audit cannot run at all.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("cannot audit {}: {error}; give an existing directory with --root", root.display())]
    Unusable { root: PathBuf, error: io::Error },
    #[error("cannot audit {}: not a directory; give the directory a disk is mounted on with --root", root.display())]
    NotADirectory { root: PathBuf },
}

/// The tree under audit.
#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
    /// The running system's own `/`: processes and sockets can be checked.
    live: bool,
}

impl Root {
    /// `dir` must be an existing directory.
    pub fn open(dir: &Path) -> Result<Self, RootError> {
        let unusable = |error| RootError::Unusable {
            root: dir.to_owned(),
            error,
        };
        let canonical = fs::canonicalize(dir).map_err(unusable)?;
        if !fs::metadata(&canonical).map_err(unusable)?.is_dir() {
            return Err(RootError::NotADirectory {
                root: dir.to_owned(),
            });
        }
        Ok(Self {
            live: canonical == Path::new("/"),
            dir: canonical,
        })
    }

    /// The running system's `/`, where processes and sockets belong to the same host.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Where the host's `host_path` (absolute) is in this tree, symbolic links resolved
    /// inside the tree. A missing component ends the resolution (the caller's read then
    /// finds nothing).
    pub fn path(&self, host_path: &str) -> PathBuf {
        if self.live {
            return PathBuf::from(host_path);
        }
        self.dir.join(
            self.resolve(host_path)
                .strip_prefix("/")
                .unwrap_or(Path::new("")),
        )
    }

    /// `host_path` with every symbolic link resolved, as a host path.
    fn resolve(&self, host_path: &str) -> PathBuf {
        let mut pending: Vec<PathBuf> = components_reversed(Path::new(host_path));
        let mut resolved = PathBuf::from("/");
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match part.as_os_str().to_str() {
                Some("..") => {
                    resolved.pop();
                    continue;
                }
                Some(".") => continue,
                _ => {}
            }
            let candidate = resolved.join(&part);
            let inside = self
                .dir
                .join(candidate.strip_prefix("/").unwrap_or(&candidate));
            let Ok(target) = fs::read_link(&inside) else {
                resolved = candidate;
                continue;
            };
            links += 1;
            if links > MAX_LINKS {
                return candidate;
            }
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            pending.extend(components_reversed(&target));
        }
        resolved
    }

    /// The text of `host_path`; `None` if it does not exist, or (with an `unreadable`
    /// finding) if it cannot be read. Bytes that are not UTF-8 are replaced.
    pub fn read(&self, host_path: &str, out: &mut Findings) -> Option<String> {
        match fs::read(self.path(host_path)) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) => {
                self.failed(host_path, &error, out);
                None
            }
        }
    }

    /// The host paths of the entries of directory `host_dir` that are files (or links
    /// to files), sorted; none if it does not exist (or, with an `unreadable` finding,
    /// if it cannot be listed).
    pub fn files_in(&self, host_dir: &str, out: &mut Findings) -> Vec<String> {
        self.entries(host_dir, out, |path| path.is_file())
    }

    /// The same for the entries that are directories (or links to directories).
    pub fn dirs_in(&self, host_dir: &str, out: &mut Findings) -> Vec<String> {
        self.entries(host_dir, out, |path| path.is_dir())
    }

    fn entries(&self, host_dir: &str, out: &mut Findings, keep: fn(&Path) -> bool) -> Vec<String> {
        let entries = match fs::read_dir(self.path(host_dir)) {
            Ok(entries) => entries,
            Err(error) => {
                self.failed(host_dir, &error, out);
                return Vec::new();
            }
        };
        let mut found: Vec<String> = entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .map(|name| format!("{}/{name}", host_dir.trim_end_matches('/')))
            .filter(|host| keep(&self.path(host)))
            .collect();
        found.sort();
        found
    }

    /// The metadata of `host_path` (links followed inside the tree), if it exists.
    pub fn metadata(&self, host_path: &str) -> Option<fs::Metadata> {
        fs::metadata(self.path(host_path)).ok()
    }

    /// Whether `host_path` exists (links followed inside the tree).
    pub fn exists(&self, host_path: &str) -> bool {
        self.metadata(host_path).is_some()
    }

    fn failed(&self, host_path: &str, error: &io::Error, out: &mut Findings) {
        if error.kind() == io::ErrorKind::NotFound {
            return;
        }
        out.add(Finding::new(
            "unreadable",
            Severity::Info,
            format!("Cannot read {host_path} ({error}): its checks were skipped"),
            host_path,
            advice::UNREADABLE,
        ));
    }
}

/// The normal components of `path`, last first (a stack to pop from).
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn links_resolve_inside_the_tree() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tree.path();
        fs::create_dir_all(dir.join("etc/rc.d")).unwrap();
        fs::write(dir.join("etc/rc.d/rc.local"), "inside\n").unwrap();
        // RHEL's /etc/rc.local -> rc.d/rc.local, and an absolute link.
        symlink("rc.d/rc.local", dir.join("etc/rc.local")).unwrap();
        symlink("/etc/rc.d/rc.local", dir.join("etc/absolute")).unwrap();
        symlink("../../etc/../etc/rc.d/rc.local", dir.join("etc/rc.d/up")).unwrap();
        // A link that would leave the tree stays inside it.
        symlink("/../../../../etc/hostname", dir.join("etc/escape")).unwrap();
        symlink("loop", dir.join("etc/loop")).unwrap();
        let root = Root::open(dir).unwrap();
        assert!(!root.is_live());
        let mut out = Findings::default();
        for path in ["/etc/rc.local", "/etc/absolute", "/etc/rc.d/up"] {
            assert_eq!(
                root.read(path, &mut out).as_deref(),
                Some("inside\n"),
                "{path}"
            );
        }
        assert_eq!(root.read("/etc/escape", &mut out), None);
        assert_eq!(root.read("/etc/missing", &mut out), None);
        assert!(out.found.is_empty(), "missing files are no findings");
        assert_eq!(
            root.files_in("/etc", &mut out),
            ["/etc/absolute", "/etc/rc.local"]
        );
        // A loop cannot be read: that is said, not an error.
        assert_eq!(root.read("/etc/loop", &mut out), None);
        assert_eq!(out.found.len(), 1);
        assert_eq!(out.found[0].id, "unreadable");
    }

    #[test]
    fn unreadable_files_are_info_findings() {
        let tree = tempfile::tempdir().unwrap();
        // A directory where a file is expected reads as an error other than "missing".
        fs::create_dir_all(tree.path().join("etc/shadow")).unwrap();
        let root = Root::open(tree.path()).unwrap();
        let mut out = Findings::default();
        assert_eq!(root.read("/etc/shadow", &mut out), None);
        assert_eq!(out.found.len(), 1);
        assert_eq!(out.found[0].id, "unreadable");
        assert_eq!(out.found[0].severity, Severity::Info);
        assert_eq!(out.found[0].evidence, "/etc/shadow");
    }

    #[test]
    fn the_root_must_be_an_existing_directory() {
        let tree = tempfile::tempdir().unwrap();
        let missing = tree.path().join("missing");
        let error = Root::open(&missing).unwrap_err().to_string();
        assert!(error.contains("--root"), "{error}");
        let file = tree.path().join("file");
        fs::write(&file, "").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Root::open(&file),
            Err(RootError::NotADirectory { .. })
        ));
        assert!(Root::open(Path::new("/")).unwrap().is_live());
        assert!(Root::open(Path::new("/etc/..")).unwrap().is_live());
    }
}
