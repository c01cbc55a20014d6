//! The interval's top talkers: the `--top N` remote hosts and processes that moved the
//! most bytes, with their verdicts and countries. [`TopTalkers`] sums the moving flows
//! per remote and per process (one hash insert per flow, buffers kept between
//! intervals) and selects the N largest without sorting the rest; `LogSink` writes the
//! result as a `top` record ([`Top::record`]).

use std::{cmp::Reverse, net::IpAddr, sync::Arc};

use rustc_hash::FxHashMap;

use super::schema::{ProcessFields, RemotePlace, TopProcess, TopRecord, TopRemote};
use crate::{
    datapath::FlowDelta,
    enrich::{EnrichedSnapshot, Facts, geo::Location, sockets::ProcessInfo, verdict::Verdict},
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
}

impl TopTalkers {
    /// The `n` largest of each (`--top`).
    pub fn new(n: usize) -> Self {
        Self {
            n,
            remotes: FxHashMap::default(),
            processes: FxHashMap::default(),
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
                })
                .tally
                .add(flow, facts);
            if let crate::enrich::sockets::Owner::Process(info) = &facts.owner {
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
        Top {
            interval_s: snapshot.interval.as_secs_f64(),
            flows: snapshot.flows.len(),
            remotes: largest(self.remotes.drain().map(|(_, r)| r), self.n, |r| {
                (r.tally.bytes(), Reverse(r.ip))
            }),
            processes: largest(self.processes.drain().map(|(_, p)| p), self.n, |p| {
                (p.tally.bytes(), Reverse(p.info.pid))
            }),
        }
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
        sinks::fixtures::miner,
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
    fn top_zero_keeps_nothing() {
        let flows = vec![(
            flow("203.0.113.1", 1, 10),
            facts(Owner::Process(miner()), Verdict::Business),
        )];
        let top = TopTalkers::new(0).of(&interval(flows));
        assert!(top.remotes.is_empty() && top.processes.is_empty());
    }
}
