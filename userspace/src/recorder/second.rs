//! One recorded second: the value the ring holds and a recording's lines carry. Per
//! interface the exact totals (as the `totals` record has them); the top remote hosts by
//! bytes, each with its traffic split per owner (process, or what owns it instead); the
//! top processes. Every list and text has a cap, so a second's size does not follow the
//! flow count ([`SECOND_MAX_BYTES`]).
//!
//! Built from the interval's [`Top`] (`sinks::top::TopTalkers` selects the remotes and
//! processes); [`Second::interval`] turns it back into an enriched interval for the
//! console, so `replay` draws it with `top`'s own view model and screens.

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::{
    datapath::{DirectionTotals, FlowDelta, FlowId, InterfaceTotals, Protocol, Snapshot},
    enrich::{
        EnrichedSnapshot, Facts,
        geo::{CountryCode, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Reason, Verdict},
    },
    sinks::{schema, top::Top},
};

/// Remote hosts kept per second (the most bytes first).
pub const TOP_REMOTES: usize = 30;
/// Processes kept per second (the most bytes first), besides those the remotes name.
pub const TOP_PROCESSES: usize = 30;
/// Owners kept per remote host: the worst verdict first, then the most bytes.
pub const PARTS_PER_REMOTE: usize = 4;
/// Reasons kept per part.
pub const REASONS_PER_PART: usize = 3;
/// Characters kept of a text from outside (exe, command line, user, reason).
pub const TEXT_MAX: usize = 160;
/// Interfaces a second can name (the loader's limit is far higher; a second with more
/// names only these).
pub const INTERFACES_MAX: usize = 64;
/// The most bytes one second takes as a JSON line: every list full, every text at its
/// cap (test `a_full_second_fits_its_bound`); the ring's bound is this times its seconds.
pub const SECOND_MAX_BYTES: usize = 160 * 1024;

/// One second (one interval) as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// RFC 3339, for people reading the file with `jq`.
    pub ts: String,
    /// The end of the interval, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub interval_s: f64,
    /// Flows that moved in the interval.
    pub flows: usize,
    pub interfaces: Vec<IfaceSecond>,
    pub remotes: Vec<RemoteSecond>,
    pub processes: Vec<ProcessSecond>,
}

/// One interface's exact counts in the second, as the `totals` record has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceSecond {
    pub iface: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_unattributed_packets: u64,
    pub rx_unattributed_bytes: u64,
    pub tx_unattributed_packets: u64,
    pub tx_unattributed_bytes: u64,
}

/// A remote host of the second, with its exact traffic and who carried it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteSecond {
    pub ip: IpAddr,
    /// "NL", "--" (local range), "??" (unknown).
    pub place: String,
    pub foreign: bool,
    pub flows: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The worst verdict of its flows.
    #[serde(with = "verdict_label")]
    pub verdict: Verdict,
    /// Its traffic per owner, at most [`PARTS_PER_REMOTE`].
    pub parts: Vec<Part>,
    /// What the parts left out (more owners than kept), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others: Option<Others>,
}

/// A remote's traffic with one owner: a process (`pid`) or, with none, what owns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The process, listed in the second's `processes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Without a process: `no_local_socket`, `unresolved` or `resolving`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The part's largest flow: its interface, protocol and ports.
    pub iface: String,
    pub proto: u8,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_port: u16,
    pub flows: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    #[serde(with = "verdict_label")]
    pub verdict: Verdict,
    /// The evidence of its flows, each sentence once, at most [`REASONS_PER_PART`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// The owners of a remote beyond the parts kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Others {
    pub owners: usize,
    pub flows: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// A process of the second: a top talker (`top` holds its traffic), or one a part names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessSecond {
    pub pid: u32,
    pub comm: String,
    pub user: String,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default)]
    pub exe_deleted: bool,
    pub cmdline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<Traffic>,
}

/// A top process's traffic in the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub flows: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    #[serde(with = "verdict_label")]
    pub verdict: Verdict,
}

/// The owner of a part while the second is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum OwnerKey {
    Pid(u32),
    Kind(&'static str),
}

const NO_LOCAL_SOCKET: &str = "no_local_socket";
const UNRESOLVED: &str = "unresolved";
const RESOLVING: &str = "resolving";
const FORWARDED: &str = "forwarded";
const HIDDEN: &str = "hidden";

impl Second {
    /// The second of `interval`, whose top talkers `top` holds (at least the
    /// [`TOP_REMOTES`] and [`TOP_PROCESSES`] largest). One pass over the flows splits
    /// the kept remotes' traffic per owner; the rest of the flows cost a hash miss each.
    pub fn of(interval: &EnrichedSnapshot, top: &Top) -> Self {
        let snapshot = interval.snapshot();
        let remotes: Vec<_> = top.remotes.iter().take(TOP_REMOTES).collect();
        let index: FxHashMap<IpAddr, usize> = remotes
            .iter()
            .enumerate()
            .map(|(i, remote)| (remote.ip, i))
            .collect();
        let mut parts: Vec<FxHashMap<OwnerKey, Building>> =
            vec![FxHashMap::default(); remotes.len()];
        let mut named: FxHashMap<u32, Arc<ProcessInfo>> = FxHashMap::default();
        for (flow, facts) in interval.flows() {
            let Some(&at) = index.get(&flow.id.remote_ip) else {
                continue;
            };
            let key = match &facts.owner {
                Owner::Process(info) => OwnerKey::Pid(info.pid),
                Owner::NoLocalSocket => OwnerKey::Kind(NO_LOCAL_SOCKET),
                Owner::Unresolved => OwnerKey::Kind(UNRESOLVED),
                Owner::Resolving => OwnerKey::Kind(RESOLVING),
                Owner::Forwarded => OwnerKey::Kind(FORWARDED),
                Owner::Hidden => OwnerKey::Kind(HIDDEN),
            };
            parts[at]
                .entry(key)
                .or_insert_with(|| Building::new(flow, facts))
                .add(flow, facts);
        }
        let remotes = remotes
            .iter()
            .zip(parts)
            .map(|(remote, parts)| {
                let mut parts: Vec<(OwnerKey, Building)> = parts.into_iter().collect();
                // The culprit first: the worst verdict, then the most bytes.
                parts.sort_by(|a, b| {
                    (b.1.part.verdict, b.1.bytes(), &b.1.largest.1).cmp(&(
                        a.1.part.verdict,
                        a.1.bytes(),
                        &a.1.largest.1,
                    ))
                });
                let others = parts.split_off(parts.len().min(PARTS_PER_REMOTE));
                let others = (!others.is_empty()).then(|| {
                    others.iter().fold(
                        Others {
                            owners: others.len(),
                            ..Others::default()
                        },
                        |sum, (_, b)| Others {
                            flows: sum.flows + b.part.flows,
                            rx_packets: sum.rx_packets + b.part.rx_packets,
                            rx_bytes: sum.rx_bytes + b.part.rx_bytes,
                            tx_packets: sum.tx_packets + b.part.tx_packets,
                            tx_bytes: sum.tx_bytes + b.part.tx_bytes,
                            ..sum
                        },
                    )
                });
                RemoteSecond {
                    ip: remote.ip,
                    place: crate::console::view::place(remote.location),
                    foreign: remote.foreign,
                    flows: remote.tally.flows,
                    rx_bytes: remote.tally.rx_bytes,
                    tx_bytes: remote.tally.tx_bytes,
                    verdict: remote.tally.verdict,
                    parts: parts
                        .into_iter()
                        .map(|(key, building)| {
                            if let (OwnerKey::Pid(pid), Some(info)) = (key, &building.process) {
                                named.insert(pid, info.clone());
                            }
                            building.part
                        })
                        .collect(),
                    others,
                }
            })
            .collect();
        let mut processes: Vec<ProcessSecond> = top
            .processes
            .iter()
            .take(TOP_PROCESSES)
            .map(|process| {
                named.remove(&process.info.pid);
                ProcessSecond {
                    top: Some(Traffic {
                        flows: process.tally.flows,
                        rx_bytes: process.tally.rx_bytes,
                        tx_bytes: process.tally.tx_bytes,
                        verdict: process.tally.verdict,
                    }),
                    ..ProcessSecond::of(&process.info)
                }
            })
            .collect();
        let mut rest: Vec<_> = named.into_values().collect();
        rest.sort_by_key(|info| info.pid);
        processes.extend(rest.iter().map(|info| ProcessSecond::of(info)));
        Second {
            ts: schema::timestamp(snapshot.at),
            at_ms: millis(snapshot.at),
            interval_s: snapshot.interval.as_secs_f64(),
            flows: snapshot.flows.len(),
            interfaces: snapshot
                .interfaces
                .iter()
                .take(INTERFACES_MAX)
                .map(IfaceSecond::of)
                .collect(),
            remotes,
            processes,
        }
    }

    /// When the second ended.
    pub fn at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.at_ms)
    }

    /// The second as an enriched interval: one flow per part, under the part's largest
    /// flow's key, with the part's owner, the remote's place and the part's verdict and
    /// reasons; what the parts left out is counted in the remote's largest part.
    pub fn interval(&self) -> EnrichedSnapshot {
        let processes: FxHashMap<u32, Arc<ProcessInfo>> = self
            .processes
            .iter()
            .map(|p| (p.pid, Arc::new(p.info())))
            .collect();
        let mut flows = Vec::new();
        for remote in &self.remotes {
            let location = location(&remote.place);
            for (index, part) in remote.parts.iter().enumerate() {
                let others = remote
                    .others
                    .filter(|_| index == largest_part(&remote.parts));
                let others = others.unwrap_or_default();
                let owner = match (part.pid, part.owner.as_deref()) {
                    (Some(pid), _) => processes
                        .get(&pid)
                        .map_or(Owner::Unresolved, |info| Owner::Process(info.clone())),
                    (None, Some(NO_LOCAL_SOCKET)) => Owner::NoLocalSocket,
                    (None, Some(RESOLVING)) => Owner::Resolving,
                    (None, Some(FORWARDED)) => Owner::Forwarded,
                    (None, Some(HIDDEN)) => Owner::Hidden,
                    _ => Owner::Unresolved,
                };
                let delta = FlowDelta {
                    id: FlowId {
                        iface: Arc::from(part.iface.as_str()),
                        proto: Protocol(part.proto),
                        local_ip: part.local_ip,
                        local_port: part.local_port,
                        remote_ip: remote.ip,
                        remote_port: part.remote_port,
                    },
                    rx_packets: part.rx_packets + others.rx_packets,
                    rx_bytes: part.rx_bytes + others.rx_bytes,
                    tx_packets: part.tx_packets + others.tx_packets,
                    tx_bytes: part.tx_bytes + others.tx_bytes,
                    tcp_flags: 0,
                };
                let facts = Facts {
                    owner,
                    location,
                    judgement: Judgement {
                        verdict: part.verdict,
                        reasons: part.reasons.iter().cloned().map(Reason::Recorded).collect(),
                        foreign: remote.foreign,
                    },
                };
                flows.push((delta, facts));
            }
        }
        let (deltas, facts): (Vec<_>, Vec<_>) = flows.into_iter().unzip();
        let mut facts = facts.into_iter();
        EnrichedSnapshot::from_fn(
            Snapshot {
                at: self.at(),
                interval: Duration::from_secs_f64(self.interval_s.max(0.001)),
                flows: deltas,
                interfaces: self.interfaces.iter().map(IfaceSecond::totals).collect(),
                overflow: Vec::new(),
            },
            |_| facts.next().expect("one facts per flow"),
        )
    }
}

/// The part that carries what the others left out: the one with the most bytes.
fn largest_part(parts: &[Part]) -> usize {
    parts
        .iter()
        .enumerate()
        .max_by_key(|(index, part)| (part.rx_bytes + part.tx_bytes, std::cmp::Reverse(*index)))
        .map_or(0, |(index, _)| index)
}

fn location(place: &str) -> Location {
    match place {
        "--" => Location::Local,
        code => CountryCode::new(code).map_or(Location::Unknown, Location::Country),
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// At most [`TEXT_MAX`] characters of `text`.
fn capped(text: &str) -> String {
    match text.char_indices().nth(TEXT_MAX) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// A part while its flows are summed.
#[derive(Clone)]
struct Building {
    part: Part,
    process: Option<Arc<ProcessInfo>>,
    /// The largest flow so far (its bytes), whose key names the part.
    largest: (u64, FlowId),
}

impl Building {
    fn new(flow: &FlowDelta, facts: &Facts) -> Self {
        let owner = match &facts.owner {
            Owner::Process(_) => None,
            Owner::NoLocalSocket => Some(NO_LOCAL_SOCKET),
            Owner::Unresolved => Some(UNRESOLVED),
            Owner::Resolving => Some(RESOLVING),
            Owner::Forwarded => Some(FORWARDED),
            Owner::Hidden => Some(HIDDEN),
        };
        let process = match &facts.owner {
            Owner::Process(info) => Some(info.clone()),
            _ => None,
        };
        Self {
            part: Part {
                pid: process.as_ref().map(|p| p.pid),
                owner: owner.map(str::to_owned),
                iface: flow.id.iface.to_string(),
                proto: flow.id.proto.0,
                local_ip: flow.id.local_ip,
                local_port: flow.id.local_port,
                remote_port: flow.id.remote_port,
                flows: 0,
                rx_packets: 0,
                rx_bytes: 0,
                tx_packets: 0,
                tx_bytes: 0,
                verdict: facts.judgement.verdict,
                reasons: Vec::new(),
            },
            process,
            largest: (0, flow.id.clone()),
        }
    }

    fn add(&mut self, flow: &FlowDelta, facts: &Facts) {
        let part = &mut self.part;
        part.flows += 1;
        part.rx_packets += flow.rx_packets;
        part.rx_bytes += flow.rx_bytes;
        part.tx_packets += flow.tx_packets;
        part.tx_bytes += flow.tx_bytes;
        part.verdict = part.verdict.max(facts.judgement.verdict);
        let bytes = flow.rx_bytes + flow.tx_bytes;
        if bytes > self.largest.0 {
            self.largest = (bytes, flow.id.clone());
            part.iface = flow.id.iface.to_string();
            part.proto = flow.id.proto.0;
            part.local_ip = flow.id.local_ip;
            part.local_port = flow.id.local_port;
            part.remote_port = flow.id.remote_port;
        }
        for reason in &facts.judgement.reasons {
            if part.reasons.len() == REASONS_PER_PART {
                break;
            }
            let text = capped(&reason.to_string());
            if !part.reasons.contains(&text) {
                part.reasons.push(text);
            }
        }
    }

    fn bytes(&self) -> u64 {
        self.part.rx_bytes + self.part.tx_bytes
    }
}

impl IfaceSecond {
    fn of(totals: &InterfaceTotals) -> Self {
        Self {
            iface: capped(&totals.iface),
            rx_packets: totals.rx.packets,
            rx_bytes: totals.rx.bytes,
            tx_packets: totals.tx.packets,
            tx_bytes: totals.tx.bytes,
            rx_unattributed_packets: totals.rx.unattributed_packets,
            rx_unattributed_bytes: totals.rx.unattributed_bytes,
            tx_unattributed_packets: totals.tx.unattributed_packets,
            tx_unattributed_bytes: totals.tx.unattributed_bytes,
        }
    }

    fn totals(&self) -> InterfaceTotals {
        let direction =
            |packets, bytes, unattributed_packets, unattributed_bytes| DirectionTotals {
                packets,
                bytes,
                unattributed_packets,
                unattributed_bytes,
                ..DirectionTotals::default()
            };
        InterfaceTotals {
            iface: Arc::from(self.iface.as_str()),
            rx: direction(
                self.rx_packets,
                self.rx_bytes,
                self.rx_unattributed_packets,
                self.rx_unattributed_bytes,
            ),
            tx: direction(
                self.tx_packets,
                self.tx_bytes,
                self.tx_unattributed_packets,
                self.tx_unattributed_bytes,
            ),
        }
    }
}

impl ProcessSecond {
    fn of(info: &ProcessInfo) -> Self {
        Self {
            pid: info.pid,
            comm: capped(&info.comm),
            user: capped(&info.user),
            uid: info.uid,
            exe: info.exe.as_ref().map(|exe| capped(&exe.to_string_lossy())),
            exe_deleted: info.exe_deleted,
            cmdline: capped(&info.cmdline),
            top: None,
        }
    }

    fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            comm: self.comm.clone(),
            exe: self.exe.as_ref().map(PathBuf::from),
            exe_deleted: self.exe_deleted,
            cgroup: Default::default(),
            uid: self.uid,
            user: self.user.clone(),
            cmdline: self.cmdline.clone(),
        }
    }
}

/// A verdict as its label ("business", "cloud-agent", "suspicious"), as the log writes it.
mod verdict_label {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::enrich::verdict::Verdict;

    pub fn serialize<S: Serializer>(verdict: &Verdict, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(verdict.label())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Verdict, D::Error> {
        let label = String::deserialize(deserializer)?;
        [Verdict::Business, Verdict::CloudAgent, Verdict::Suspicious]
            .into_iter()
            .find(|verdict| verdict.label() == label)
            .ok_or_else(|| D::Error::custom(format!("unknown verdict {label:?}")))
    }
}
