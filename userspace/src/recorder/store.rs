//! Where recordings go: `--record-dir` (made 0700 with the first recording if it is
//! missing), one file per
//! recording (0600), named by the time its first alert started and the alert's kind,
//! so names sort by age. Before a new one opens, the oldest are removed until fewer than
//! `--record-keep` remain and they take at most half of `--record-max-size`; the new one
//! may grow into the rest, so all of them together stay within it.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use time::{OffsetDateTime, macros::format_description};

/// What a recording's name starts and ends with.
const PREFIX: &str = "flowmeter-";
const SUFFIX: &str = ".jsonl";

pub struct Store {
    dir: PathBuf,
    keep: usize,
    max_size: u64,
}

/// A new recording's file, and how large it may grow.
pub struct Opened {
    pub file: File,
    pub path: PathBuf,
    pub limit: u64,
}

impl Store {
    pub fn new(dir: PathBuf, keep: usize, max_size: u64) -> Self {
        Self {
            dir,
            keep: keep.max(1),
            max_size,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directory (0700) if it is missing; one that exists is left as it is.
    pub fn prepare(&self) -> io::Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
    }

    /// Rotates, then creates a recording for an alert of `kind` started at `at`.
    pub fn create(&self, at: SystemTime, kind: &str) -> io::Result<Opened> {
        self.prepare()?;
        let used = self.rotate()?;
        let stamp = OffsetDateTime::from(at)
            .format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_else(|_| "19700101T000000Z".into());
        for attempt in 1.. {
            let name = match attempt {
                1 => format!("{PREFIX}{stamp}-{kind}{SUFFIX}"),
                n => format!("{PREFIX}{stamp}-{kind}-{n}{SUFFIX}"),
            };
            let path = self.dir.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(Opened {
                        file,
                        path,
                        limit: self.max_size.saturating_sub(used),
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {}
                Err(error) => return Err(error),
            }
        }
        unreachable!("the loop returns")
    }

    /// The recordings in the directory, oldest first, with their sizes.
    pub fn recordings(&self) -> io::Result<Vec<(PathBuf, u64)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(PREFIX) && name.ends_with(SUFFIX) {
                let size = entry.metadata().map_or(0, |m| m.len());
                found.push((entry.path(), size));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes the oldest recordings until there is room for one more; returns the
    /// bytes the others take.
    fn rotate(&self) -> io::Result<u64> {
        let mut found = self.recordings()?;
        let mut used: u64 = found.iter().map(|(_, size)| size).sum();
        while !found.is_empty() && (found.len() >= self.keep || used > self.max_size / 2) {
            let (path, size) = found.remove(0);
            match fs::remove_file(&path) {
                Ok(()) => used -= size,
                Err(error) if error.kind() == io::ErrorKind::NotFound => used -= size,
                Err(error) => return Err(error),
            }
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, os::unix::fs::PermissionsExt, time::Duration};

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    #[test]
    fn rotation_keeps_n_files_within_the_size_oldest_removed_first() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("deep/recordings");
        let store = Store::new(dir.clone(), 3, 10_000);
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        // By count: the fourth removes the first.
        let mut made = Vec::new();
        for n in 0..4 {
            let mut opened = store.create(at(n), "rate").unwrap();
            opened.file.write_all(&[b'x'; 1000]).unwrap();
            made.push(opened.path);
        }
        assert_eq!(mode(&dir), 0o700, "the directory is made 0700");
        assert_eq!(mode(&made[3]), 0o600, "recordings are 0600");
        let names = |store: &Store| -> Vec<PathBuf> {
            store
                .recordings()
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        };
        assert_eq!(names(&store), made[1..]);
        // By size: 3 x 2,000 bytes are over half of 10,000, so the oldest go until the
        // rest take at most 5,000, and the new one may grow into what is left.
        for path in &made[1..] {
            fs::write(path, [b'y'; 2000]).unwrap();
        }
        let opened = store.create(at(10), "rate").unwrap();
        assert_eq!(
            names(&store),
            [made[2].clone(), made[3].clone(), opened.path.clone()]
        );
        assert_eq!(opened.limit, 10_000 - 4000);
        // Two alerts in one second: two names.
        let again = store.create(at(10), "rate").unwrap();
        assert_ne!(again.path, opened.path);
        assert!(again.path.to_string_lossy().ends_with("-rate-2.jsonl"));
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let temp = tempfile::tempdir().unwrap();
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Store::new(temp.path().to_path_buf(), 2, 1000)
            .prepare()
            .unwrap();
        assert_eq!(
            fs::metadata(temp.path()).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
}
