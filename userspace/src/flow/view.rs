//! Lines for a screen: flows summed into groups in one pass, then only the top N sorted.
//! The sums of an address grouping are kept until the next ingest, so a key press that
//! only sorts again does not walk the flows.

use std::{cmp::Ordering, collections::HashMap, hash::Hash};

use rustc_hash::FxHashMap;

use super::{
    aggregator::{Aggregator, Flow},
    group::{AddressKey, GroupBy, GroupKey, OwnerOf},
    rates::{Peak, Rates, SortBy, Totals},
    window::{RxTx, RxTxF, Scales, WINDOWS},
};
use crate::{datapath::FlowId, shrink};

/// One line: a group or a flow, and its numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<K> {
    pub key: K,
    /// Flows in the line (1 for a flow's own line).
    pub flows: usize,
    pub tx: Rates,
    pub rx: Rates,
    /// `rx + tx`, except `peak`: the highest 2 s rate of both together.
    pub total: Rates,
}

impl<K> Row<K> {
    fn new(key: K, flows: usize, totals: Totals) -> Self {
        let Totals { tx, rx, total } = totals;
        Self {
            key,
            flows,
            tx,
            rx,
            total,
        }
    }

    pub fn totals(&self) -> Totals {
        Totals {
            tx: self.tx,
            rx: self.rx,
            total: self.total,
        }
    }

    pub fn value(&self, sort: SortBy) -> f64 {
        self.totals().value(sort)
    }
}

/// The first lines of a sorted view, and how many lines there were before the cut.
#[derive(Clone, Debug, PartialEq)]
pub struct Top<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

impl Aggregator {
    /// The `limit` highest lines by `sort`, ties in key order, so lines keep their places
    /// between refreshes when their numbers do. One pass sums the flows into groups; only
    /// the lines kept are sorted. `owners` is asked only by the owner groupings.
    pub fn top<P>(
        &self,
        group_by: GroupBy,
        sort: SortBy,
        limit: usize,
        owners: &impl OwnerOf<P>,
    ) -> Top<Row<GroupKey<P>>>
    where
        P: Clone + Eq + Hash + Ord,
    {
        let scales = self.scales();
        match group_by {
            GroupBy::Process => self.top_by_owner(
                |flow| owners.process(flow),
                GroupKey::Process,
                sort,
                limit,
                &scales,
            ),
            GroupBy::Container => self.top_by_owner(
                |flow| owners.container(flow),
                GroupKey::Container,
                sort,
                limit,
                &scales,
            ),
            address => {
                let table = address.address_index().expect("an address grouping");
                self.top_by_address(table, sort, limit, &scales)
            }
        }
    }

    /// Every flow as its own line, sorted and cut like [`top`](Self::top).
    pub fn flows(&self, sort: SortBy, limit: usize) -> Top<Row<FlowId>> {
        self.top_flows(sort, limit, |_| true)
    }

    /// The flows of one line of [`top`](Self::top), each with its own numbers (for a
    /// detail screen). Pass the same `owners` as to `top`.
    pub fn flows_of<P: PartialEq>(
        &self,
        group: &GroupKey<P>,
        sort: SortBy,
        limit: usize,
        owners: &impl OwnerOf<P>,
    ) -> Top<Row<FlowId>> {
        self.top_flows(sort, limit, |flow| group.contains(flow, owners))
    }

    /// The flows of the lines `keys` of an address grouping, each with the position of
    /// its line in `keys`: one pass over the flows comparing group indices, so that a
    /// screen's few lines cost no hashing per flow. `None` for process lines (which the
    /// aggregator does not keep).
    pub fn flows_of_lines<P>(&self, keys: &[GroupKey<P>]) -> Option<Vec<(usize, &FlowId)>> {
        let group_by = keys.first()?.group_by();
        let table = group_by.address_index()?;
        let groups = &self.groups[table];
        let mut line_of: FxHashMap<u32, usize> = FxHashMap::default();
        for (line, key) in keys.iter().enumerate() {
            let address = AddressKey::from_group_key(key)?;
            if let Some(group) = groups.find(&address) {
                line_of.entry(group).or_insert(line);
            }
        }
        let members = self
            .flows
            .iter()
            .filter_map(|(_, flow)| {
                let line = *line_of.get(&flow.groups[table])?;
                Some((line, &flow.id))
            })
            .collect();
        Some(members)
    }

    fn top_by_address<P>(
        &self,
        table: usize,
        sort: SortBy,
        limit: usize,
        scales: &Scales,
    ) -> Top<Row<GroupKey<P>>> {
        let groups = &self.groups[table].groups;
        let mut cache = self.sums.borrow_mut();
        if cache.of != Some((self.generation, table)) {
            cache.of = Some((self.generation, table));
            cache.sums.clear();
            cache.sums.resize(groups.index_bound(), GroupSum::default());
            shrink::to_live(&mut cache.sums);
            for (index, flow) in self.flows.iter() {
                let window_bytes = self.flow_window_bytes(index, scales);
                cache.sums[flow.groups[table] as usize].add(flow, window_bytes);
            }
        }
        let sums = &cache.sums;
        let totals = |index: u32| sums[index as usize].totals(scales, groups[index].peak);
        let candidates = groups
            .iter()
            .map(|(index, _)| (totals(index).value(sort), index))
            .collect();
        let best = best(candidates, limit, |a, b| groups[a].key.cmp(&groups[b].key));
        let rows = best
            .into_iter()
            .map(|index| {
                let key = groups[index].key.to_group_key();
                Row::new(key, sums[index as usize].flows, totals(index))
            })
            .collect();
        Top {
            rows,
            total: groups.len(),
        }
    }

    /// The lines of an owner grouping: `owner_of` tells each flow's owner, `key` makes
    /// the line's key of it.
    fn top_by_owner<O, P>(
        &self,
        owner_of: impl Fn(&FlowId) -> Option<O>,
        key: impl Fn(Option<O>) -> GroupKey<P>,
        sort: SortBy,
        limit: usize,
        scales: &Scales,
    ) -> Top<Row<GroupKey<P>>>
    where
        O: Clone + Eq + Hash + Ord,
    {
        let mut index: HashMap<Option<O>, u32> = HashMap::new();
        let mut groups: Vec<(Option<O>, GroupSum)> = Vec::new();
        for (flow_index, flow) in self.flows.iter() {
            let owner = owner_of(&flow.id);
            let group = *index.entry(owner).or_insert_with_key(|owner| {
                groups.push((owner.clone(), GroupSum::default()));
                (groups.len() - 1) as u32
            });
            let window_bytes = self.flow_window_bytes(flow_index, scales);
            groups[group as usize].1.add(flow, window_bytes);
        }
        // Owners are known only downstream, so no owner line is tracked between
        // ingests: its peak is the highest of its flows' peaks and its own current 2 s
        // rate, a lower bound of the true peak.
        let totals = |index: u32| {
            let sum = &groups[index as usize].1;
            let mut totals = sum.totals(scales, sum.flow_peak);
            for rates in [&mut totals.tx, &mut totals.rx, &mut totals.total] {
                rates.peak = rates.peak.max(rates.last2);
            }
            totals
        };
        let candidates = (0..groups.len() as u32)
            .map(|index| (totals(index).value(sort), index))
            .collect();
        let best = best(candidates, limit, |a, b| {
            groups[a as usize].0.cmp(&groups[b as usize].0)
        });
        let rows = best
            .into_iter()
            .map(|index| {
                let (owner, sum) = &groups[index as usize];
                Row::new(key(owner.clone()), sum.flows, totals(index))
            })
            .collect();
        Top {
            rows,
            total: groups.len(),
        }
    }

    fn top_flows(
        &self,
        sort: SortBy,
        limit: usize,
        keep: impl Fn(&FlowId) -> bool,
    ) -> Top<Row<FlowId>> {
        let scales = self.scales();
        let candidates: Vec<_> = self
            .flows
            .iter()
            .filter(|(_, flow)| keep(&flow.id))
            .map(|(index, _)| (self.flow_totals(index, &scales).value(sort), index))
            .collect();
        let total = candidates.len();
        let best = best(candidates, limit, |a, b| {
            self.flows[a].id.cmp(&self.flows[b].id)
        });
        let rows = best
            .into_iter()
            .map(|index| {
                let id = self.flows[index].id.clone();
                Row::new(id, 1, self.flow_totals(index, &scales))
            })
            .collect();
        Top { rows, total }
    }
}

/// The group sums of one address grouping as of one ingest: a second view of the same
/// interval (another sort, a key press) only ranks them again.
#[derive(Debug, Default)]
pub(super) struct GroupSums {
    /// The aggregator's generation and the grouping's table they were summed for.
    of: Option<(u64, usize)>,
    sums: Vec<GroupSum>,
}

/// A group's flows added up for one view.
#[derive(Clone, Copy, Debug, Default)]
struct GroupSum {
    flows: usize,
    window_bytes: [RxTxF; WINDOWS.len()],
    bytes: RxTx,
    packets: RxTx,
    /// The highest of the flows' own peaks.
    flow_peak: Peak,
}

impl GroupSum {
    fn add(&mut self, flow: &Flow, window_bytes: [RxTxF; WINDOWS.len()]) {
        self.flows += 1;
        for (sum, bytes) in self.window_bytes.iter_mut().zip(window_bytes) {
            *sum += bytes;
        }
        self.bytes += flow.counts.bytes;
        self.packets += flow.counts.packets;
        self.flow_peak = self.flow_peak.max(flow.counts.peak);
    }

    fn totals(&self, scales: &Scales, peak: Peak) -> Totals {
        Totals::new(self.window_bytes, scales, self.bytes, self.packets, peak)
    }
}

/// The indices of the `limit` best `(sort value, index)` candidates, best first: the
/// highest value, ties in key order. Selects before sorting, so the cost of a view with
/// many lines is linear plus the sort of the lines kept.
fn best(
    mut candidates: Vec<(f64, u32)>,
    limit: usize,
    key_order: impl Fn(u32, u32) -> Ordering,
) -> Vec<u32> {
    let order =
        |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then_with(|| key_order(a.1, b.1));
    if limit == 0 {
        return Vec::new();
    }
    if candidates.len() > limit {
        candidates.select_nth_unstable_by(limit - 1, order);
        candidates.truncate(limit);
    }
    candidates.sort_unstable_by(order);
    candidates.into_iter().map(|(_, index)| index).collect()
}
