//! The processes under a `/proc` root, read one way for everyone who looks at them:
//! their pids, and what each is ([`ProcessInfo`]: comm, exe, cmdline, user).
//!
//! Two callers take it from here: `enrich::sockets` (which process holds a flow's socket)
//! and `audit` (what every running process is doing). Each passes its `/proc` root
//! (`/proc`, or a test's fixture tree, as `enrich::sockets::ProcPaths` says), and keeps
//! its own judgement of what it reads.
//!
//! Processes come and go while we read: a process that vanished or cannot be read is
//! skipped (or described as `None`), never an error.

use std::{
    collections::HashMap,
    ffi::OsStr,
    fs,
    io::Read,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use procfs::process::Process;

pub use crate::cgroups::Cgroup;

/// A process, as read from `/proc/PID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The kernel's short name (`/proc/PID/comm`, at most 15 bytes).
    pub comm: String,
    /// The executable; `None` if unreadable (kernel threads, or not root).
    pub exe: Option<PathBuf>,
    /// The executable's file was deleted after the process started.
    pub exe_deleted: bool,
    /// Effective uid.
    pub uid: u32,
    /// The uid's user name, or the uid as text if it has none.
    pub user: String,
    /// Arguments joined by spaces; empty for kernel threads and zombies.
    pub cmdline: String,
    /// The cgroup it runs in, and the container or unit that cgroup names.
    pub cgroup: Cgroup,
}

/// The processes under `proc_root`, lowest pid first, each opened as it is reached (so a
/// caller that stops early opens no more). Entries that are not processes, and processes
/// gone before they were opened, are left out.
pub fn processes(proc_root: &Path) -> impl Iterator<Item = Process> + '_ {
    pids(proc_root)
        .into_iter()
        .filter_map(|pid| Process::new_with_root(proc_root.join(pid.to_string())).ok())
}

/// The pids under `proc_root`, ascending.
fn pids(proc_root: &Path) -> Vec<u32> {
    let entries = match fs::read_dir(proc_root) {
        Ok(entries) => entries,
        Err(e) => {
            log::debug!("cannot list {}: {e}", proc_root.display());
            return Vec::new();
        }
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// What is known of a process; `None` if it exited (its comm or uid can no longer be
/// read). Read through the process handle: if the pid was reused meanwhile, the reads
/// fail instead of describing another process.
pub fn describe(process: &Process, users: &mut UserNames) -> Option<ProcessInfo> {
    let comm = read_relative(process, "comm")?
        .trim_end_matches('\n')
        .to_owned();
    // The effective uid, as `ps` shows it; the /proc/PID owner if status does not parse.
    let uid = process
        .status()
        .map(|status| status.euid)
        .or_else(|_| process.uid())
        .ok()?;
    let (exe, exe_deleted) = match process.exe() {
        Ok(path) => {
            let (path, deleted) = strip_deleted(path);
            (Some(path), deleted)
        }
        // Kernel threads have none; other users' processes hide it from non-root.
        Err(_) => (None, false),
    };
    // Arguments joined by spaces; empty for kernel threads and zombies.
    let cmdline = process
        .cmdline()
        .map(|args| args.join(" "))
        .unwrap_or_default();
    Some(ProcessInfo {
        pid: u32::try_from(process.pid()).ok()?,
        comm,
        exe,
        exe_deleted,
        uid,
        user: users.name(uid),
        cmdline,
        cgroup: cgroup(process),
    })
}

/// The process's cgroup v2 (the `0::` line of `/proc/PID/cgroup`); empty if unreadable.
fn cgroup(process: &Process) -> Cgroup {
    let groups = process.cgroups().map(|groups| groups.0).unwrap_or_default();
    groups
        .iter()
        .find(|group| group.hierarchy == 0)
        .map(|group| Cgroup::of_path(&group.pathname))
        .unwrap_or_default()
}

/// The comm of process `pid` under `proc_root`; `None` if it is gone.
pub fn comm(proc_root: &Path, pid: u32) -> Option<String> {
    let comm = fs::read_to_string(proc_root.join(pid.to_string()).join("comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_owned())
}

/// Whether process `pid` or one of its threads has the comm `comm` (threads name
/// themselves: the kernel records the comm of the thread that made a socket).
pub fn has_comm(proc_root: &Path, pid: u32, comm: &str) -> bool {
    if self::comm(proc_root, pid).as_deref() == Some(comm) {
        return true;
    }
    let Ok(threads) = fs::read_dir(proc_root.join(pid.to_string()).join("task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        fs::read_to_string(thread.path().join("comm"))
            .is_ok_and(|text| text.trim_end_matches('\n') == comm)
    })
}

/// When process `pid` started, in clock ticks after boot (field 22 of
/// `PROC_ROOT/PID/stat`); `None` if it is gone. With the pid, it names one process: a
/// reused pid has a later start time.
pub fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    // The comm (field 2) is in parentheses and may hold anything, spaces included.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first word after it, so field 22 is the 20th.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// A file under `/proc/PID`, read through the process handle.
fn read_relative(process: &Process, name: &str) -> Option<String> {
    let mut text = String::new();
    process
        .open_relative(name)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The kernel marks the exe link of a program whose file was deleted (replaced by an
/// upgrade, or removed by malware covering its tracks) with a " (deleted)" suffix.
fn strip_deleted(path: PathBuf) -> (PathBuf, bool) {
    match path.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        Some(kept) => (PathBuf::from(OsStr::from_bytes(kept)), true),
        None => (path, false),
    }
}

/// User names by uid, looked up once each (the passwd database, NSS included).
#[derive(Debug, Default)]
pub struct UserNames(HashMap<u32, String>);

impl UserNames {
    /// The user's name, or the uid as text if it has none.
    pub fn name(&mut self, uid: u32) -> String {
        self.0
            .entry(uid)
            .or_insert_with(|| match uzers::get_user_by_uid(uid) {
                Some(user) => user.name().to_string_lossy().into_owned(),
                None => uid.to_string(),
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comm_of_one_of_its_threads_is_the_process_s() {
        let me = std::process::id();
        let (named, done) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("fm-own-thread".into())
                .spawn_scoped(scope, || {
                    named.wait();
                    done.wait();
                })
                .expect("a thread");
            named.wait();
            let proc_root = Path::new("/proc");
            let found = has_comm(proc_root, me, "fm-own-thread");
            let other = has_comm(proc_root, me, "fm-no-such");
            done.wait();
            assert!(found, "a thread's name is one of the process's comms");
            assert!(!other);
        });
    }

    #[test]
    fn this_process_is_listed_and_described() {
        let me = std::process::id();
        let process = processes(Path::new("/proc"))
            .find(|process| process.pid() as u32 == me)
            .expect("this process");
        let info = describe(&process, &mut UserNames::default()).expect("described");
        assert_eq!(info.pid, me);
        assert_eq!(info.exe, std::env::current_exe().ok());
        assert!(!info.exe_deleted);
        assert!(!info.comm.is_empty() && !info.comm.ends_with('\n'));
    }

    #[test]
    fn a_start_time_is_read_past_any_comm() {
        let me = std::process::id();
        let mine = start_time(Path::new("/proc"), me).expect("this process's start time");
        assert!(mine > 0);
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("7");
        fs::create_dir_all(&dir).unwrap();
        let fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        let stat = format!("7 (a) b (c) {}\n", fields.join(" "));
        fs::write(dir.join("stat"), stat).unwrap();
        assert_eq!(start_time(root.path(), 7), Some(22));
        assert_eq!(start_time(root.path(), 8), None);
    }

    #[test]
    fn the_deleted_mark_is_stripped_and_remembered() {
        assert_eq!(
            strip_deleted(PathBuf::from("/tmp/.x/miner (deleted)")),
            (PathBuf::from("/tmp/.x/miner"), true)
        );
        assert_eq!(
            strip_deleted(PathBuf::from("/usr/bin/curl")),
            (PathBuf::from("/usr/bin/curl"), false)
        );
    }

    #[test]
    fn a_nameless_uid_is_named_by_its_number() {
        let mut users = UserNames::default();
        assert_eq!(users.name(0), "root");
        assert_eq!(users.name(3_999_999), "3999999");
    }
}
