//! Running processes (live system only): what the verdict rules hold against each
//! (executable deleted or in a temporary directory, a kernel thread's name, launched
//! from a flagged persistence point, huge pages without being a known user), and the
//! miner's profile: busy for a long time, no terminal, a program from outside the
//! system's directories. What each process is, the shared `/proc` reader says
//! ([`crate::proc`]); its signs are judged here and in `signs`. A process the allow-list
//! names (`allow`: by exe, memfd name or systemd unit) has its findings reported as
//! allowed.

use std::{fs, path::Path};

use procfs::process::Process;

use crate::{
    enrich::verdict::{self, Persistence, Reason, Rules},
    proc::{self, ProcessInfo, UserNames},
    units,
};

use super::{
    advice,
    allow::{self, AllowEntry},
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
    /// The systemd unit whose cgroup holds it (`containerd.service`), if any.
    pub unit: Option<String>,
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
            unit: systemd_unit(&process),
            reasons,
        });
    }
    running
}

/// The systemd unit holding `process`, from its cgroup in the unified hierarchy
/// (cgroup v2) or in systemd's own (v1).
fn systemd_unit(process: &Process) -> Option<String> {
    process
        .cgroups()
        .ok()?
        .into_iter()
        .filter(|group| {
            group.hierarchy == 0 || group.controllers.iter().any(|c| c == "name=systemd")
        })
        .find_map(|group| allow::unit_of_cgroup(&group.pathname).map(str::to_owned))
}

/// A finding per reason held against a process, and per busy unknown program; those
/// about a process that an entry of `allowed` names are allowed.
pub fn check(running: &[Running], allowed: &[AllowEntry], out: &mut Findings) {
    for process in running {
        let entry = allow::allowing(
            allowed,
            process.info.exe.as_deref(),
            process.unit.as_deref(),
        );
        let mut add = |finding: Finding| {
            out.add(finding.about(&process.info).allowed_by(entry));
        };
        for reason in &process.reasons {
            if let Some(finding) = reason_finding(process, reason) {
                add(finding);
            }
        }
        if is_busy_unknown(process) {
            add(Finding::new(
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
            ));
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
    use crate::audit::{EXIT_CLEAN, EXIT_FOUND, Report, fixture, render, to_json};

    fn running(comm: &str, exe: &str, reasons: Vec<Reason>) -> Running {
        Running {
            info: ProcessInfo {
                pid: 4242,
                comm: comm.into(),
                exe: Some(exe.into()),
                exe_deleted: false,
                cgroup: Default::default(),
                uid: 0,
                user: "root".into(),
                cmdline: format!("{exe} -o pool:3333"),
            },
            tty: false,
            age: 3600.0,
            cpu_share: 3.9,
            hugetlb_kb: None,
            unit: None,
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
        check(&[miner], &[], &mut out);
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

    /// A fake /proc with a program run from a memfd in `agent.service` (cgroup v2) and
    /// a plain one in `legacy.service` (systemd's cgroup v1 hierarchy).
    fn fake_proc() -> tempfile::TempDir {
        let proc = tempfile::tempdir().unwrap();
        fs::write(proc.path().join("uptime"), "100000.00 1.00\n").unwrap();
        fixture::process(
            proc.path(),
            4242,
            "agent",
            "/memfd:agent (deleted)",
            &["agent", "--serve"],
            "0::/system.slice/agent.service\n",
        );
        fixture::process(
            proc.path(),
            4243,
            "legacy",
            "/usr/sbin/legacy",
            &["legacy"],
            "2:cpu,cpuacct:/\n1:name=systemd:/system.slice/legacy.service\n",
        );
        proc
    }

    /// The audit of the fake /proc's processes, with these allow-list entries.
    fn audited(running: &[Running], entries: &[&str]) -> Report {
        let entries: Vec<AllowEntry> = entries.iter().map(|e| e.parse().unwrap()).collect();
        let mut out = Findings::default();
        check(running, &entries, &mut out);
        Report::new(Path::new("/"), true, out)
    }

    #[test]
    fn a_memfd_process_is_read_with_its_unit() {
        let proc = fake_proc();
        let running = scan(proc.path(), &Rules::default(), &Persistence::new());
        let read: Vec<(u32, Option<&Path>, bool, Option<&str>)> = running
            .iter()
            .map(|p| {
                let exe = p.info.exe.as_deref();
                (p.info.pid, exe, p.info.exe_deleted, p.unit.as_deref())
            })
            .collect();
        assert_eq!(
            read,
            [
                (
                    4242,
                    Some(Path::new("/memfd:agent")),
                    true,
                    Some("agent.service")
                ),
                (
                    4243,
                    Some(Path::new("/usr/sbin/legacy")),
                    false,
                    Some("legacy.service")
                ),
            ]
        );
        assert!(matches!(
            &running[0].reasons[..],
            [Reason::ExeDeleted { .. }]
        ));
    }

    #[test]
    fn an_allow_entry_turns_the_memfd_finding_into_an_allowed_one() {
        let proc = fake_proc();
        let running = scan(proc.path(), &Rules::default(), &Persistence::new());

        // Without an entry: high, as ever.
        let plain = audited(&running, &[]);
        let found: Vec<(&str, Severity, Option<&str>)> = plain
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity, f.allowed.as_deref()))
            .collect();
        assert_eq!(found, [("process-exe-deleted", Severity::High, None)]);
        assert_eq!(plain.exit_status(), EXIT_FOUND);

        // By its memfd name, its unit or its exe: allowed, naming the entry, and the
        // exit status of a clean host.
        for (entry, named) in [
            ("memfd:agent", "memfd:agent"),
            ("memfd:ag*", "memfd:ag*"),
            ("unit:agent", "unit:agent.service"),
            ("exe:/memfd:agent", "exe:/memfd:agent"),
        ] {
            let report = audited(&running, &["exe:/usr/bin/other", entry]);
            let finding = &report.findings[0];
            assert_eq!(
                (
                    finding.id.as_str(),
                    finding.severity,
                    finding.allowed.as_deref()
                ),
                ("process-exe-deleted", Severity::High, Some(named)),
                "{entry}"
            );
            assert_eq!(report.exit_status(), EXIT_CLEAN, "{entry}");
            assert_eq!(report.count(Severity::High), 0, "{entry}");

            let text = render(&report, 80);
            assert!(
                text.contains("ALLOWED (1): named by the allow-list, not counted\n\n[high] process-exe-deleted\n"),
                "{text}"
            );
            assert!(
                text.contains(&format!("\n  allowed   by {named}; remove the entry")),
                "{text}"
            );
            assert!(text.contains("0 info, 1 allowed: nothing"), "{text}");
            let json: serde_json::Value = serde_json::from_str(&to_json(&report)).unwrap();
            assert_eq!(json["findings"][0]["allowed_by"], named, "{json}");
            assert_eq!(json["findings"][0]["severity"], "high", "{json}");
            assert_eq!(json["summary"]["allowed"], 1, "{json}");
            assert_eq!(json["summary"]["high"], 0, "{json}");
            assert_eq!(json["summary"]["exit_status"], 0, "{json}");
        }

        // Entries that name another process change nothing.
        for entry in [
            "memfd:agent2",
            "memfd:other*",
            "unit:agent.scope",
            "exe:/usr/sbin/legacy",
        ] {
            let report = audited(&running, &[entry]);
            assert_eq!(report.findings, plain.findings, "{entry}");
            assert_eq!(report.exit_status(), EXIT_FOUND, "{entry}");
            assert_eq!(report.summary(), plain.summary(), "{entry}");
        }
    }
}
