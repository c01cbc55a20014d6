//! The verdict rules' notions of compromise, for the audit: what makes a process
//! suspicious, which directories are temporary, which programs run scripts.
//!
//! The console's verdicts and the audit must agree, so the audit asks
//! [`Rules::judge`](crate::enrich::verdict::Rules::judge) rather than keeping lists of
//! its own. The rules judge flows; here they judge a flow that carries no sign of its
//! own (no transport, no addresses, no country), so every reason they give comes from the
//! process and the context. Temporary directories and interpreters are the rules' lists.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    datapath::{FlowId, Protocol},
    enrich::{
        geo::{HomeCountries, Location},
        verdict::{self, FlowContext, Persistence, Reason, Rules},
    },
    proc::ProcessInfo,
};

/// The reasons the verdict rules give against `process`: executable deleted or under a
/// temporary directory, a kernel thread's name, launched from a persistence point, huge
/// pages (`hugetlb_kb`) without being a known user; and a cloud agent's name.
pub fn process_reasons(
    rules: &Rules,
    process: &ProcessInfo,
    persistence: &Persistence,
    hugetlb_kb: Option<u64>,
) -> Vec<Reason> {
    let home = HomeCountries::default();
    let mut context = FlowContext::new(Location::Local, &home);
    context.persistence = persistence;
    context.hugetlb_kb = hugetlb_kb;
    rules
        .judge(&neutral_flow(), Some(process), &context)
        .reasons
}

/// The temporary directory (`/tmp`, `/var/tmp`, `/dev/shm`) that `path` lies under, if
/// any: the verdict rules' list.
pub fn temp_dir(path: &Path) -> Option<PathBuf> {
    verdict::temp_dir(path).map(PathBuf::from)
}

/// Whether the program called `name` (sh, bash, python3, perl, ...) runs scripts: the
/// verdict rules' list.
pub use verdict::is_interpreter;

/// A process running `exe` with `cmdline`, and nothing else known.
#[cfg(test)]
fn probe(exe: PathBuf, cmdline: String) -> ProcessInfo {
    ProcessInfo {
        pid: 0,
        comm: String::new(),
        exe: Some(exe),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: String::new(),
        cmdline,
    }
}

/// A flow that is no evidence of anything: no transport, unspecified addresses.
fn neutral_flow() -> FlowId {
    let nowhere = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    FlowId {
        iface: Arc::from(""),
        proto: Protocol(0),
        local_ip: nowhere,
        local_port: 0,
        remote_ip: nowhere,
        remote_port: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_directories_are_the_verdicts() {
        for (path, dir) in [
            ("/tmp/x", Some("/tmp")),
            ("/var/tmp/.a/b", Some("/var/tmp")),
            ("/dev/shm/x", Some("/dev/shm")),
            ("/tmp", Some("/tmp")),
            ("/tmpfoo/x", None),
            ("/usr/bin/x", None),
        ] {
            assert_eq!(temp_dir(Path::new(path)), dir.map(PathBuf::from), "{path}");
        }
    }

    #[test]
    fn interpreters_are_the_verdicts() {
        for name in ["sh", "bash", "dash", "python3", "python3.11", "perl"] {
            assert!(is_interpreter(name), "{name}");
        }
        for name in ["wget", "shred", "tee", "", "/bin/sh"] {
            assert!(!is_interpreter(name), "{name}");
        }
    }

    #[test]
    fn process_signs_come_without_flow_signs() {
        let mut miner = probe(PathBuf::from("/tmp/kworker"), "/tmp/kworker".into());
        miner.comm = "kworker/0:1".into();
        miner.exe_deleted = true;
        let reasons = process_reasons(&Rules::default(), &miner, &Persistence::new(), Some(0));
        assert!(matches!(
            &reasons[..],
            [
                Reason::ExeDeleted { .. },
                Reason::ExeInTempDir { .. },
                Reason::KernelThreadName { .. }
            ]
        ));
        let nginx = probe("/usr/sbin/nginx".into(), "nginx: worker process".into());
        assert!(process_reasons(&Rules::default(), &nginx, &Persistence::new(), None).is_empty());
    }
}
