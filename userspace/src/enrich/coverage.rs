//! How much of an interval's traffic the process column can be believed for: the bytes
//! (rx + tx) of the flows attributed to a process, and the rest by the reason it has
//! none. `log`'s `totals` record carries it per interface, the console's status line over
//! its last seconds ("processes 97% of bytes (forwarded 2%, socket gone 1%)").
//!
//! Only bytes in flows are counted: traffic in no flow at all (not IP, table full) is
//! `flow::unattributed`'s to tell.

use std::{collections::VecDeque, fmt, ops::AddAssign, sync::Arc};

use super::{EnrichedSnapshot, sockets::Owner};
use crate::datapath::FlowDelta;

/// Why a flow's bytes have no process, as `totals` names it (`no_process_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// Neither end is this host's: routed, bridged or NATed through it, no mapping found.
    Forwarded,
    /// Addressed to this host, but no socket carries it: the kernel answered (ICMP, a
    /// reset or port unreachable) or a raw socket took it.
    KernelAnswered,
    /// A socket carried it, but it (or its process) was gone before it was read.
    SocketGone,
    /// Its socket is in a network namespace this process may not read.
    NamespaceHidden,
    /// Its owner was still being looked up.
    Resolving,
}

impl Gap {
    pub const ALL: [Gap; 5] = [
        Gap::Forwarded,
        Gap::KernelAnswered,
        Gap::SocketGone,
        Gap::NamespaceHidden,
        Gap::Resolving,
    ];

    /// The gap an owner stands for; `None` for a process.
    pub fn of(owner: &Owner) -> Option<Gap> {
        match owner {
            Owner::Process(_) => None,
            Owner::Forwarded => Some(Gap::Forwarded),
            Owner::NoLocalSocket => Some(Gap::KernelAnswered),
            Owner::Unresolved => Some(Gap::SocketGone),
            Owner::Hidden => Some(Gap::NamespaceHidden),
            Owner::Resolving => Some(Gap::Resolving),
        }
    }

    /// Its key in `totals`' `no_process_bytes`.
    pub fn name(self) -> &'static str {
        match self {
            Gap::Forwarded => "forwarded",
            Gap::KernelAnswered => "kernel_answered",
            Gap::SocketGone => "socket_gone",
            Gap::NamespaceHidden => "namespace_hidden",
            Gap::Resolving => "resolving",
        }
    }

    /// Its name on the console.
    pub fn words(self) -> &'static str {
        match self {
            Gap::Forwarded => "forwarded",
            Gap::KernelAnswered => "kernel-answered",
            Gap::SocketGone => "socket gone",
            Gap::NamespaceHidden => "namespace hidden",
            Gap::Resolving => "resolving",
        }
    }
}

/// Bytes of flows with a process, and without one by [`Gap`]: of one interface in one
/// interval, or summed (`+=`) over interfaces, intervals or a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub process_bytes: u64,
    /// Bytes of each of [`Gap::ALL`], in its order.
    no_process: [u64; Gap::ALL.len()],
}

impl Coverage {
    /// Counts one flow's bytes under its owner.
    pub fn add(&mut self, flow: &FlowDelta, owner: &Owner) {
        let bytes = flow.rx_bytes + flow.tx_bytes;
        match Gap::of(owner) {
            None => self.process_bytes += bytes,
            Some(gap) => self.no_process[gap as usize] += bytes,
        }
    }

    /// All of the interval's interfaces together, in one pass.
    pub fn of(interval: &EnrichedSnapshot) -> Coverage {
        let mut coverage = Coverage::default();
        for (flow, facts) in interval.flows() {
            coverage.add(flow, &facts.owner);
        }
        coverage
    }

    /// The bytes without a process for `gap`.
    pub fn no_process_bytes(&self, gap: Gap) -> u64 {
        self.no_process[gap as usize]
    }

    /// All bytes in flows: with a process and without.
    pub fn bytes(&self) -> u64 {
        self.process_bytes + self.no_process.iter().sum::<u64>()
    }

    /// The share of the bytes in flows that have a process, 0 to 1; `None` when no
    /// flow moved a byte.
    pub fn process_share(&self) -> Option<f64> {
        self.share(self.process_bytes)
    }

    /// The share of the bytes in flows without a process for `gap`.
    pub fn gap_share(&self, gap: Gap) -> Option<f64> {
        self.share(self.no_process_bytes(gap))
    }

    fn share(&self, part: u64) -> Option<f64> {
        match self.bytes() {
            0 => None,
            all => Some(part as f64 / all as f64),
        }
    }

    /// The gaps that hold bytes, the most bytes first (ties in [`Gap::ALL`]'s order).
    pub fn main_gaps(&self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = Gap::ALL
            .into_iter()
            .filter(|&gap| self.no_process_bytes(gap) > 0)
            .collect();
        gaps.sort_by_key(|&gap| std::cmp::Reverse(self.no_process_bytes(gap)));
        gaps
    }

    /// The sentence with at most `reasons` of the main gaps: "processes 97% of bytes
    /// (forwarded 2%, socket gone 1%)"; `None` when no flow moved a byte.
    pub fn told(&self, reasons: usize) -> Option<Told<'_>> {
        self.process_share()?;
        Some(Told {
            coverage: self,
            reasons,
        })
    }
}

impl AddAssign for Coverage {
    fn add_assign(&mut self, other: Coverage) {
        self.process_bytes += other.process_bytes;
        for (sum, bytes) in self.no_process.iter_mut().zip(other.no_process) {
            *sum += bytes;
        }
    }
}

/// Each interface's coverage in one interval, in the order of the snapshot's
/// interfaces (flows of an interface it does not list follow).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByInterface(Vec<(Arc<str>, Coverage)>);

impl ByInterface {
    /// One pass over the interval's flows; the interfaces are few, so each flow finds
    /// its own by a short scan (a pointer compare first: the reader shares the names).
    pub fn of(interval: &EnrichedSnapshot) -> Self {
        let mut by: Vec<(Arc<str>, Coverage)> = interval
            .snapshot()
            .interfaces
            .iter()
            .map(|totals| (totals.iface.clone(), Coverage::default()))
            .collect();
        for (flow, facts) in interval.flows() {
            let iface = &flow.id.iface;
            let index = match by
                .iter()
                .position(|(name, _)| Arc::ptr_eq(name, iface) || name == iface)
            {
                Some(index) => index,
                None => {
                    by.push((iface.clone(), Coverage::default()));
                    by.len() - 1
                }
            };
            by[index].1.add(flow, &facts.owner);
        }
        Self(by)
    }

    /// The coverage of interface `iface` (empty if none of its flows moved).
    pub fn get(&self, iface: &str) -> Coverage {
        self.0
            .iter()
            .find(|(name, _)| &**name == iface)
            .map_or_else(Coverage::default, |(_, coverage)| *coverage)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Arc<str>, Coverage)> {
        self.0.iter()
    }
}

/// The coverage of the last [`Recent::INTERVALS`] intervals: what the console's status
/// line tells, steady enough to read, recent enough to follow the traffic.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    intervals: VecDeque<Coverage>,
}

impl Recent {
    pub const INTERVALS: usize = 10;

    pub fn push(&mut self, interval: Coverage) {
        if self.intervals.len() == Self::INTERVALS {
            self.intervals.pop_front();
        }
        self.intervals.push_back(interval);
    }

    pub fn sum(&self) -> Coverage {
        let mut sum = Coverage::default();
        for &interval in &self.intervals {
            sum += interval;
        }
        sum
    }
}

/// [`Coverage::told`]'s sentence.
pub struct Told<'a> {
    coverage: &'a Coverage,
    reasons: usize,
}

/// A share as a whole percent, never rounded up to 100 nor down to 0 when it is
/// neither: "99%" while any byte is missing, "<1%" for a sliver.
fn percent(share: f64) -> String {
    let percent = 100.0 * share;
    if share > 0.0 && percent < 1.0 {
        "<1%".to_owned()
    } else if share < 1.0 {
        format!("{:.0}%", percent.floor().max(percent.round().min(99.0)))
    } else {
        "100%".to_owned()
    }
}

impl fmt::Display for Told<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = self.coverage.process_share().unwrap_or(0.0);
        write!(f, "processes {} of bytes", percent(share))?;
        let gaps = self.coverage.main_gaps();
        for (index, gap) in gaps.iter().take(self.reasons).enumerate() {
            let share = self.coverage.gap_share(*gap).unwrap_or(0.0);
            let open = if index == 0 { " (" } else { ", " };
            write!(f, "{open}{} {}", gap.words(), percent(share))?;
        }
        if self.reasons > 0 && !gaps.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::{IpAddr, Ipv4Addr},
        time::{Duration, SystemTime},
    };

    use super::*;
    use crate::{
        datapath::{FlowId, InterfaceTotals, Protocol, Snapshot},
        enrich::{Facts, sockets::ProcessInfo},
    };

    fn flow(iface: &str, port: u16, rx: u64, tx: u64) -> FlowDelta {
        FlowDelta {
            id: FlowId {
                iface: Arc::from(iface),
                proto: Protocol(6),
                local_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                local_port: port,
                remote_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
                remote_port: 443,
            },
            rx_packets: 1,
            rx_bytes: rx,
            tx_packets: 1,
            tx_bytes: tx,
            tcp_flags: 0,
        }
    }

    fn process() -> Owner {
        Owner::Process(Arc::new(ProcessInfo {
            pid: 4242,
            comm: "nginx".into(),
            exe: None,
            exe_deleted: false,
            uid: 0,
            user: "root".into(),
            cmdline: String::new(),
            cgroup: Default::default(),
        }))
    }

    /// An interval of `flows` on eth0 and wg0, each with its owner.
    fn interval(flows: Vec<(FlowDelta, Owner)>) -> EnrichedSnapshot {
        let interfaces = ["eth0", "wg0"]
            .map(|iface| InterfaceTotals {
                iface: Arc::from(iface),
                ..Default::default()
            })
            .to_vec();
        let (deltas, owners): (Vec<_>, Vec<_>) = flows.into_iter().unzip();
        let snapshot = Snapshot {
            at: SystemTime::UNIX_EPOCH,
            interval: Duration::from_secs(1),
            flows: deltas,
            interfaces,
            overflow: Vec::new(),
        };
        let mut owners = owners.into_iter();
        EnrichedSnapshot::from_fn(snapshot, |_| Facts {
            owner: owners.next().expect("an owner per flow"),
            ..crate::sinks::fixtures::business(crate::enrich::geo::Location::Local)
        })
    }

    /// One flow of every owner on eth0, bytes 1000, 40, 30, 20, 10, 5 (rx + tx), and a
    /// process flow of 500 on wg0.
    fn every_owner() -> EnrichedSnapshot {
        interval(vec![
            (flow("eth0", 1, 600, 400), process()),
            (flow("eth0", 2, 40, 0), Owner::Forwarded),
            (flow("eth0", 3, 10, 20), Owner::NoLocalSocket),
            (flow("eth0", 4, 0, 20), Owner::Unresolved),
            (flow("eth0", 5, 5, 5), Owner::Hidden),
            (flow("eth0", 6, 3, 2), Owner::Resolving),
            (flow("wg0", 7, 250, 250), process()),
        ])
    }

    #[test]
    fn every_owner_counts_under_its_own_reason() {
        let by = ByInterface::of(&every_owner());
        let eth0 = by.get("eth0");
        assert_eq!(eth0.process_bytes, 1000);
        let gaps: Vec<u64> = Gap::ALL
            .into_iter()
            .map(|gap| eth0.no_process_bytes(gap))
            .collect();
        assert_eq!(gaps, [40, 30, 20, 10, 5]);
        assert_eq!(eth0.bytes(), 1105);
        let wg0 = by.get("wg0");
        assert_eq!((wg0.process_bytes, wg0.bytes()), (500, 500));
        assert_eq!(wg0.process_share(), Some(1.0));
        let names: Vec<&str> = by.iter().map(|(name, _)| &**name).collect();
        assert_eq!(names, ["eth0", "wg0"]);
    }

    #[test]
    fn shares_sum_to_one_and_the_interfaces_sum_to_the_interval() {
        let interval = every_owner();
        let by = ByInterface::of(&interval);
        let mut sum = Coverage::default();
        for (_, coverage) in by.iter() {
            sum += *coverage;
            let shares = coverage.process_share().unwrap()
                + Gap::ALL
                    .into_iter()
                    .map(|gap| coverage.gap_share(gap).unwrap())
                    .sum::<f64>();
            assert!((shares - 1.0).abs() < 1e-12, "{shares}");
        }
        assert_eq!(sum, Coverage::of(&interval));
        assert_eq!(sum.bytes(), 1605);
        assert_eq!(sum.process_share(), Some(1500.0 / 1605.0));
    }

    #[test]
    fn no_bytes_is_no_share_and_an_idle_interface_is_empty() {
        let interval = interval(vec![(flow("eth0", 1, 0, 0), Owner::Forwarded)]);
        let by = ByInterface::of(&interval);
        assert_eq!(by.get("eth0").process_share(), None);
        assert_eq!(by.get("wg0"), Coverage::default());
        assert!(by.get("eth0").told(2).is_none());
    }

    #[test]
    fn summed_over_intervals_it_adds_every_reason() {
        let mut run = Coverage::default();
        run += Coverage::of(&every_owner());
        run += Coverage::of(&every_owner());
        assert_eq!(run.process_bytes, 3000);
        assert_eq!(run.no_process_bytes(Gap::SocketGone), 40);
        assert_eq!(run.bytes(), 3210);
    }

    #[test]
    fn the_sentence_names_the_main_reasons_most_bytes_first() {
        let coverage = ByInterface::of(&every_owner()).get("eth0");
        assert_eq!(
            coverage.main_gaps(),
            [
                Gap::Forwarded,
                Gap::KernelAnswered,
                Gap::SocketGone,
                Gap::NamespaceHidden,
                Gap::Resolving
            ]
        );
        assert_eq!(
            coverage.told(2).unwrap().to_string(),
            "processes 90% of bytes (forwarded 4%, kernel-answered 3%)"
        );
        assert_eq!(
            coverage.told(0).unwrap().to_string(),
            "processes 90% of bytes"
        );
        let tie = interval(vec![
            (flow("eth0", 1, 9_000, 0), process()),
            (flow("eth0", 2, 5, 0), Owner::Hidden),
            (flow("eth0", 3, 5, 0), Owner::Unresolved),
        ]);
        assert_eq!(
            Coverage::of(&tie).told(3).unwrap().to_string(),
            "processes 99% of bytes (socket gone <1%, namespace hidden <1%)"
        );
        let all = interval(vec![(flow("eth0", 1, 1, 0), process())]);
        assert_eq!(
            Coverage::of(&all).told(2).unwrap().to_string(),
            "processes 100% of bytes"
        );
        let none = interval(vec![(flow("eth0", 1, 1, 0), Owner::Forwarded)]);
        assert_eq!(
            Coverage::of(&none).told(2).unwrap().to_string(),
            "processes 0% of bytes (forwarded 100%)"
        );
    }
}
