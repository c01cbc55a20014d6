//! The interval's top talkers: the `--top N` remote hosts and processes that moved the
//! most bytes, with their verdicts and countries. [`TopTalkers`] sums the moving flows
//! per remote and per process (one hash insert per flow, buffers kept between
//! intervals) and selects the N largest without sorting the rest; `LogSink` writes the
//! result as a `top` record ([`Top::record`]). Each listed remote names the culprit among
//! the processes talking to it: the worst verdict, then the most bytes, as the console
//! does, so a miner behind a heavier business upload is the one named.

use std::{cmp::Reverse, net::IpAddr, sync::Arc};

use rustc_hash::FxHashMap;

use super::schema::{ProcessFields, RemotePlace, TopProcess, TopRecord, TopRemote};
use crate::{
    datapath::FlowDelta,
    enrich::{
        EnrichedSnapshot, Facts,
        geo::Location,
        sockets::{Owner, ProcessInfo},
        verdict::Verdict,
    },
};

/// One remote host's or one process's traffic in an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub flows: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The most severe verdict among its flows.
    pub verdict: Verdict,
}

impl Tally {
    fn new(facts: &Facts) -> Self {
        Self {
            flows: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            verdict: facts.judgement.verdict,
        }
    }

    fn add(&mut self, flow: &FlowDelta, facts: &Facts) {
        self.flows += 1;
        self.rx_bytes += flow.rx_bytes;
        self.tx_bytes += flow.tx_bytes;
        self.verdict = self.verdict.max(facts.judgement.verdict);
    }

    fn bytes(&self) -> u64 {
        self.rx_bytes + self.tx_bytes
    }
}

/// A remote host, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub ip: IpAddr,
    pub location: Location,
    /// Outside the `--home` countries.
    pub foreign: bool,
    pub tally: Tally,
    /// The process it is listed with: of those whose flows go to it, the worst verdict,
    /// then the most bytes (then the lowest pid). Its tally counts its flows to this
    /// remote only.
    pub process: Option<Process>,
    /// How many processes have flows to it.
    pub processes: usize,
}

/// A process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub info: Arc<ProcessInfo>,
    pub tally: Tally,
}

/// One interval's top talkers, most bytes first.
#[derive(Clone, Debug, PartialEq)]
pub struct Top {
    /// The interval's real length, seconds.
    pub interval_s: f64,
    /// Flows that moved in the interval.
    pub flows: usize,
    pub remotes: Vec<Remote>,
    pub processes: Vec<Process>,
}

impl Top {
    /// The `top` record of schema v2.
    pub fn record(&self) -> TopRecord<'_> {
        TopRecord {
            interval_s: self.interval_s,
            flows: self.flows,
            remotes: self
                .remotes
                .iter()
                .map(|remote| TopRemote {
                    remote_ip: remote.ip.to_string(),
                    place: RemotePlace::new(&remote.location, remote.foreign),
                    flows: remote.tally.flows,
                    rx_bytes: remote.tally.rx_bytes,
                    tx_bytes: remote.tally.tx_bytes,
                    verdict: remote.tally.verdict.label(),
                    process: ProcessFields::new(remote.process.as_ref().map(|p| &*p.info)),
                    processes: remote.processes,
                })
                .collect(),
            processes: self
                .processes
                .iter()
                .map(|process| TopProcess {
                    process: ProcessFields::new(Some(&process.info)),
                    flows: process.tally.flows,
                    rx_bytes: process.tally.rx_bytes,
                    tx_bytes: process.tally.tx_bytes,
                    verdict: process.tally.verdict.label(),
                })
                .collect(),
        }
    }
}

/// Sums an interval's flows per remote and per process; the maps keep their room.
pub struct TopTalkers {
    n: usize,
    remotes: FxHashMap<IpAddr, Remote>,
    processes: FxHashMap<u32, Process>,
    /// The listed remotes' places, and their flows per process: for naming the process
    /// each is listed with.
    listed: FxHashMap<IpAddr, usize>,
    pairs: FxHashMap<(IpAddr, u32), Process>,
}

impl TopTalkers {
    /// The `n` largest of each (`--top`).
    pub fn new(n: usize) -> Self {
        Self {
            n,
            remotes: FxHashMap::default(),
            processes: FxHashMap::default(),
            listed: FxHashMap::default(),
            pairs: FxHashMap::default(),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The interval's top `n` remotes and processes.
    pub fn of(&mut self, interval: &EnrichedSnapshot) -> Top {
        for (flow, facts) in interval.flows() {
            self.remotes
                .entry(flow.id.remote_ip)
                .or_insert_with(|| Remote {
                    ip: flow.id.remote_ip,
                    location: facts.location,
                    foreign: facts.judgement.foreign,
                    tally: Tally::new(facts),
                    process: None,
                    processes: 0,
                })
                .tally
                .add(flow, facts);
            if let Owner::Process(info) = &facts.owner {
                self.processes
                    .entry(info.pid)
                    .or_insert_with(|| Process {
                        info: info.clone(),
                        tally: Tally::new(facts),
                    })
                    .tally
                    .add(flow, facts);
            }
        }
        let snapshot = interval.snapshot();
        let mut remotes = largest(self.remotes.drain().map(|(_, r)| r), self.n, |r| {
            (r.tally.bytes(), Reverse(r.ip))
        });
        self.name_processes(interval, &mut remotes);
        Top {
            interval_s: snapshot.interval.as_secs_f64(),
            flows: snapshot.flows.len(),
            remotes,
            processes: largest(self.processes.drain().map(|(_, p)| p), self.n, |p| {
                (p.tally.bytes(), Reverse(p.info.pid))
            }),
        }
    }

    /// Names the process each of the listed `remotes` goes with: a second pass over the
    /// interval that sums, per process, only the flows to those few remotes.
    fn name_processes(&mut self, interval: &EnrichedSnapshot, remotes: &mut [Remote]) {
        self.listed
            .extend(remotes.iter().enumerate().map(|(index, r)| (r.ip, index)));
        for (flow, facts) in interval.flows() {
            let ip = flow.id.remote_ip;
            let Owner::Process(info) = &facts.owner else {
                continue;
            };
            if self.listed.contains_key(&ip) {
                self.pairs
                    .entry((ip, info.pid))
                    .or_insert_with(|| Process {
                        info: info.clone(),
                        tally: Tally::new(facts),
                    })
                    .tally
                    .add(flow, facts);
            }
        }
        let culprit = |p: &Process| (p.tally.verdict, p.tally.bytes(), Reverse(p.info.pid));
        for ((ip, _), process) in self.pairs.drain() {
            let remote = &mut remotes[self.listed[&ip]];
            remote.processes += 1;
            if remote
                .process
                .as_ref()
                .is_none_or(|named| culprit(&process) > culprit(named))
            {
                remote.process = Some(process);
            }
        }
        self.listed.clear();
    }
}

/// The `n` items with the greatest keys, greatest first: a selection, then a sort of
/// the `n` only. Keys are unique, so the order is fixed.
fn largest<T, K: Ord>(items: impl Iterator<Item = T>, n: usize, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    if n == 0 {
        return Vec::new();
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, |a, b| key(b).cmp(&key(a)));
        items.truncate(n);
    }
    items.sort_unstable_by_key(|item| Reverse(key(item)));
    items
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::{
        datapath::{FlowId, Protocol, Snapshot},
        enrich::{
            geo::CountryCode,
            sockets::Owner,
            verdict::{Judgement, Verdict},
        },
        sinks::fixtures::{iperf3, miner},
    };

    fn flow(remote: &str, local_port: u16, bytes: u64) -> FlowDelta {
        FlowDelta {
            id: FlowId {
                iface: Arc::from("eth0"),
                proto: Protocol(6),
                local_ip: "10.0.0.1".parse().unwrap(),
                local_port,
                remote_ip: remote.parse().unwrap(),
                remote_port: 443,
            },
            rx_packets: 1,
            rx_bytes: bytes,
            tx_packets: 1,
            tx_bytes: 1,
            tcp_flags: 0x10,
        }
    }

    fn facts(owner: Owner, verdict: Verdict) -> Facts {
        Facts {
            owner,
            location: Location::Country(CountryCode::new("NL").unwrap()),
            judgement: Judgement {
                verdict,
                reasons: vec![],
                foreign: true,
            },
        }
    }

    fn interval(flows: Vec<(FlowDelta, Facts)>) -> EnrichedSnapshot {
        let (deltas, mut facts): (Vec<_>, Vec<_>) = flows.into_iter().unzip();
        facts.reverse();
        EnrichedSnapshot::from_fn(
            Snapshot {
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                interval: Duration::from_secs(1),
                flows: deltas,
                interfaces: vec![],
                overflow: Vec::new(),
            },
            |_| facts.pop().unwrap(),
        )
    }

    #[test]
    fn remotes_and_processes_are_summed_and_the_largest_kept_in_order() {
        let business = || facts(Owner::NoLocalSocket, Verdict::Business);
        let mut flows: Vec<(FlowDelta, Facts)> = (0..20u16)
            .map(|n| {
                (
                    flow(&format!("203.0.113.{n}"), 1000 + n, u64::from(n)),
                    business(),
                )
            })
            .collect();
        // Two flows of the miner to one remote: summed past every other remote.
        let mine = facts(Owner::Process(miner()), Verdict::Suspicious);
        flows.push((flow("198.51.100.7", 2000, 30), mine.clone()));
        flows.push((flow("198.51.100.7", 2001, 30), business()));
        flows.push((
            flow("198.51.100.8", 2002, 5),
            facts(Owner::Process(miner()), Verdict::Business),
        ));
        let mut talkers = TopTalkers::new(3);
        let top = talkers.of(&interval(flows));
        assert_eq!(top.flows, 23);
        let remotes: Vec<(String, u64, u64, Verdict)> = top
            .remotes
            .iter()
            .map(|r| {
                (
                    r.ip.to_string(),
                    r.tally.flows,
                    r.tally.bytes(),
                    r.tally.verdict,
                )
            })
            .collect();
        assert_eq!(
            remotes,
            [
                ("198.51.100.7".into(), 2, 62, Verdict::Suspicious),
                ("203.0.113.19".into(), 1, 20, Verdict::Business),
                ("203.0.113.18".into(), 1, 19, Verdict::Business),
            ]
        );
        assert_eq!(
            top.processes.len(),
            1,
            "flows without a process are in none"
        );
        assert_eq!(top.processes[0].info.pid, 4242);
        assert_eq!(top.processes[0].tally.flows, 2);
        assert_eq!(top.processes[0].tally.bytes(), 31 + 6);
        assert_eq!(top.processes[0].tally.verdict, Verdict::Suspicious);

        let json = serde_json::to_value(top.record()).unwrap();
        assert_eq!(json["remotes"][0]["country"], "NL");
        assert_eq!(json["remotes"][0]["foreign"], true);
        assert_eq!(json["remotes"][0]["verdict"], "suspicious");
        assert_eq!(json["processes"][0]["comm"], "xmrig");
        assert_eq!(json["processes"][0]["rx_bytes"], 35);

        // The next interval starts from nothing.
        let empty = talkers.of(&interval(vec![]));
        assert!(empty.remotes.is_empty() && empty.processes.is_empty());
    }

    #[test]
    fn a_remote_is_listed_with_its_worst_verdict_process_then_the_most_bytes() {
        let process = |info: Arc<ProcessInfo>, verdict| facts(Owner::Process(info), verdict);
        let flows = vec![
            // The runbook's host: iperf3 moves the most, the miner is the culprit.
            (
                flow("198.51.100.20", 1000, 1_500_000),
                process(iperf3(3100), Verdict::Business),
            ),
            (
                flow("198.51.100.20", 1001, 400_000),
                process(miner(), Verdict::Suspicious),
            ),
            (
                flow("198.51.100.20", 1002, 2_000_000),
                facts(Owner::NoLocalSocket, Verdict::Business),
            ),
            // Equal verdicts: the process with more bytes, over two flows.
            (
                flow("203.0.113.5", 1003, 300),
                process(iperf3(3101), Verdict::Business),
            ),
            (
                flow("203.0.113.5", 1004, 200),
                process(iperf3(3102), Verdict::Business),
            ),
            (
                flow("203.0.113.5", 1005, 200),
                process(iperf3(3102), Verdict::Business),
            ),
            (
                flow("203.0.113.6", 1006, 100),
                facts(Owner::NoLocalSocket, Verdict::Business),
            ),
        ];
        let mut talkers = TopTalkers::new(3);
        let top = talkers.of(&interval(flows));
        let named: Vec<(String, Option<u32>, usize)> = top
            .remotes
            .iter()
            .map(|r| {
                let pid = r.process.as_ref().map(|p| p.info.pid);
                (r.ip.to_string(), pid, r.processes)
            })
            .collect();
        assert_eq!(
            named,
            [
                ("198.51.100.20".into(), Some(4242), 2),
                ("203.0.113.5".into(), Some(3102), 2),
                ("203.0.113.6".into(), None, 0),
            ]
        );
        let miner_to_remote = top.remotes[0].process.as_ref().unwrap();
        assert_eq!(miner_to_remote.tally.bytes(), 400_001);
        assert_eq!(miner_to_remote.tally.verdict, Verdict::Suspicious);

        let json = serde_json::to_value(top.record()).unwrap();
        let remote = &json["remotes"][0];
        assert_eq!(remote["pid"], 4242, "{remote}");
        assert_eq!(remote["comm"], "xmrig");
        assert_eq!(remote["exe"], "/tmp/.x/xmrig");
        assert_eq!(remote["user"], "root");
        assert_eq!(remote["processes"], 2);
        assert_eq!(remote["verdict"], "suspicious");
        let quiet = &json["remotes"][2];
        assert!(
            quiet.get("pid").is_none() && quiet.get("comm").is_none(),
            "{quiet}"
        );
        assert_eq!(quiet["processes"], 0);

        // The next interval starts from nothing.
        let next = vec![(
            flow("198.51.100.20", 1000, 10),
            process(iperf3(3100), Verdict::Business),
        )];
        let top = talkers.of(&interval(next));
        assert_eq!(top.remotes[0].processes, 1);
        assert_eq!(top.remotes[0].process.as_ref().unwrap().info.pid, 3100);
    }

    #[test]
    fn top_zero_keeps_nothing() {
        let flows = vec![(
            flow("203.0.113.1", 1, 10),
            facts(Owner::Process(miner()), Verdict::Business),
        )];
        let top = TopTalkers::new(0).of(&interval(flows));
        assert!(top.remotes.is_empty() && top.processes.is_empty());
    }
}
