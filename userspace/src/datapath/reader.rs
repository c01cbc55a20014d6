//! Turns the kernel's cumulative counters into per-interval deltas.
//!
//! Each read takes the totals first and the flow table second. A packet's program bumps
//! its totals and then its flow within one run, so every packet in the totals read is
//! also in the flow read that follows: traffic is never reported as unattributed and
//! then again in its flow. (The reverse can happen, a packet in a flow before its
//! totals are read; its unattributed share is then settled at the next read.)
//!
//! The kernel stamps only a flow's first packet; when a flow last moved is the read at
//! which its counters last changed, which is what the idle timeout looks at.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use flowmeter_common::{DIR_RX, DIR_TX, FlowCounters, FlowKey, Totals};
use rustc_hash::FxHashMap;

use crate::shrink;

use super::{
    DirectionTotals, Error, FlowDelta, FlowId, FlowSource, Interface, InterfaceTotals, Snapshot,
    metered::MeteredInterfaces, overflow::OverflowDeltas,
};

/// Flows idle this long are removed from the kernel table, so it keeps room.
pub const IDLE_FLOW_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads a [`FlowSource`] once per interval and remembers what it read last. Its table
/// is kept between reads and updated in place as flows are read, so a steady table
/// costs no allocation and no second table is built.
pub struct Reader<S> {
    source: S,
    /// The interfaces whose totals the reads report, and the names of flows' ifindexes.
    interfaces: MeteredInterfaces,
    /// Each flow as the previous read left it.
    previous: FxHashMap<FlowKey, Known>,
    /// Flows idle for too long, found at a read; kept for its memory.
    idle: Vec<FlowKey>,
    /// Flows in the previous read that this read did not find: the kernel let them go
    /// (its table was full). Their traffic after the previous read is unattributed.
    gone: Vec<FlowKey>,
    /// Reads so far: tells the flows of this read from those the kernel let go.
    reads: u64,
    /// Per (ifindex, direction): what the previous reads established.
    directions: HashMap<(u32, u32), DirectionState>,
    last_read: Instant,
    idle_timeout_ns: u64,
    /// The over-budget prefixes as the previous read left them.
    overflow: OverflowDeltas,
    /// The programs are detached: no packet is being counted while the maps are read.
    quiet: bool,
}

/// A flow's cumulative counters at the previous read, and when they last changed.
#[derive(Clone, Copy)]
struct Known {
    counters: FlowCounters,
    /// `FlowSource::now_ns` at the read that first saw the counters as they are.
    last_moved_ns: u64,
    /// The read that last found the flow in the table.
    seen: u64,
}

#[derive(Default)]
struct DirectionState {
    totals: Totals,
    /// Packets and bytes handed out in flow deltas since the start.
    attributed: (u64, u64),
    /// Packets and bytes reported as unattributed since the start.
    unattributed: (u64, u64),
    /// Of those, packets and bytes reported as evicted before they were read.
    evicted: (u64, u64),
    /// `unattributed` as the previous read left it.
    unattributed_before: (u64, u64),
}

impl<S: FlowSource> Reader<S> {
    /// A reader whose first interval starts at `started` (when the programs attached).
    pub fn new(source: S, interfaces: &[Interface], started: Instant) -> Self {
        Self {
            source,
            interfaces: MeteredInterfaces::new(interfaces),
            previous: FxHashMap::default(),
            idle: Vec::new(),
            gone: Vec::new(),
            reads: 0,
            directions: HashMap::new(),
            last_read: started,
            idle_timeout_ns: IDLE_FLOW_TIMEOUT.as_nanos() as u64,
            overflow: OverflowDeltas::default(),
            quiet: false,
        }
    }

    /// Changes how long a flow may stay idle before it is removed from the table.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.set_idle_timeout(timeout);
        self
    }

    /// As [`with_idle_timeout`](Self::with_idle_timeout), on a reader already reading.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout_ns = timeout.as_nanos() as u64;
    }

    /// Says that the programs are detached: from now on no packet is counted while the
    /// maps are read, so a read's totals and their reasons agree field for field.
    pub fn programs_detached(&mut self) {
        self.quiet = true;
    }

    /// Says that the interface `name` was deleted: the next read reports its last
    /// totals (nothing counts on it any more), later reads none until it is back. Its
    /// flows go on as any flow does, read until they idle out.
    pub fn interface_gone(&mut self, name: &str) {
        self.interfaces.gone(name);
    }

    /// Says that the interface `name` is metered again, under its new `ifindex`: its
    /// totals go on from where they were, and its new flows carry its name.
    pub fn interface_back(&mut self, name: &str, ifindex: u32) {
        self.interfaces.back(name, ifindex);
    }

    /// The source, to change what the next read sees (tests, benchmarks).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The flows the last read no longer found, because the kernel let them go (not
    /// those the reader removed as idle): a consumer that holds state per flow can end
    /// it now rather than wait for a timeout.
    pub fn gone(&self) -> impl ExactSizeIterator<Item = FlowId> + '_ {
        self.gone
            .iter()
            .map(|key| FlowId::from_key(key, self.interfaces.name_of(key.ifindex)))
    }

    /// The flows the kernel table holds after the last read (those it found, less the
    /// idle ones it removed).
    pub fn flows_in_table(&self) -> usize {
        self.previous.len()
    }

    /// Reads the maps and returns what moved since the previous read.
    pub fn read(&mut self, at: SystemTime, now: Instant) -> Result<Snapshot, Error> {
        let reported = self.interfaces.reported();
        let mut totals = Vec::with_capacity(2 * reported.len());
        for interface in &reported {
            for direction in [DIR_RX, DIR_TX] {
                totals.push(self.source.totals(interface.totals_key, direction)?);
            }
        }
        let now_ns = self.source.now_ns();
        self.reads += 1;
        let reads = self.reads;
        let mut attributed: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
        let mut flows = Vec::new();
        let (previous, interfaces) = (&mut self.previous, &self.interfaces);
        // Each flow is diffed as it is read, against the previous read's entry, which
        // it then replaces: no table of this read is built.
        self.source.flows(&mut |key, counters| {
            let delta = match previous.get_mut(&key) {
                Some(known) => {
                    let delta = flow_delta(Some(&known.counters), &counters);
                    if moved(&delta) {
                        known.last_moved_ns = now_ns;
                    }
                    known.counters = counters;
                    known.seen = reads;
                    delta
                }
                None => {
                    let known = Known {
                        counters,
                        last_moved_ns: now_ns,
                        seen: reads,
                    };
                    previous.insert(key, known);
                    counters
                }
            };
            if !moved(&delta) {
                return;
            }
            for (direction, packets, bytes) in [
                (DIR_RX, delta.rx_packets, delta.rx_bytes),
                (DIR_TX, delta.tx_packets, delta.tx_bytes),
            ] {
                let sum = attributed.entry((key.ifindex, direction)).or_default();
                sum.0 += packets;
                sum.1 += bytes;
            }
            flows.push(FlowDelta {
                id: FlowId::from_key(&key, interfaces.name_of(key.ifindex)),
                rx_packets: delta.rx_packets,
                rx_bytes: delta.rx_bytes,
                tx_packets: delta.tx_packets,
                tx_bytes: delta.tx_bytes,
                tcp_flags: counters.tcp_flags,
            });
        })?;
        flows.sort_by(|a, b| a.id.cmp(&b.id));
        self.forget_gone_and_idle_flows(now_ns)?;

        let mut interfaces = Vec::with_capacity(reported.len());
        let mut totals = totals.into_iter();
        for interface in reported {
            let key = interface.totals_key;
            let mut direction_totals = [DirectionTotals::default(); 2];
            for (slot, direction) in [DIR_RX, DIR_TX].into_iter().enumerate() {
                let read = totals.next().unwrap_or_default();
                let state = self.directions.entry((key, direction)).or_default();
                // Its flows under every ifindex it has had (one, unless it came back).
                let moved = self.interfaces.ifindexes(key).fold((0, 0), |sum, ifindex| {
                    let (packets, bytes) = attributed
                        .get(&(ifindex, direction))
                        .copied()
                        .unwrap_or((0, 0));
                    (sum.0 + packets, sum.1 + bytes)
                });
                // A gone interface's programs count nothing more: its reasons are in.
                direction_totals[slot] = state.advance(read, moved, self.quiet || interface.last);
            }
            let [rx, tx] = direction_totals;
            interfaces.push(InterfaceTotals {
                iface: interface.name,
                rx,
                tx,
            });
        }
        self.interfaces.settle();

        // After the totals, as flows are: the kernel bumps the totals first.
        let prefixes = self.source.overflow()?;
        let interfaces_named = &self.interfaces;
        let overflow = self
            .overflow
            .advance(prefixes, |ifindex| interfaces_named.name_of(ifindex));

        let interval = now.saturating_duration_since(self.last_read);
        self.last_read = now;
        Ok(Snapshot {
            at,
            interval,
            flows,
            interfaces,
            overflow,
        })
    }

    /// Forgets the flows this read did not find (the kernel let them go: listed in
    /// `gone`) and those idle for too long, which are also removed from the kernel table.
    fn forget_gone_and_idle_flows(&mut self, now_ns: u64) -> Result<(), Error> {
        let (reads, idle_timeout_ns) = (self.reads, self.idle_timeout_ns);
        let (idle, gone) = (&mut self.idle, &mut self.gone);
        gone.clear();
        self.previous.retain(|key, known| {
            if known.seen != reads {
                gone.push(*key);
                return false;
            }
            let is_idle = known.last_moved_ns.saturating_add(idle_timeout_ns) < now_ns;
            if is_idle {
                idle.push(*key);
            }
            !is_idle
        });
        for key in self.idle.drain(..) {
            self.source.remove(&key)?;
        }
        // After a flood the tables give back what they no longer need.
        shrink::to_live(&mut self.previous);
        shrink::to_live(&mut self.idle);
        shrink::to_live(&mut self.gone);
        Ok(())
    }
}

/// Whether a delta counts any packet.
fn moved(delta: &FlowCounters) -> bool {
    delta.rx_packets != 0 || delta.tx_packets != 0
}

impl DirectionState {
    /// Folds in the totals just read and the flow traffic of this interval.
    /// `quiet`: no program runs while the maps are read (see `Reader::programs_detached`).
    fn advance(&mut self, totals: Totals, attributed: (u64, u64), quiet: bool) -> DirectionTotals {
        let previous = std::mem::replace(&mut self.totals, totals);
        self.attributed.0 += attributed.0;
        self.attributed.1 += attributed.1;
        // Cumulative traffic in no flow, minus what earlier intervals already reported.
        let unattributed_packets = totals
            .packets
            .saturating_sub(self.attributed.0)
            .saturating_sub(self.unattributed.0);
        let unattributed_bytes = totals
            .bytes
            .saturating_sub(self.attributed.1)
            .saturating_sub(self.unattributed.1);
        self.unattributed.0 += unattributed_packets;
        self.unattributed.1 += unattributed_bytes;
        let unattributed_before =
            std::mem::replace(&mut self.unattributed_before, self.unattributed);
        // What the kernel's reasons do not explain was in a flow evicted before it was
        // read; cumulative like the rest, so that a packet settled late is told once.
        // A program counts a packet in `packets` before its reason, so a read during
        // traffic can see the one and not yet the other: the unattributed traffic of the
        // previous read, whose reasons are all in by now, is held to this read's reasons.
        // Once the programs are detached, this read's own totals agree.
        let basis = if quiet {
            self.unattributed
        } else {
            unattributed_before
        };
        let reasons = (
            totals.non_ip_packets
                + totals.malformed_packets
                + totals.insert_failed_packets
                + totals.over_budget_packets,
            totals.non_ip_bytes
                + totals.malformed_bytes
                + totals.insert_failed_bytes
                + totals.over_budget_bytes,
        );
        let evicted_packets = basis
            .0
            .saturating_sub(reasons.0)
            .saturating_sub(self.evicted.0);
        let evicted_bytes = basis
            .1
            .saturating_sub(reasons.1)
            .saturating_sub(self.evicted.1);
        self.evicted.0 += evicted_packets;
        self.evicted.1 += evicted_bytes;
        let since = |now: u64, before: u64| now.saturating_sub(before);
        DirectionTotals {
            packets: since(totals.packets, previous.packets),
            bytes: since(totals.bytes, previous.bytes),
            unattributed_packets,
            unattributed_bytes,
            non_ip_packets: since(totals.non_ip_packets, previous.non_ip_packets),
            non_ip_bytes: since(totals.non_ip_bytes, previous.non_ip_bytes),
            malformed_packets: since(totals.malformed_packets, previous.malformed_packets),
            malformed_bytes: since(totals.malformed_bytes, previous.malformed_bytes),
            table_full_packets: since(totals.insert_failed_packets, previous.insert_failed_packets),
            table_full_bytes: since(totals.insert_failed_bytes, previous.insert_failed_bytes),
            over_budget_packets: since(totals.over_budget_packets, previous.over_budget_packets),
            over_budget_bytes: since(totals.over_budget_bytes, previous.over_budget_bytes),
            evicted_packets,
            evicted_bytes,
        }
    }
}

/// What a flow moved since `previous`. A flow whose counters shrank, or that started
/// later than the one read before under the same key, was evicted and created anew:
/// all of its counters are new traffic, never a negative or wrapped-around delta.
pub(crate) fn flow_delta(previous: Option<&FlowCounters>, current: &FlowCounters) -> FlowCounters {
    let Some(previous) = previous else {
        return *current;
    };
    let reborn = current.first_seen_ns > previous.first_seen_ns
        || current.rx_packets < previous.rx_packets
        || current.rx_bytes < previous.rx_bytes
        || current.tx_packets < previous.tx_packets
        || current.tx_bytes < previous.tx_bytes;
    if reborn {
        return *current;
    }
    FlowCounters {
        rx_packets: current.rx_packets - previous.rx_packets,
        rx_bytes: current.rx_bytes - previous.rx_bytes,
        tx_packets: current.tx_packets - previous.tx_packets,
        tx_bytes: current.tx_bytes - previous.tx_bytes,
        ..*current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::memory::MemorySource;
    use flowmeter_common::{FAMILY_IPV4, PROTO_UDP};
    use proptest::prelude::*;

    const IFINDEX: u32 = 7;
    const SECOND: u64 = 1_000_000_000;

    fn key(remote_port: u16) -> FlowKey {
        FlowKey {
            ifindex: IFINDEX,
            family: FAMILY_IPV4,
            proto: PROTO_UDP,
            local_port: 53,
            remote_port,
            local_addr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote_addr: [192, 0, 2, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..Default::default()
        }
    }

    fn counters(rx_packets: u64, tx_packets: u64, first_seen_ns: u64) -> FlowCounters {
        FlowCounters {
            rx_packets,
            rx_bytes: rx_packets * 100,
            tx_packets,
            tx_bytes: tx_packets * 60,
            first_seen_ns,
            ..Default::default()
        }
    }

    fn reader() -> (Reader<MemorySource>, Instant) {
        let interfaces = [Interface {
            name: "eth7".into(),
            ifindex: IFINDEX,
            link: crate::datapath::LinkLayer::Ethernet,
        }];
        let start = Instant::now();
        (
            Reader::new(MemorySource::default(), &interfaces, start),
            start,
        )
    }

    fn set_totals(reader: &mut Reader<MemorySource>, rx_packets: u64, rx_bytes: u64) {
        let totals = &mut reader.source_mut().totals;
        totals.insert(
            (IFINDEX, DIR_RX),
            Totals {
                packets: rx_packets,
                bytes: rx_bytes,
                ..Default::default()
            },
        );
    }

    fn read(reader: &mut Reader<MemorySource>, at: Instant) -> Snapshot {
        reader.read(SystemTime::UNIX_EPOCH, at).unwrap()
    }

    #[test]
    fn first_read_reports_everything_then_only_what_moved() {
        let (mut reader, start) = reader();
        reader.source_mut().flows.insert(key(1), counters(5, 2, 10));
        let first = read(&mut reader, start + Duration::from_secs(1));
        assert_eq!(first.flows.len(), 1);
        assert_eq!(
            (first.flows[0].rx_packets, first.flows[0].rx_bytes),
            (5, 500)
        );
        assert_eq!(
            (first.flows[0].tx_packets, first.flows[0].tx_bytes),
            (2, 120)
        );
        assert_eq!(first.interval, Duration::from_secs(1));

        reader.source_mut().flows.insert(key(1), counters(8, 2, 10));
        let second = read(&mut reader, start + Duration::from_millis(2500));
        assert_eq!(
            (second.flows[0].rx_packets, second.flows[0].tx_packets),
            (3, 0)
        );
        assert_eq!(second.interval, Duration::from_millis(1500));
    }

    #[test]
    fn flows_that_did_not_move_are_left_out() {
        let (mut reader, start) = reader();
        reader.source_mut().flows.insert(key(1), counters(5, 0, 10));
        read(&mut reader, start);
        assert!(read(&mut reader, start).flows.is_empty());
    }

    #[test]
    fn shrinking_counters_mean_a_new_flow_not_a_negative_delta() {
        let (mut reader, start) = reader();
        reader
            .source_mut()
            .flows
            .insert(key(1), counters(50, 5, 10));
        read(&mut reader, start);
        reader.source_mut().flows.insert(key(1), counters(3, 1, 10));
        let snapshot = read(&mut reader, start);
        assert_eq!(
            (snapshot.flows[0].rx_packets, snapshot.flows[0].tx_packets),
            (3, 1)
        );
    }

    #[test]
    fn a_flow_born_again_under_the_same_key_is_counted_from_zero() {
        let (mut reader, start) = reader();
        reader.source_mut().flows.insert(key(1), counters(5, 0, 10));
        read(&mut reader, start);
        // Evicted and recreated between reads, with more packets than before.
        reader.source_mut().flows.insert(key(1), counters(9, 0, 20));
        let snapshot = read(&mut reader, start);
        assert_eq!(snapshot.flows[0].rx_packets, 9);
    }

    #[test]
    fn idle_flows_are_removed_from_the_table() {
        let (reader, start) = reader();
        let mut reader = reader.with_idle_timeout(Duration::from_secs(60));
        // Both flows appear at 30 s; only the second moves later on (at 90 s).
        let reads: [(u64, &[(u16, u64)]); 2] = [(30, &[(1, 1), (2, 1)]), (90, &[(2, 2)])];
        for (second, flows) in reads {
            reader.source_mut().now_ns = second * SECOND;
            for &(port, packets) in flows {
                let flow = counters(packets, 0, SECOND);
                reader.source_mut().flows.insert(key(port), flow);
            }
            read(&mut reader, start);
        }
        reader.source_mut().now_ns = 100 * SECOND;
        let snapshot = read(&mut reader, start);
        // Idle since 30 s: gone from the kernel table; moved at 90 s: kept.
        assert!(snapshot.flows.is_empty());
        assert!(!reader.source_mut().flows.contains_key(&key(1)));
        assert!(reader.source_mut().flows.contains_key(&key(2)));
    }

    #[test]
    fn flows_the_kernel_let_go_are_gone_once_and_idle_removals_are_not() {
        let (reader, start) = reader();
        let mut reader = reader.with_idle_timeout(Duration::from_secs(60));
        reader.source_mut().now_ns = 30 * SECOND;
        for port in [1, 2, 3] {
            reader
                .source_mut()
                .flows
                .insert(key(port), counters(1, 0, SECOND));
        }
        read(&mut reader, start);
        assert_eq!(reader.gone().len(), 0);
        // The kernel evicts flow 1 (its table was full).
        reader.source_mut().flows.remove(&key(1));
        read(&mut reader, start);
        let gone: Vec<u16> = reader.gone().map(|id| id.remote_port).collect();
        assert_eq!(gone, [key(1).remote_port]);
        // Flows 2 and 3 idle out: the reader removes them itself; not gone, and flow 1
        // is told once.
        reader.source_mut().now_ns = 100 * SECOND;
        read(&mut reader, start);
        assert_eq!(reader.gone().len(), 0);
        assert!(reader.source_mut().flows.is_empty());
        read(&mut reader, start);
        assert_eq!(reader.gone().len(), 0);
    }

    #[test]
    fn a_flow_removed_while_idle_and_seen_again_is_new_traffic() {
        let (reader, start) = reader();
        let mut reader = reader.with_idle_timeout(Duration::from_secs(60));
        reader
            .source_mut()
            .flows
            .insert(key(1), counters(4, 0, SECOND));
        read(&mut reader, start);
        reader.source_mut().now_ns = 100 * SECOND;
        read(&mut reader, start);
        assert!(reader.source_mut().flows.is_empty());
        // The kernel creates it again on its next packet.
        reader
            .source_mut()
            .flows
            .insert(key(1), counters(1, 0, 101 * SECOND));
        let snapshot = read(&mut reader, start);
        assert_eq!(snapshot.flows[0].rx_packets, 1);
    }

    #[test]
    fn unattributed_is_totals_minus_flows_and_never_repeated() {
        let (mut reader, start) = reader();
        reader.source_mut().flows.insert(key(1), counters(5, 0, 10));
        set_totals(&mut reader, 8, 900);
        let first = read(&mut reader, start);
        let rx = first.interfaces[0].rx;
        assert_eq!((rx.packets, rx.bytes), (8, 900));
        assert_eq!((rx.unattributed_packets, rx.unattributed_bytes), (3, 400));

        // The flow was evicted with 2 unread packets; a new flow took 1 more.
        reader.source_mut().flows.clear();
        reader.source_mut().flows.insert(key(2), counters(1, 0, 50));
        set_totals(&mut reader, 11, 1200);
        let second = read(&mut reader, start);
        let rx = second.interfaces[0].rx;
        assert_eq!(rx.packets, 3);
        assert_eq!(rx.unattributed_packets, 2);
    }

    fn totals_with(packets: u64, non_ip: u64) -> Totals {
        Totals {
            packets,
            bytes: packets * 100,
            non_ip_packets: non_ip,
            non_ip_bytes: non_ip * 100,
            ..Default::default()
        }
    }

    #[test]
    fn traffic_no_kernel_reason_explains_was_evicted_before_it_was_read() {
        let (mut reader, start) = reader();
        reader.source_mut().flows.insert(key(1), counters(5, 0, 10));
        // One ARP frame besides the flow's five packets.
        reader
            .source_mut()
            .totals
            .insert((IFINDEX, DIR_RX), totals_with(6, 1));
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!(rx.unattributed_packets, 1);
        assert_eq!((rx.non_ip_packets, rx.evicted_packets), (1, 0));

        // The flow took 2 more packets and was evicted before this read; a new flow took 1.
        reader.source_mut().flows.clear();
        reader.source_mut().flows.insert(key(2), counters(1, 0, 50));
        reader
            .source_mut()
            .totals
            .insert((IFINDEX, DIR_RX), totals_with(9, 1));
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!(rx.unattributed_packets, 2);
        // While programs run, evicted traffic is told at the read after, when every
        // reason of this read's packets is surely in.
        assert_eq!((rx.non_ip_packets, rx.evicted_packets), (0, 0));
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!((rx.unattributed_packets, rx.evicted_packets), (0, 2));
        assert_eq!(rx.evicted_bytes, 200);
        // Nothing new: nothing more is evicted.
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!(rx.evicted_packets, 0);

        // Once the programs are detached, a read tells its own evictions at once.
        reader.source_mut().flows.clear();
        reader
            .source_mut()
            .totals
            .insert((IFINDEX, DIR_RX), totals_with(12, 1));
        reader.programs_detached();
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!((rx.unattributed_packets, rx.evicted_packets), (3, 3));
    }

    /// A program counts a packet in `packets` before its reason: a read can fall
    /// between the two. That packet is not evicted traffic, and is never told as such.
    #[test]
    fn a_reason_counted_after_its_packet_is_not_taken_for_an_eviction() {
        let (mut reader, start) = reader();
        // A non-IP frame in `packets`, its reason not counted yet.
        reader
            .source_mut()
            .totals
            .insert((IFINDEX, DIR_RX), totals_with(1, 0));
        let rx = read(&mut reader, start).interfaces[0].rx;
        assert_eq!((rx.unattributed_packets, rx.evicted_packets), (1, 0));
        reader
            .source_mut()
            .totals
            .insert((IFINDEX, DIR_RX), totals_with(1, 1));
        for _ in 0..2 {
            let rx = read(&mut reader, start).interfaces[0].rx;
            assert_eq!(rx.evicted_packets, 0);
        }
    }

    #[test]
    fn packets_in_flows_before_their_totals_are_not_reported_twice() {
        let (mut reader, start) = reader();
        // Two packets landed between the totals read and the flow read.
        set_totals(&mut reader, 5, 500);
        reader.source_mut().flows.insert(key(1), counters(7, 0, 10));
        let first = read(&mut reader, start);
        assert_eq!(first.interfaces[0].rx.unattributed_packets, 0);
        // The next read sees their totals; nothing new is unattributed.
        set_totals(&mut reader, 7, 700);
        let second = read(&mut reader, start);
        assert_eq!(second.interfaces[0].rx.packets, 2);
        assert_eq!(second.interfaces[0].rx.unattributed_packets, 0);
        assert!(second.flows.is_empty());
    }

    #[test]
    fn a_deleted_interface_has_its_last_totals_read_then_none_until_it_is_back() {
        let (mut reader, start) = reader();
        set_totals(&mut reader, 4, 400);
        read(&mut reader, start);
        // Deleted after two more packets: this read reports them, and is its last.
        set_totals(&mut reader, 6, 600);
        reader.interface_gone("eth7");
        let last = read(&mut reader, start);
        assert_eq!(last.interfaces.len(), 1);
        assert_eq!(
            (last.interfaces[0].rx.packets, last.interfaces[0].rx.bytes),
            (2, 200)
        );
        assert!(read(&mut reader, start).interfaces.is_empty());
        // Created again as ifindex 9: the same slot goes on counting, its flows are its.
        reader.interface_back("eth7", 9);
        let new_flow = FlowKey {
            ifindex: 9,
            ..key(1)
        };
        reader
            .source_mut()
            .flows
            .insert(new_flow, counters(3, 0, 10));
        set_totals(&mut reader, 9, 900);
        let back = read(&mut reader, start);
        let rx = back.interfaces[0].rx;
        assert_eq!(&*back.interfaces[0].iface, "eth7");
        assert_eq!((rx.packets, rx.unattributed_packets), (3, 0));
        assert_eq!(&*back.flows[0].id.iface, "eth7");
    }

    /// One step of a flow's life in the kernel, as the property tests replay it.
    #[derive(Clone, Debug)]
    enum Step {
        /// Packets arrive on the flow.
        Packets(u64),
        /// The flow is evicted (its unread packets lost) and recreated with packets.
        Reborn(u64),
        /// Userspace reads the maps.
        Read,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                (1u64..1000).prop_map(Step::Packets),
                (1u64..1000).prop_map(Step::Reborn),
                Just(Step::Read),
            ],
            1..60,
        )
    }

    proptest! {
        /// Whatever the kernel does to a flow, deltas plus unattributed add up to the
        /// totals exactly, and no delta exceeds what arrived since the previous read.
        #[test]
        fn deltas_and_unattributed_add_up_to_the_totals(steps in steps()) {
            let (mut reader, start) = reader();
            let mut kernel = FlowCounters::default();
            let mut total = 0;
            let mut arrived_since_read = 0;
            let mut reported = (0, 0);
            let mut clock = 1;
            for step in steps.iter().chain([Step::Read].iter()) {
                clock += 1;
                match *step {
                    Step::Packets(n) => {
                        if kernel.first_seen_ns == 0 {
                            kernel.first_seen_ns = clock;
                        }
                        kernel.rx_packets += n;
                        total += n;
                        arrived_since_read += n;
                    }
                    Step::Reborn(n) => {
                        kernel = FlowCounters { rx_packets: n, first_seen_ns: clock, ..Default::default() };
                        total += n;
                        arrived_since_read += n;
                    }
                    Step::Read => {
                        if kernel.rx_packets > 0 {
                            reader.source_mut().flows.insert(key(1), kernel);
                        }
                        reader.source_mut().now_ns = clock;
                        set_totals(&mut reader, total, 0);
                        let snapshot = read(&mut reader, start);
                        let moved: u64 = snapshot.flows.iter().map(|f| f.rx_packets).sum();
                        prop_assert!(moved <= arrived_since_read);
                        arrived_since_read = 0;
                        reported.0 += moved;
                        reported.1 += snapshot.interfaces[0].rx.unattributed_packets;
                    }
                }
            }
            prop_assert_eq!(reported.0 + reported.1, total);
        }

        /// A flow read after every change loses nothing: its deltas sum to all it carried.
        #[test]
        fn a_flow_read_often_enough_is_fully_attributed(batches in prop::collection::vec(1u64..10_000, 1..40)) {
            let (mut reader, start) = reader();
            let mut cumulative = 0;
            let mut attributed = 0;
            for batch in batches {
                cumulative += batch;
                reader.source_mut().flows.insert(key(1), counters(cumulative, 0, 10));
                set_totals(&mut reader, cumulative, cumulative * 100);
                let snapshot = read(&mut reader, start);
                attributed += snapshot.flows[0].rx_packets;
                prop_assert_eq!(snapshot.interfaces[0].rx.unattributed_packets, 0);
            }
            prop_assert_eq!(attributed, cumulative);
        }
    }
}
