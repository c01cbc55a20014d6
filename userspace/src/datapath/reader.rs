//! Turns the kernel's cumulative counters into per-interval deltas.
//!
//! Each read takes the flow table first and the totals second: the programs bump the
//! totals before the flow, so a packet visible in a flow is always visible in the
//! totals too, and `totals - flows` (the unattributed traffic) never goes negative.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use flowmeter_common::{DIR_RX, DIR_TX, FlowCounters, FlowKey, Totals, totals_index};

use super::{
    DirectionTotals, Error, FlowDelta, FlowId, FlowSource, Interface, InterfaceTotals, Snapshot,
};

/// Flows idle this long are removed from the kernel table, so it keeps room.
pub const IDLE_FLOW_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads a [`FlowSource`] once per interval and remembers what it read last.
pub struct Reader<S> {
    source: S,
    interfaces: Vec<(u32, Arc<str>)>,
    /// Each flow's cumulative counters at the previous read.
    previous: HashMap<FlowKey, FlowCounters>,
    /// Per (ifindex, direction): what the previous reads established.
    directions: HashMap<(u32, u32), DirectionState>,
    last_read: Instant,
    idle_timeout_ns: u64,
}

#[derive(Default)]
struct DirectionState {
    totals: Totals,
    /// Packets and bytes handed out in flow deltas since the start.
    attributed: (u64, u64),
    /// Packets and bytes reported as unattributed since the start.
    unattributed: (u64, u64),
}

impl<S: FlowSource> Reader<S> {
    /// A reader whose first interval starts at `started` (when the programs attached).
    pub fn new(source: S, interfaces: &[Interface], started: Instant) -> Self {
        Self {
            source,
            interfaces: interfaces
                .iter()
                .map(|i| (i.ifindex, Arc::from(i.name.as_str())))
                .collect(),
            previous: HashMap::new(),
            directions: HashMap::new(),
            last_read: started,
            idle_timeout_ns: IDLE_FLOW_TIMEOUT.as_nanos() as u64,
        }
    }

    /// Changes how long a flow may stay idle before it is removed from the table.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout_ns = timeout.as_nanos() as u64;
        self
    }

    /// The source, to change what the next read sees (tests, benchmarks).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Reads the maps and returns what moved since the previous read.
    pub fn read(&mut self, at: SystemTime, now: Instant) -> Result<Snapshot, Error> {
        let current = self.source.flows()?;
        let mut attributed: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
        let mut flows = Vec::new();
        for (key, counters) in &current {
            let delta = flow_delta(self.previous.get(key), counters);
            if delta.rx_packets == 0 && delta.tx_packets == 0 {
                continue;
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
                id: FlowId::from_key(key, self.iface_name(key.ifindex)),
                rx_packets: delta.rx_packets,
                rx_bytes: delta.rx_bytes,
                tx_packets: delta.tx_packets,
                tx_bytes: delta.tx_bytes,
                tcp_flags: counters.tcp_flags,
            });
        }
        flows.sort_by(|a, b| a.id.cmp(&b.id));
        self.forget_idle_flows(current)?;

        let mut interfaces = Vec::with_capacity(self.interfaces.len());
        for (ifindex, name) in self.interfaces.clone() {
            let mut direction_totals = [DirectionTotals::default(); 2];
            for (slot, direction) in [DIR_RX, DIR_TX].into_iter().enumerate() {
                let totals = self.source.totals(totals_index(ifindex, direction))?;
                let state = self.directions.entry((ifindex, direction)).or_default();
                let moved = attributed
                    .get(&(ifindex, direction))
                    .copied()
                    .unwrap_or((0, 0));
                direction_totals[slot] = state.advance(totals, moved);
            }
            let [rx, tx] = direction_totals;
            interfaces.push(InterfaceTotals {
                iface: name,
                rx,
                tx,
            });
        }

        let interval = now.saturating_duration_since(self.last_read);
        self.last_read = now;
        Ok(Snapshot {
            at,
            interval,
            flows,
            interfaces,
        })
    }

    fn iface_name(&self, ifindex: u32) -> Arc<str> {
        self.interfaces
            .iter()
            .find(|(index, _)| *index == ifindex)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| Arc::from(ifindex.to_string()))
    }

    /// Keeps `current` as the previous read, minus flows idle for too long, which are
    /// also removed from the kernel table.
    fn forget_idle_flows(
        &mut self,
        mut current: HashMap<FlowKey, FlowCounters>,
    ) -> Result<(), Error> {
        let now_ns = self.source.now_ns();
        let idle: Vec<FlowKey> = current
            .iter()
            .filter(|(_, c)| c.last_seen_ns.saturating_add(self.idle_timeout_ns) < now_ns)
            .map(|(key, _)| *key)
            .collect();
        for key in idle {
            self.source.remove(&key)?;
            current.remove(&key);
        }
        self.previous = current;
        Ok(())
    }
}

impl DirectionState {
    /// Folds in the totals just read and the flow traffic of this interval.
    fn advance(&mut self, totals: Totals, attributed: (u64, u64)) -> DirectionTotals {
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
