//! Huge pages: memory reserved in large pages, which miners ask for to hash faster (the
//! runbook's fourth check, `sysctl -a | grep nr_hugepages`). Reserved pages are read
//! from `/proc/sys/vm/nr_hugepages` and `/sys/kernel/mm/hugepages/*/nr_hugepages`, the
//! setting that reserves them at boot from `/etc/sysctl.conf` and `/etc/sysctl.d/`, and
//! on the live system which processes map them.

use crate::enrich::verdict::Reason;

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    processes::Running,
    root::Root,
};

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const SIZES_DIR: &str = "/sys/kernel/mm/hugepages";
const SYSCTL_CONF: &str = "/etc/sysctl.conf";
const SYSCTL_DIR: &str = "/etc/sysctl.d";

/// `running`: the live system's processes, or `None` on a disk.
pub fn check(root: &Root, running: Option<&[Running]>, out: &mut Findings) {
    check_settings(root, out);
    let mut sources: Vec<String> = Vec::new();
    let mut total = read_count(root, NR_HUGEPAGES, out);
    if total > 0 {
        sources.push(format!("{NR_HUGEPAGES}: {total}"));
    }
    let mut by_size = 0;
    for dir in root.dirs_in(SIZES_DIR, out) {
        let file = format!("{dir}/nr_hugepages");
        let count = read_count(root, &file, out);
        if count > 0 {
            by_size += count;
            sources.push(format!("{file}: {count}"));
        }
    }
    total = total.max(by_size);
    if total == 0 {
        return;
    }
    let mut evidence = sources.join("; ");
    let Some(running) = running else {
        out.add(Finding::new(
            "hugepages-reserved",
            Severity::Medium,
            format!("{total} huge pages are reserved (a miner sign unless your service uses them)"),
            evidence,
            advice::HUGE_PAGES,
        ));
        return;
    };
    let users: Vec<&Running> = running
        .iter()
        .filter(|process| process.hugetlb_kb.is_some_and(|kb| kb > 0))
        .collect();
    if !users.is_empty() {
        let named: Vec<String> = users
            .iter()
            .map(|p| {
                let kb = p.hugetlb_kb.unwrap_or_default();
                format!("{} (pid {}, {kb} kB)", p.info.comm, p.info.pid)
            })
            .collect();
        evidence.push_str(&format!("; mapped by {}", named.join(", ")));
    }
    let unknown: Vec<&str> = users
        .iter()
        .filter(|p| {
            p.reasons
                .iter()
                .any(|r| matches!(r, Reason::HugePages { .. }))
        })
        .map(|p| p.info.comm.as_str())
        .collect();
    let finding = if users.is_empty() {
        Finding::new(
            "hugepages-reserved",
            Severity::Medium,
            format!("{total} huge pages are reserved and no process maps them now"),
            evidence,
            advice::HUGE_PAGES,
        )
    } else if !unknown.is_empty() {
        Finding::new(
            "hugepages-reserved",
            Severity::Medium,
            format!(
                "{total} huge pages are reserved, mapped by programs not known to use them: {}",
                unknown.join(", ")
            ),
            evidence,
            advice::HUGE_PAGES,
        )
    } else {
        Finding::new(
            "hugepages-known-user",
            Severity::Low,
            format!("{total} huge pages are reserved, for known users only"),
            evidence,
            advice::HUGE_PAGES_KNOWN,
        )
    };
    out.add(finding);
}

/// `vm.nr_hugepages = N` (N > 0) in the sysctl files that the host applies at boot.
fn check_settings(root: &Root, out: &mut Findings) {
    let files = std::iter::once(SYSCTL_CONF.to_owned()).chain(
        root.files_in(SYSCTL_DIR, out)
            .into_iter()
            .filter(|file| file.ends_with(".conf")),
    );
    for file in files.collect::<Vec<_>>() {
        let Some(text) = root.read(&file, out) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim().trim_start_matches('-').replace('/', ".");
            let count: u64 = value.trim().parse().unwrap_or(0);
            if key == "vm.nr_hugepages" && count > 0 {
                out.add(Finding::new(
                    "hugepages-sysctl",
                    Severity::Medium,
                    format!("{count} huge pages are reserved at every boot"),
                    format!("{file}:{}: {}", index + 1, line.trim()),
                    advice::HUGE_PAGES,
                ));
            }
        }
    }
}

/// The number in a one-number file; 0 if missing or unreadable.
fn read_count(root: &Root, file: &str, out: &mut Findings) -> u64 {
    root.read(file, out)
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use crate::proc::ProcessInfo;

    use super::*;
    use crate::audit::fixture;

    fn tree(nr: &str) -> (tempfile::TempDir, Root) {
        fixture::tree(&[
            ("/proc/sys/vm/nr_hugepages", nr),
            ("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", nr),
            (
                "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
                "0\n",
            ),
            (
                "/etc/sysctl.conf",
                "# vm.nr_hugepages = 64\nvm.swappiness=10\n",
            ),
            ("/etc/sysctl.d/99-x.conf", "vm.nr_hugepages = 128\n"),
        ])
    }

    fn mapper(comm: &str, reasons: Vec<Reason>) -> Running {
        Running {
            info: ProcessInfo {
                pid: 7,
                comm: comm.into(),
                exe: None,
                exe_deleted: false,
                cgroup: Default::default(),
                uid: 0,
                user: "root".into(),
                cmdline: String::new(),
            },
            tty: false,
            age: 1.0,
            cpu_share: 0.0,
            hugetlb_kb: Some(4096),
            unit: None,
            reasons,
        }
    }

    fn found(root: &Root, running: Option<&[Running]>) -> Vec<(String, Severity, String)> {
        let mut out = Findings::default();
        check(root, running, &mut out);
        out.found
            .into_iter()
            .map(|f| (f.id, f.severity, f.evidence))
            .collect()
    }

    #[test]
    fn reserved_pages_are_medium_with_their_sources() {
        let (_dir, root) = tree("128\n");
        assert_eq!(
            found(&root, None),
            [
                (
                    "hugepages-sysctl".to_owned(),
                    Severity::Medium,
                    "/etc/sysctl.d/99-x.conf:1: vm.nr_hugepages = 128".to_owned()
                ),
                (
                    "hugepages-reserved".to_owned(),
                    Severity::Medium,
                    "/proc/sys/vm/nr_hugepages: 128; \
                     /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages: 128"
                        .to_owned()
                ),
            ]
        );
        let (_dir, root) = tree("0\n");
        assert_eq!(found(&root, None).len(), 1, "only the boot setting");
    }

    #[test]
    fn mapping_processes_are_named_and_known_users_lower_it() {
        let (_dir, root) = tree("128\n");
        let miner = [mapper("xmrig", vec![Reason::HugePages { kb: 4096 }])];
        let findings = found(&root, Some(&miner));
        assert_eq!(findings[1].0, "hugepages-reserved");
        assert!(
            findings[1]
                .2
                .ends_with("; mapped by xmrig (pid 7, 4096 kB)"),
            "{}",
            findings[1].2
        );
        let postgres = [mapper("postgres", vec![])];
        let findings = found(&root, Some(&postgres));
        assert_eq!(
            (findings[1].0.as_str(), findings[1].1),
            ("hugepages-known-user", Severity::Low)
        );
    }
}
