//! Folds snapshots into per-flow meters, per-interface meters and group peaks.

use std::{
    cell::RefCell,
    collections::HashMap,
    mem,
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{
    group::{AddressKey, GroupBy, GroupTable},
    index::FlowIndex,
    meter::{Counts, Meter},
    rates::Totals,
    slab::Slab,
    unattributed::Unattributed,
    view::GroupSums,
    window::{RxTx, RxTxF, SHORTEST, Scales, Timeline, WINDOWS, WindowTable},
};
use crate::{
    datapath::{FlowId, Snapshot},
    shrink,
};

/// A flow idle this long is forgotten, with its cumulative amounts. Longer than the
/// longest window, so a forgotten flow has no traffic left in any rate.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);

/// How many flows an aggregator keeps unless told otherwise. A flow that moves every
/// second takes about 1.3 KB with its 40 s of history and its groups (`benches/aggregate.rs`).
pub const DEFAULT_FLOW_LIMIT: usize = 500_000;

/// iftop's arithmetic over the reader's snapshots: see the [module](super) documentation.
#[derive(Debug)]
pub struct Aggregator {
    timeline: Timeline,
    flow_index: FlowIndex,
    pub(super) flows: Slab<Flow>,
    /// The flows' window sums, by the flows' indices.
    flow_windows: WindowTable,
    /// One table per [`GroupBy::ADDRESS`] grouping.
    pub(super) groups: [GroupTable; GroupBy::ADDRESS.len()],
    interface_index: HashMap<Arc<str>, u32>,
    interfaces: Vec<Interface>,
    all: Meter,
    /// Packets in no flow, of all interfaces and both directions, since the start.
    unattributed: Unattributed,
    at: Option<SystemTime>,
    flow_limit: usize,
    /// Scratch space of each ingest, kept to reuse the allocations.
    group_bytes: [Vec<RxTxF>; GroupBy::ADDRESS.len()],
    idle: Vec<u32>,
    found: Vec<u32>,
    /// Ingests so far: tells views whether what they summed is still current.
    pub(super) generation: u64,
    /// The group sums of the latest view, reused by the next view of the same interval
    /// (a key press: another sort, the selection moved).
    pub(super) sums: RefCell<GroupSums>,
}

#[derive(Debug)]
pub(super) struct Flow {
    pub id: FlowId,
    pub counts: Counts,
    /// The elapsed time at the end of the last interval the flow moved in.
    pub last_active: Duration,
    /// Its group in each table of `Aggregator::groups`.
    pub groups: [u32; GroupBy::ADDRESS.len()],
}

#[derive(Debug)]
struct Interface {
    name: Arc<str>,
    meter: Meter,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    pub fn new() -> Self {
        Self::with_flow_limit(DEFAULT_FLOW_LIMIT)
    }

    /// An aggregator that keeps at most `limit` flows: past it, the flows idle longest
    /// are forgotten first (their traffic stays in the interface totals).
    pub fn with_flow_limit(limit: usize) -> Self {
        Self {
            timeline: Timeline::default(),
            flow_index: FlowIndex::default(),
            flows: Slab::default(),
            flow_windows: WindowTable::default(),
            groups: Default::default(),
            interface_index: HashMap::new(),
            interfaces: Vec::new(),
            all: Meter::default(),
            unattributed: Unattributed::default(),
            at: None,
            flow_limit: limit,
            group_bytes: Default::default(),
            idle: Vec::new(),
            found: Vec::new(),
            generation: 0,
            sums: RefCell::default(),
        }
    }

    /// Adds one interval. Snapshots must come in order; time is taken only from their
    /// `interval`s (and `at`, kept for display).
    pub fn ingest(&mut self, snapshot: &Snapshot) {
        self.generation += 1;
        let mut slot = self.timeline.begin(snapshot.interval);
        // History is most of the memory: no room to spare beyond one entry per flow.
        slot.flows.reserve_exact(snapshot.flows.len());
        let now = slot.end;
        let (flows, windows, groups) = (&mut self.flows, &mut self.flow_windows, &mut self.groups);
        self.flow_index
            .resolve(&snapshot.flows, &mut self.found, |id| {
                new_flow(flows, windows, groups, id)
            });
        for (delta, &index) in snapshot.flows.iter().zip(&self.found) {
            let flow = &mut self.flows[index];
            let bytes = RxTx {
                rx: delta.rx_bytes,
                tx: delta.tx_bytes,
            };
            let packets = RxTx {
                rx: delta.rx_packets,
                tx: delta.tx_packets,
            };
            flow.counts.record(bytes, packets);
            flow.last_active = now;
            self.flow_windows.add(index, bytes);
            slot.push_flow(index, bytes);
        }
        for totals in &snapshot.interfaces {
            let index = self.interface(&totals.iface);
            let bytes = RxTx {
                rx: totals.rx.bytes,
                tx: totals.tx.bytes,
            };
            let packets = RxTx {
                rx: totals.rx.packets,
                tx: totals.tx.packets,
            };
            self.interfaces[index as usize].meter.record(bytes, packets);
            self.all.record(bytes, packets);
            self.unattributed.add(&totals.rx);
            self.unattributed.add(&totals.tx);
            slot.interfaces.push((index, bytes));
            slot.all += bytes;
        }

        let (flows, interfaces, all) =
            (&mut self.flow_windows, &mut self.interfaces, &mut self.all);
        self.timeline.push(slot, |window, change, slot| {
            for entry in &slot.flows {
                flows.apply(window, change, entry.flow, entry.bytes());
            }
            for &(interface, bytes) in &slot.interfaces {
                let windows = &mut interfaces[interface as usize].meter.windows;
                windows.apply(window, change, bytes);
            }
            all.windows.apply(window, change, slot.all);
        });
        self.at = Some(snapshot.at);

        let scales = self.timeline.scales();
        for interface in &mut self.interfaces {
            interface.meter.raise_peak(&scales);
        }
        self.all.raise_peak(&scales);
        self.sweep(&scales);
        self.evict_over_limit();
    }

    /// The sum of the intervals ingested so far.
    pub fn elapsed(&self) -> Duration {
        self.timeline.elapsed()
    }

    /// The end of the last interval ingested.
    pub fn at(&self) -> Option<SystemTime> {
        self.at
    }

    /// Flows remembered: moved within [`FORGET_AFTER`] and not evicted.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// All interfaces together, from the interfaces' exact totals (which include traffic
    /// in no flow); never forgets.
    pub fn totals(&self) -> Totals {
        self.all.totals(&self.timeline.scales())
    }

    /// How much of all interfaces' traffic since the start was in no flow, and why.
    pub fn unattributed(&self) -> Unattributed {
        self.unattributed
    }

    /// Each interface's totals, by name.
    pub fn interfaces(&self) -> Vec<(Arc<str>, Totals)> {
        let scales = self.timeline.scales();
        let mut interfaces: Vec<_> = self
            .interfaces
            .iter()
            .map(|interface| (interface.name.clone(), interface.meter.totals(&scales)))
            .collect();
        interfaces.sort_by(|a, b| a.0.cmp(&b.0));
        interfaces
    }

    pub(super) fn scales(&self) -> Scales {
        self.timeline.scales()
    }

    /// The bytes of flow `index` in each window.
    pub(super) fn flow_window_bytes(&self, index: u32, scales: &Scales) -> [RxTxF; WINDOWS.len()] {
        self.flow_windows.all_bytes(index, scales)
    }

    pub(super) fn flow_totals(&self, index: u32, scales: &Scales) -> Totals {
        let window_bytes = self.flow_window_bytes(index, scales);
        self.flows[index].counts.totals(window_bytes, scales)
    }

    /// Room the tables by flow and by group hold, in entries (for tests of the memory
    /// given back).
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        let groups: usize = self.groups.iter().map(|t| t.groups.index_bound()).sum();
        self.flows.index_bound() + groups
    }

    #[cfg(test)]
    pub(super) fn timeline_slots(&self) -> usize {
        self.timeline.slots()
    }

    fn interface(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&index) = self.interface_index.get(name) {
            return index;
        }
        let index = u32::try_from(self.interfaces.len()).expect("fewer than 2^32 interfaces");
        self.interfaces.push(Interface {
            name: name.clone(),
            meter: Meter::default(),
        });
        self.interface_index.insert(name.clone(), index);
        index
    }

    /// After each ingest, one pass over the flows: raises flow and group peaks to their
    /// current 2 s rates, and forgets flows idle for [`FORGET_AFTER`]. A rate can only
    /// rise with new traffic, so sampling once per ingest sees every peak.
    fn sweep(&mut self, scales: &Scales) {
        let now = self.timeline.elapsed();
        let scale = &scales[SHORTEST];
        for (table, bytes) in self.groups.iter().zip(&mut self.group_bytes) {
            bytes.clear();
            bytes.resize(table.groups.index_bound(), RxTxF::default());
            shrink::to_live(bytes);
        }
        self.idle.clear();
        for (index, flow) in self.flows.iter_mut() {
            if now - flow.last_active >= FORGET_AFTER {
                self.idle.push(index);
                continue;
            }
            let bytes = self.flow_windows.bytes(SHORTEST, index, scale);
            if bytes.is_zero() {
                continue;
            }
            flow.counts.raise_peak(bytes, scales);
            for (group_bytes, group) in self.group_bytes.iter_mut().zip(flow.groups) {
                group_bytes[group as usize] += bytes;
            }
        }
        for (table, bytes) in self.groups.iter_mut().zip(&self.group_bytes) {
            for (index, group) in table.groups.iter_mut() {
                let bytes = bytes[index as usize];
                group.peak.raise(scale.rate(bytes.rx), scale.rate(bytes.tx));
            }
        }
        let idle = mem::take(&mut self.idle);
        for &index in &idle {
            self.forget(index);
        }
        if !idle.is_empty() {
            self.flow_index.retain(|index| self.flows.contains(index));
            self.tidy();
        }
        self.idle = idle;
    }

    /// After flows are forgotten: the tables by flow and by group give back the room
    /// they no longer need (a flood's), once no history or index names the flows.
    fn tidy(&mut self) {
        self.flows.tidy();
        self.flow_windows.truncate(self.flows.index_bound());
        for table in &mut self.groups {
            table.tidy();
        }
        shrink::to_live(&mut self.idle);
        shrink::to_live(&mut self.found);
    }

    /// Keeps the flow count within the limit by forgetting the flows idle longest (ties:
    /// the lower index, for determinism), history and all.
    fn evict_over_limit(&mut self) {
        let excess = self.flows.len().saturating_sub(self.flow_limit);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(Duration, u32)> = self
            .flows
            .iter()
            .map(|(index, flow)| (flow.last_active, index))
            .collect();
        by_age.select_nth_unstable(excess - 1);
        let mut evicted = vec![false; self.flows.index_bound()];
        for &(_, index) in &by_age[..excess] {
            evicted[index as usize] = true;
            self.forget(index);
        }
        // Before any index is reused by the next ingest.
        self.timeline.remove_flows(|flow| evicted[flow as usize]);
        self.flow_index.retain(|index| !evicted[index as usize]);
        self.tidy();
    }

    /// Forgets a flow, but not its place in the flow index or the history: the caller
    /// removes those.
    fn forget(&mut self, index: u32) {
        let flow = self.flows.remove(index);
        for (table, group) in self.groups.iter_mut().zip(flow.groups) {
            table.leave(group);
        }
    }
}

/// Adds flow `id` (new) and puts it in its groups; returns its index.
fn new_flow(
    flows: &mut Slab<Flow>,
    windows: &mut WindowTable,
    groups: &mut [GroupTable; GroupBy::ADDRESS.len()],
    id: &FlowId,
) -> u32 {
    let groups = std::array::from_fn(|table| {
        groups[table].join(AddressKey::of(GroupBy::ADDRESS[table], id))
    });
    let index = flows.insert(Flow {
        id: id.clone(),
        counts: Counts::default(),
        last_active: Duration::ZERO,
        groups,
    });
    windows.reset(index);
    index
}
