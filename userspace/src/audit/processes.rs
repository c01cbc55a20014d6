//! Running processes (live system only): what the verdict rules hold against each
//! (executable deleted or in a temporary directory, a kernel thread's name, launched
//! from a flagged persistence point, huge pages without being a known user), and the
//! miner's profile: busy for a long time, no terminal, a program from outside the
//! system's directories. What each process is, the shared `/proc` reader says
//! ([`crate::proc`]); its signs are judged here and in `signs`.

use std::{fs, path::Path};

use crate::{
    enrich::verdict::{self, Persistence, Reason, Rules},
    proc::{self, ProcessInfo, UserNames},
    units,
};

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    signs,
};

/// `PF_KTHREAD` in `/proc/PID/stat` flags: a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

/// A process this busy over its whole life (1.0 = one CPU) with no terminal and an
/// unknown program is a finding.
const BUSY_SHARE: f64 = 0.5;
/// ... once it has run this long (seconds), so that a start-up burst does not count.
const BUSY_AFTER: f64 = 60.0;

/// Where the distribution installs programs; a program elsewhere is "unknown".
const SYSTEM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libexec",
    "/lib",
    "/lib64",
    "/usr/games",
    "/snap",
];

/// A user-space process, as the audit sees it.
#[derive(Clone, Debug)]
pub struct Running {
    pub info: ProcessInfo,
    /// Has a controlling terminal.
    pub tty: bool,
    /// Seconds since it started.
    pub age: f64,
    /// CPU time over its life, in CPUs (1.0 = one CPU all the time).
    pub cpu_share: f64,
    /// `HugetlbPages` in kB, if the kernel says.
    pub hugetlb_kb: Option<u64>,
    /// What the verdict rules hold against it.
    pub reasons: Vec<Reason>,
}

/// Every user-space process under `proc_root` (kernel threads and zombies left out),
/// judged by `rules` with what the persistence points start.
pub fn scan(proc_root: &Path, rules: &Rules, persistence: &Persistence) -> Vec<Running> {
    let uptime = fs::read_to_string(proc_root.join("uptime"))
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let ticks = procfs::ticks_per_second() as f64;
    let mut users = UserNames::default();
    let mut running = Vec::new();
    for process in proc::processes(proc_root) {
        let Ok(stat) = process.stat() else {
            continue;
        };
        if stat.flags & PF_KTHREAD != 0 || stat.state == 'Z' {
            continue;
        }
        let Some(info) = proc::describe(&process, &mut users) else {
            continue;
        };
        let hugetlb_kb = verdict::hugetlb_kb(proc_root, info.pid);
        let reasons = signs::process_reasons(rules, &info, persistence, hugetlb_kb);
        let age = (uptime - stat.starttime as f64 / ticks).max(0.0);
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        running.push(Running {
            info,
            tty: stat.tty_nr != 0,
            age,
            cpu_share: if age > 0.0 { cpu / age } else { 0.0 },
            hugetlb_kb,
            reasons,
        });
    }
    running
}

/// A finding per reason held against a process, and per busy unknown program.
pub fn check(running: &[Running], out: &mut Findings) {
    for process in running {
        for reason in &process.reasons {
            if let Some(finding) = reason_finding(process, reason) {
                out.add(finding.about(&process.info));
            }
        }
        if is_busy_unknown(process) {
            out.add(
                Finding::new(
                    "process-busy-unknown",
                    Severity::Medium,
                    format!(
                        "{} has used {:.0}% of a CPU for {} with no terminal, from a program \
                         outside the system's directories",
                        process.info.comm,
                        process.cpu_share * 100.0,
                        units::age(process.age)
                    ),
                    evidence(&process.info),
                    advice::BUSY_PROCESS,
                )
                .about(&process.info),
            );
        }
    }
}

fn reason_finding(process: &Running, reason: &Reason) -> Option<Finding> {
    let comm = &process.info.comm;
    let (id, severity, title, advice) = match reason {
        Reason::ExeDeleted { exe } => (
            "process-exe-deleted",
            Severity::High,
            if exe.to_string_lossy().starts_with("/memfd:") {
                format!("{comm} runs from memory (memfd), with no program file on disk")
            } else {
                format!("{comm} runs a program whose file was deleted")
            },
            advice::KILL_PROCESS,
        ),
        Reason::ExeInTempDir { .. } | Reason::ScriptInTempDir { .. } => (
            "process-temp-exe",
            Severity::High,
            format!("{comm} runs from a temporary directory ({reason})"),
            advice::KILL_PROCESS,
        ),
        Reason::KernelThreadName { .. } => (
            "process-kernel-thread-name",
            Severity::High,
            format!("A user-space program poses as a kernel thread ({reason})"),
            advice::KILL_PROCESS,
        ),
        Reason::Persistence { .. } => (
            "process-from-persistence",
            Severity::High,
            format!("{comm} was started by a flagged entry ({reason})"),
            advice::KILL_PROCESS,
        ),
        Reason::HugePages { .. } => (
            "process-huge-pages",
            Severity::Medium,
            format!("{comm} {reason}"),
            advice::HUGE_PAGES,
        ),
        _ => return None,
    };
    Some(Finding::new(
        id,
        severity,
        title,
        evidence(&process.info),
        advice,
    ))
}

/// High CPU over a long life, no terminal, and a program neither from the system's
/// directories nor a known cloud agent.
fn is_busy_unknown(process: &Running) -> bool {
    let Some(exe) = &process.info.exe else {
        return false;
    };
    let known = SYSTEM_DIRS.iter().any(|dir| exe.starts_with(dir))
        || process
            .reasons
            .iter()
            .any(|reason| matches!(reason, Reason::CloudAgent { .. }));
    !known && !process.tty && process.age >= BUSY_AFTER && process.cpu_share >= BUSY_SHARE
}

/// Characters of a command line shown in evidence.
const SHOWN_CMDLINE: usize = 160;

/// `pid 4242 (xmrig, user root): /tmp/.x/xmrig (deleted), cmdline: ./xmrig -o pool:3333`;
/// a long command line is cut.
pub fn evidence(info: &ProcessInfo) -> String {
    let mut text = format!("pid {} ({}, user {})", info.pid, info.comm, info.user);
    if let Some(exe) = &info.exe {
        text.push_str(&format!(": {}", exe.display()));
        if info.exe_deleted {
            text.push_str(" (deleted)");
        }
    }
    if !info.cmdline.is_empty() {
        let shown: String = info.cmdline.chars().take(SHOWN_CMDLINE).collect();
        let cut = if shown.len() < info.cmdline.len() {
            "..."
        } else {
            ""
        };
        text.push_str(&format!(", cmdline: {shown}{cut}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(comm: &str, exe: &str, reasons: Vec<Reason>) -> Running {
        Running {
            info: ProcessInfo {
                pid: 4242,
                comm: comm.into(),
                exe: Some(exe.into()),
                exe_deleted: false,
                uid: 0,
                user: "root".into(),
                cmdline: format!("{exe} -o pool:3333"),
            },
            tty: false,
            age: 3600.0,
            cpu_share: 3.9,
            hugetlb_kb: None,
            reasons,
        }
    }

    #[test]
    fn each_reason_is_a_finding_about_the_process() {
        let miner = running(
            "kworker/0:1",
            "/tmp/.x/k",
            vec![
                Reason::ExeInTempDir { dir: "/tmp".into() },
                Reason::KernelThreadName {
                    name: "kworker/0:1".into(),
                },
                Reason::HugePages { kb: 2048 },
            ],
        );
        let mut out = Findings::default();
        check(&[miner], &mut out);
        let found: Vec<(&str, Severity)> = out
            .found
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("process-temp-exe", Severity::High),
                ("process-kernel-thread-name", Severity::High),
                ("process-huge-pages", Severity::Medium),
                ("process-busy-unknown", Severity::Medium),
            ]
        );
        let first = &out.found[0];
        assert_eq!(first.process.as_ref().unwrap().pid, 4242);
        assert_eq!(
            first.evidence,
            "pid 4242 (kworker/0:1, user root): /tmp/.x/k, cmdline: /tmp/.x/k -o pool:3333"
        );
        assert!(
            out.found[3].title.contains("390% of a CPU for 60 min"),
            "{}",
            out.found[3].title
        );
    }

    #[test]
    fn busy_programs_are_unknown_only_outside_system_directories() {
        let mut process = running("app", "/opt/app/bin/app", vec![]);
        assert!(is_busy_unknown(&process));
        process.tty = true;
        assert!(
            !is_busy_unknown(&process),
            "a terminal: someone is watching it"
        );
        process.tty = false;
        process.age = 30.0;
        assert!(!is_busy_unknown(&process), "just started");
        process.age = 3600.0;
        process.cpu_share = 0.1;
        assert!(!is_busy_unknown(&process), "idle");
        let system = running("gzip", "/usr/bin/gzip", vec![]);
        assert!(!is_busy_unknown(&system));
        let agent = running(
            "YDService",
            "/usr/local/qcloud/YunJing/YDEyes/YDService",
            vec![Reason::CloudAgent {
                program: "YDService".into(),
                provider: "Tencent Cloud".into(),
            }],
        );
        assert!(!is_busy_unknown(&agent));
    }

    #[test]
    fn this_test_is_seen_running() {
        let running = scan(Path::new("/proc"), &Rules::default(), &Persistence::new());
        let me = running
            .iter()
            .find(|p| p.info.pid == std::process::id())
            .expect("this process");
        assert_eq!(me.info.exe, std::env::current_exe().ok());
        assert!(me.age >= 0.0);
        assert_eq!(me.hugetlb_kb, Some(0));
        // Kernel threads are left out.
        assert!(running.iter().all(|p| p.info.pid != 2));
    }
}
