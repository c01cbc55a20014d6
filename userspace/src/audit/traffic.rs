//! `--watch`: which processes carry traffic now. The caller meters the host's traffic
//! (the datapath, enriched with owners, countries and verdicts) and hands each interval
//! to [`Watched::add`]; [`Watched::mark`] then puts on every finding about a talking
//! process what it sent and received, with whom and where, and adds a finding for
//! traffic the verdict rules call suspicious that no other finding covers. For a process
//! the allow-list named, only what its traffic does counts (a mining-pool port, a
//! flood), not the process signs that were allowed.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use crate::{
    datapath::{FlowDelta, FlowId},
    enrich::{
        EnrichedSnapshot, Facts,
        sockets::ProcessInfo,
        verdict::{Reason, Verdict},
    },
};

use super::{
    advice,
    finding::{Finding, Severity, Traffic},
    processes,
    report::Report,
};

/// Suspicious flows without a local process listed as findings, at most.
const MAX_UNOWNED: usize = 20;

/// What was seen while watching.
#[derive(Debug, Default)]
pub struct Watched {
    /// By pid.
    processes: HashMap<u32, Seen>,
    /// Suspicious flows that no local process owns, by flow.
    unowned: BTreeMap<FlowId, Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    process: Option<Arc<ProcessInfo>>,
    /// Bytes per remote host.
    hosts: HashMap<IpAddr, u64>,
    countries: BTreeSet<String>,
    bytes: u64,
    /// What the verdict rules hold against the traffic, once each.
    reasons: Vec<String>,
    /// Those of them that are the traffic's own doing, not the process's signs.
    flow_reasons: Vec<String>,
}

impl Seen {
    fn add(&mut self, flow: &FlowDelta, facts: &Facts) {
        let bytes = flow.rx_bytes + flow.tx_bytes;
        self.bytes += bytes;
        *self.hosts.entry(flow.id.remote_ip).or_default() += bytes;
        if let Some(country) = facts.location.country() {
            self.countries.insert(country.as_str().to_owned());
        }
        if facts.judgement.verdict == Verdict::Suspicious {
            for reason in &facts.judgement.reasons {
                let text = reason.to_string();
                if matches!(reason, Reason::NoLocalProcess) || self.reasons.contains(&text) {
                    continue;
                }
                if matches!(
                    reason,
                    Reason::MiningPort { .. }
                        | Reason::MiningPortListener { .. }
                        | Reason::OutboundFlood { .. }
                ) {
                    self.flow_reasons.push(text.clone());
                }
                self.reasons.push(text);
            }
        }
    }

    fn traffic(&self) -> Traffic {
        let mut hosts: Vec<(&IpAddr, &u64)> = self.hosts.iter().collect();
        hosts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        Traffic {
            remote_hosts: hosts
                .iter()
                .take(Traffic::MAX_HOSTS)
                .map(|(ip, _)| **ip)
                .collect(),
            remote_host_count: hosts.len(),
            countries: self.countries.iter().cloned().collect(),
            bytes: self.bytes,
        }
    }
}

impl Watched {
    /// One interval's flows, with their facts.
    pub fn add(&mut self, interval: &EnrichedSnapshot) {
        for (flow, facts) in interval.flows() {
            if flow.rx_bytes + flow.tx_bytes == 0 {
                continue;
            }
            match facts.owner.process() {
                Some(process) => {
                    let seen = self.processes.entry(process.pid).or_default();
                    if seen.process.is_none() {
                        seen.process = Some(Arc::new(process.clone()));
                    }
                    seen.add(flow, facts);
                }
                None if facts.judgement.verdict == Verdict::Suspicious => {
                    self.unowned
                        .entry(flow.id.clone())
                        .or_default()
                        .add(flow, facts);
                }
                None => {}
            }
        }
    }

    /// Marks the findings of `report` whose process talked, adds findings for suspicious
    /// traffic not covered yet, records how long it watched, and sorts the report.
    pub fn mark(self, report: &mut Report, watched: Duration) {
        for finding in &mut report.findings {
            if let Some(seen) = finding
                .process
                .as_ref()
                .and_then(|p| self.processes.get(&p.pid))
            {
                finding.traffic = Some(seen.traffic());
            }
        }
        let mut pids: Vec<&u32> = self.processes.keys().collect();
        pids.sort_unstable();
        for pid in pids {
            let seen = &self.processes[pid];
            let about: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.process.as_ref().is_some_and(|p| p.pid == *pid))
                .collect();
            let covered = about.iter().any(|f| f.counts());
            let reasons = match about.iter().any(|f| !f.counts()) {
                true => &seen.flow_reasons,
                false => &seen.reasons,
            };
            let Some(process) = seen.process.as_deref() else {
                continue;
            };
            if covered || reasons.is_empty() {
                continue;
            }
            let mut finding = Finding::new(
                "traffic-suspicious",
                Severity::High,
                format!(
                    "{}'s traffic looks suspicious: {}",
                    process.comm,
                    reasons.join("; ")
                ),
                processes::evidence(process),
                advice::SUSPICIOUS_TRAFFIC,
            )
            .about(process);
            finding.traffic = Some(seen.traffic());
            report.findings.push(finding);
        }
        for (flow, seen) in self.unowned.iter().take(MAX_UNOWNED) {
            let mut finding = Finding::new(
                "traffic-suspicious",
                Severity::High,
                format!(
                    "Traffic with no local process looks suspicious: {}",
                    seen.reasons.join("; ")
                ),
                format!(
                    "{} {}:{} -> {}:{} on {} (no local process: forwarded, raw or closed)",
                    flow.proto,
                    flow.local_ip,
                    flow.local_port,
                    flow.remote_ip,
                    flow.remote_port,
                    flow.iface
                ),
                advice::SUSPICIOUS_TRAFFIC,
            );
            finding.traffic = Some(seen.traffic());
            report.findings.push(finding);
        }
        report.watched = Some(watched);
        report.sort();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{
        datapath::{Protocol, Snapshot},
        enrich::{
            geo::{CountryCode, Location},
            sockets::Owner,
            verdict::Judgement,
        },
    };

    use super::*;
    use crate::audit::finding::Findings;

    fn flow(remote: &str, bytes: u64) -> FlowDelta {
        let remote: std::net::SocketAddr = remote.parse().unwrap();
        FlowDelta {
            id: FlowId {
                iface: Arc::from("eth0"),
                proto: Protocol(6),
                local_ip: "192.0.2.1".parse().unwrap(),
                local_port: 6379,
                remote_ip: remote.ip(),
                remote_port: remote.port(),
            },
            rx_packets: 1,
            rx_bytes: bytes,
            tx_packets: 1,
            tx_bytes: bytes,
            tcp_flags: 0,
        }
    }

    fn facts(pid: Option<u32>, country: &str, verdict: Verdict, reasons: Vec<Reason>) -> Facts {
        Facts {
            owner: match pid {
                Some(pid) => Owner::Process(Arc::new(ProcessInfo {
                    pid,
                    comm: format!("p{pid}"),
                    exe: Some("/usr/bin/x".into()),
                    exe_deleted: false,
                    cgroup: Default::default(),
                    uid: 0,
                    user: "root".into(),
                    cmdline: String::new(),
                })),
                None => Owner::NoLocalSocket,
            },
            location: Location::Country(CountryCode::new(country).unwrap()),
            judgement: Judgement {
                verdict,
                reasons,
                foreign: false,
            },
        }
    }

    #[test]
    fn talking_processes_are_marked_and_suspicious_traffic_added() {
        let mut found = Findings::default();
        let mut exposed = Finding::new("socket-database-exposed", Severity::High, "t", "e", "a");
        exposed.process = Some(crate::audit::finding::ProcessRef {
            pid: 812,
            comm: "p812".into(),
            exe: None,
        });
        found.add(exposed);
        found.add(Finding::new("sshd-port-22", Severity::Low, "t", "e", "a"));
        let mut report = Report::new(Path::new("/"), true, found);

        let mut watched = Watched::default();
        let flows = [
            flow("203.0.113.5:50000", 100),
            flow("198.51.100.7:50001", 400),
            flow("198.51.100.8:3333", 50),
            flow("198.51.100.9:3333", 70),
            flow("198.51.100.10:443", 0),
        ];
        let pool = Reason::MiningPort { port: 3333 };
        let facts = [
            facts(Some(812), "NL", Verdict::Business, vec![]),
            facts(Some(812), "US", Verdict::Business, vec![]),
            facts(Some(900), "CN", Verdict::Suspicious, vec![pool.clone()]),
            facts(
                None,
                "CN",
                Verdict::Suspicious,
                vec![Reason::NoLocalProcess, pool],
            ),
            facts(Some(901), "DE", Verdict::Business, vec![]),
        ];
        let snapshot = Snapshot {
            at: std::time::UNIX_EPOCH,
            interval: Duration::from_secs(1),
            flows: flows.to_vec(),
            interfaces: Vec::new(),
            overflow: Vec::new(),
        };
        watched.add(&EnrichedSnapshot::from_parts(snapshot, facts.to_vec()));
        watched.mark(&mut report, Duration::from_secs(2));

        let order: Vec<(&str, Option<u64>)> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.traffic.as_ref().map(|t| t.bytes)))
            .collect();
        assert_eq!(
            order,
            [
                ("socket-database-exposed", Some(1000)),
                ("traffic-suspicious", Some(140)),
                ("traffic-suspicious", Some(100)),
                ("sshd-port-22", None),
            ]
        );
        let redis = report.findings[0].traffic.as_ref().unwrap();
        assert_eq!(
            redis.remote_hosts,
            [
                "198.51.100.7".parse::<IpAddr>().unwrap(),
                "203.0.113.5".parse().unwrap()
            ]
        );
        assert_eq!(redis.countries, ["NL", "US"]);
        assert_eq!(report.findings[1].process, None);
        assert!(report.findings[1].evidence.contains("198.51.100.9:3333"));
        assert_eq!(report.findings[2].process.as_ref().unwrap().pid, 900);
        assert!(
            report.findings[2]
                .title
                .ends_with("remote port 3333 is a common mining-pool port"),
            "{}",
            report.findings[2].title
        );
        assert_eq!(report.watched, Some(Duration::from_secs(2)));
    }

    #[test]
    fn an_allowed_process_is_judged_by_its_traffic_alone() {
        let deleted = Reason::ExeDeleted {
            exe: "/memfd:agent".into(),
        };
        let pool = Reason::MiningPort { port: 3333 };
        // pid 700 talks only as its allowed signs say; pid 701 also to a mining pool.
        let mut found = Findings::default();
        for pid in [700, 701] {
            let mut finding = Finding::new("process-exe-deleted", Severity::High, "t", "e", "a");
            finding.process = Some(crate::audit::finding::ProcessRef {
                pid,
                comm: format!("p{pid}"),
                exe: Some("/memfd:agent".into()),
            });
            finding.allowed = Some("memfd:agent".into());
            found.add(finding);
        }
        let mut report = Report::new(Path::new("/"), true, found);
        let snapshot = Snapshot {
            at: std::time::UNIX_EPOCH,
            interval: Duration::from_secs(1),
            flows: vec![flow("203.0.113.5:443", 100), flow("198.51.100.8:3333", 50)],
            interfaces: Vec::new(),
            overflow: Vec::new(),
        };
        let facts = vec![
            facts(Some(700), "NL", Verdict::Suspicious, vec![deleted.clone()]),
            facts(Some(701), "CN", Verdict::Suspicious, vec![deleted, pool]),
        ];
        let mut watched = Watched::default();
        watched.add(&EnrichedSnapshot::from_parts(snapshot, facts));
        watched.mark(&mut report, Duration::from_secs(2));

        let found: Vec<(&str, u32, bool)> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.process.as_ref().unwrap().pid, f.counts()))
            .collect();
        assert_eq!(
            found,
            [
                ("traffic-suspicious", 701, true),
                ("process-exe-deleted", 700, false),
                ("process-exe-deleted", 701, false),
            ]
        );
        let title = &report.findings[0].title;
        assert!(
            title.ends_with(": remote port 3333 is a common mining-pool port"),
            "only the traffic's own reason: {title}"
        );
        // The allowed findings still carry what their process sent.
        assert_eq!(report.findings[1].traffic.as_ref().unwrap().bytes, 200);
    }
}
