//! Which process holds a socket (`PROC/PID/fd/N -> socket:[INODE]`); what that process
//! is, the shared `/proc` reader says ([`crate::proc::describe`]).
//!
//! Processes come and go while we read: any `/proc` entry that vanished or cannot be
//! read skips that process, never fails the scan.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use procfs::process::{FDTarget, Process};

use crate::proc::{self, ProcessInfo, UserNames};

/// Finds, for each wanted socket inode, the process holding it. A socket shared by
/// several processes (inherited across fork) goes to the lowest pid, so the answer does
/// not change from one scan to the next. Inodes that no readable process holds are
/// missing from the answer.
///
/// The answer also gives the holders' other sockets that `is_live` keeps (a server's
/// listening socket alongside its first connection), so that later flows on them need no
/// scan.
pub(super) fn find_holders(
    proc_root: &Path,
    wanted: &HashSet<u64>,
    is_live: impl Fn(u64) -> bool,
    users: &mut UserNames,
) -> HashMap<u64, Arc<ProcessInfo>> {
    let mut found = HashMap::new();
    let mut missing = wanted.clone();
    // Sockets of the processes passed so far: a later process holding one is not its
    // lowest pid.
    let mut passed = HashSet::new();
    // Lowest pid first, so the first holder found is the one to keep and the scan can
    // stop as soon as every wanted inode has one.
    for process in proc::processes(proc_root) {
        if missing.is_empty() {
            break;
        }
        let held: Vec<u64> = socket_inodes(&process)
            .filter(|&inode| is_live(inode) && passed.insert(inode))
            .collect();
        if !held.iter().any(|inode| missing.contains(inode)) {
            continue;
        }
        // Described through the same handle as its fds: if the pid was reused meanwhile,
        // the reads fail instead of describing another process.
        let Some(info) = proc::describe(&process, users) else {
            // It exited: the next holder of its sockets is the lowest living one.
            for inode in &held {
                passed.remove(inode);
            }
            continue;
        };
        let info = Arc::new(info);
        for inode in held {
            missing.remove(&inode);
            found.insert(inode, Arc::clone(&info));
        }
    }
    found
}

/// The inodes of the sockets among the process's open files; none if they cannot be read.
fn socket_inodes(process: &Process) -> impl Iterator<Item = u64> {
    process
        .fd()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf};

    use super::*;
    use crate::enrich::sockets::fixture::{FakeProc, FakeProcess};

    /// A uid that no test machine names.
    const NAMELESS_UID: u32 = 3_999_999;

    fn holders(fake: &FakeProc, wanted: &[u64]) -> HashMap<u64, Arc<ProcessInfo>> {
        let wanted = wanted.iter().copied().collect();
        find_holders(
            &fake.paths().proc_root,
            &wanted,
            |_| true,
            &mut UserNames::default(),
        )
    }

    fn nginx(pid: u32) -> FakeProcess<'static> {
        FakeProcess {
            pid,
            comm: "nginx",
            args: &["nginx: worker process"],
            uid: 0,
            exe: Some("/usr/sbin/nginx"),
        }
    }

    #[test]
    fn describes_the_process_holding_each_socket() {
        let fake = FakeProc::new();
        fake.process(&FakeProcess {
            pid: 4242,
            comm: "curl",
            args: &["curl", "-sS", "https://example.com/"],
            uid: NAMELESS_UID,
            exe: Some("/usr/bin/curl"),
        });
        fake.file_fd(4242, 0, "/dev/null");
        fake.fd(4242, 3, 1001);
        fake.process(&nginx(80));
        fake.fd(80, 7, 1002);
        let found = holders(&fake, &[1001, 1002]);
        let curl = &found[&1001];
        assert_eq!(
            **curl,
            ProcessInfo {
                pid: 4242,
                comm: "curl".into(),
                exe: Some(PathBuf::from("/usr/bin/curl")),
                exe_deleted: false,
                cgroup: Default::default(),
                uid: NAMELESS_UID,
                user: NAMELESS_UID.to_string(),
                cmdline: "curl -sS https://example.com/".into(),
            }
        );
        assert_eq!((found[&1002].pid, found[&1002].user.as_str()), (80, "root"));
    }

    #[test]
    fn a_deleted_executable_is_flagged_and_its_path_kept() {
        let fake = FakeProc::new();
        fake.process(&FakeProcess {
            pid: 666,
            comm: "kworker/0:2",
            args: &["./x"],
            uid: 0,
            exe: Some("/tmp/.x/miner (deleted)"),
        });
        fake.fd(666, 5, 2001);
        let miner = &holders(&fake, &[2001])[&2001];
        assert_eq!(miner.exe.as_deref(), Some(Path::new("/tmp/.x/miner")));
        assert!(miner.exe_deleted);
    }

    #[test]
    fn processes_without_exe_or_arguments_are_still_described() {
        let fake = FakeProc::new();
        fake.process(&FakeProcess {
            pid: 9,
            comm: "ksoftirqd/0",
            args: &[],
            uid: 0,
            exe: None,
        });
        fake.fd(9, 1, 3001);
        let thread = &holders(&fake, &[3001])[&3001];
        assert_eq!((thread.exe.as_deref(), thread.cmdline.as_str()), (None, ""));
    }

    #[test]
    fn a_shared_socket_goes_to_the_lowest_pid() {
        let fake = FakeProc::new();
        for pid in [300, 20, 1000] {
            fake.process(&nginx(pid));
            fake.fd(pid, 6, 4001);
        }
        fake.fd(1000, 7, 4002);
        let found = holders(&fake, &[4001, 4002]);
        assert_eq!((found[&4001].pid, found[&4002].pid), (20, 1000));
        // One description per process, shared by its sockets.
        fake.fd(20, 8, 4003);
        let found = holders(&fake, &[4001, 4003]);
        assert!(Arc::ptr_eq(&found[&4001], &found[&4003]));
    }

    #[test]
    fn the_holders_other_live_sockets_come_along_when_it_is_the_lowest_pid() {
        let fake = FakeProc::new();
        // pid 10 shares socket 7001 with pid 20, which alone holds 7002 and 7003.
        fake.process(&nginx(10));
        fake.fd(10, 3, 7001);
        fake.process(&nginx(20));
        fake.fd(20, 3, 7001);
        fake.fd(20, 4, 7002);
        fake.fd(20, 5, 7003);
        fake.fd(20, 6, 7004);
        let wanted = [7002].into();
        let is_live = |inode| inode != 7004;
        let found = find_holders(
            &fake.paths().proc_root,
            &wanted,
            is_live,
            &mut UserNames::default(),
        );
        let mut pids: Vec<(u64, u32)> = found.iter().map(|(inode, p)| (*inode, p.pid)).collect();
        pids.sort_unstable();
        assert_eq!(pids, [(7002, 20), (7003, 20)]);
    }

    #[test]
    fn vanished_and_unreadable_entries_are_skipped() {
        let fake = FakeProc::new();
        let root = fake.paths().proc_root;
        // Exited between listing its fds and reading its comm.
        fake.process(&nginx(10));
        fake.fd(10, 3, 5001);
        fs::remove_file(root.join("10/comm")).unwrap();
        // Exited before its fds were listed.
        fake.process(&nginx(11));
        fs::remove_dir(root.join("11/fd")).unwrap();
        // Not a process at all.
        fs::create_dir(root.join("sys")).unwrap();
        fs::write(root.join("12"), "a file where a directory should be").unwrap();
        // A later holder of the same socket is found instead.
        fake.process(&nginx(13));
        fake.fd(13, 3, 5001);
        let found = holders(&fake, &[5001, 5002]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[&5001].pid, 13);
        assert!(holders(&fake, &[5002]).is_empty());
        assert!(
            find_holders(
                &root.join("absent"),
                &[5001].into(),
                |_| true,
                &mut UserNames::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn a_status_that_does_not_parse_falls_back_to_the_directory_owner() {
        let fake = FakeProc::new();
        fake.process(&FakeProcess {
            uid: NAMELESS_UID,
            ..nginx(50)
        });
        fake.fd(50, 3, 6001);
        fs::write(fake.paths().proc_root.join("50/status"), "Name:\tnginx\n").unwrap();
        // The fixture tree belongs to whoever runs the tests.
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(holders(&fake, &[6001])[&6001].uid, me);
    }
}
