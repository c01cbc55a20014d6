//! What the verdict needs to know of an owning process beyond its description
//! ([`ProcessInfo`]): whether it still runs as the same process, and the huge pages it
//! maps. Read from `/proc` once when a process first owns a flow, then at most every
//! [`REFRESH`]; [`super::Enricher`] asks for every owned flow and recomputes a flow's
//! judgement only when the [`ProcessFacts::generation`] it was made from changed.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use rustc_hash::FxHashMap;

use crate::{enrich::verdict, proc, shrink};

use super::sockets::ProcessInfo;

/// How often a process's facts are read again: its huge pages may change, and it may exit.
pub const REFRESH: Duration = Duration::from_secs(5);

/// What one process shows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessFacts {
    /// `HugetlbPages` in kB; `None` if unknown, or if the process is gone.
    pub hugetlb_kb: Option<u64>,
    /// Changes whenever these facts do, or the process is another one: a judgement made
    /// from an older generation is stale.
    pub generation: u64,
}

/// One process as first seen: its pid with its start time name it, so that a pid reused
/// by a later process is not taken for it.
#[derive(Debug)]
struct Entry {
    /// Held so that the description's address, the key, stays unique while we keep it.
    _description: Arc<ProcessInfo>,
    /// From `/proc/PID/stat` when the process was first seen; `None` if already gone.
    start_time: Option<u64>,
    facts: ProcessFacts,
    checked: Instant,
    seen: Instant,
}

/// The owning processes' facts, by the description the socket table handed out.
#[derive(Debug)]
pub struct Processes {
    proc_root: PathBuf,
    /// Keyed by the address of the shared description: two descriptions of one pid (the
    /// process before and after a pid reuse) are two entries.
    by_description: FxHashMap<usize, Entry>,
    generations: u64,
}

impl Processes {
    pub fn new(proc_root: PathBuf) -> Self {
        Self {
            proc_root,
            by_description: FxHashMap::default(),
            generations: 0,
        }
    }

    /// The facts of `process`: read now if it is new here, read again if they are older
    /// than [`REFRESH`]; otherwise from memory.
    pub fn facts(&mut self, process: &Arc<ProcessInfo>, now: Instant) -> ProcessFacts {
        let key = Arc::as_ptr(process) as usize;
        if let Some(entry) = self.by_description.get_mut(&key) {
            entry.seen = now;
            if now.saturating_duration_since(entry.checked) < REFRESH {
                return entry.facts;
            }
            entry.checked = now;
            let still_running = entry.start_time.is_some()
                && proc::start_time(&self.proc_root, process.pid) == entry.start_time;
            let hugetlb_kb = still_running
                .then(|| verdict::hugetlb_kb(&self.proc_root, process.pid))
                .flatten();
            if !still_running {
                // Exited, or the pid is another process's now: nothing more to read.
                entry.start_time = None;
            }
            if hugetlb_kb != entry.facts.hugetlb_kb {
                self.generations += 1;
                entry.facts = ProcessFacts {
                    hugetlb_kb,
                    generation: self.generations,
                };
            }
            return entry.facts;
        }
        let start_time = proc::start_time(&self.proc_root, process.pid);
        let hugetlb_kb = start_time.and_then(|_| verdict::hugetlb_kb(&self.proc_root, process.pid));
        self.generations += 1;
        let facts = ProcessFacts {
            hugetlb_kb,
            generation: self.generations,
        };
        self.by_description.insert(
            key,
            Entry {
                _description: Arc::clone(process),
                start_time,
                facts,
                checked: now,
                seen: now,
            },
        );
        facts
    }

    /// Forgets processes that owned no flow for `keep`.
    pub fn forget_unseen(&mut self, now: Instant, keep: Duration) {
        self.by_description
            .retain(|_, entry| now.saturating_duration_since(entry.seen) < keep);
        shrink::to_live(&mut self.by_description);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_description.len()
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, path::Path};

    use super::*;

    /// A fake `/proc/PID` with a start time and huge pages.
    fn write(root: &Path, pid: u32, start_time: u64, hugetlb_kb: u64) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[22 - 3] = start_time.to_string();
        fs::write(
            dir.join("stat"),
            format!("{pid} (x) {}\n", fields.join(" ")),
        )
        .unwrap();
        let status = format!("Name:\tx\nHugetlbPages:\t{hugetlb_kb} kB\n");
        fs::write(dir.join("status"), status).unwrap();
    }

    fn described(pid: u32) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid,
            comm: "x".into(),
            exe: Some("/usr/bin/x".into()),
            exe_deleted: false,
            cgroup: Default::default(),
            uid: 0,
            user: "root".into(),
            cmdline: "x".into(),
        })
    }

    #[test]
    fn facts_are_read_once_then_refreshed_every_few_seconds() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), 10, 1000, 0);
        let mut processes = Processes::new(root.path().into());
        let process = described(10);
        let start = Instant::now();
        let first = processes.facts(&process, start);
        assert_eq!(first.hugetlb_kb, Some(0));
        write(root.path(), 10, 1000, 2048);
        assert_eq!(processes.facts(&process, start + REFRESH / 2), first);
        let later = processes.facts(&process, start + REFRESH);
        assert_eq!(later.hugetlb_kb, Some(2048));
        assert_ne!(later.generation, first.generation);
        // Unchanged facts keep their generation.
        assert_eq!(processes.facts(&process, start + 2 * REFRESH), later);
    }

    #[test]
    fn a_reused_pid_is_not_the_process_that_owned_the_flow() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), 10, 1000, 0);
        let mut processes = Processes::new(root.path().into());
        let old = described(10);
        let start = Instant::now();
        let before = processes.facts(&old, start);
        // The owner exits; a later process gets its pid and maps huge pages.
        write(root.path(), 10, 5000, 4096);
        let after = processes.facts(&old, start + REFRESH);
        assert_eq!(
            after.hugetlb_kb, None,
            "the new process's pages are not the old's"
        );
        assert_ne!(after.generation, before.generation);
        // The new process, described afresh, has facts of its own.
        let new = described(10);
        assert_eq!(
            processes.facts(&new, start + REFRESH).hugetlb_kb,
            Some(4096)
        );
        assert_eq!(processes.len(), 2);
        processes.forget_unseen(start + REFRESH + REFRESH, REFRESH);
        assert_eq!(processes.len(), 0);
    }
}
