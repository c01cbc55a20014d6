//! Finds a snapshot's flows among the known ones by walking both in `FlowId` order. The
//! reader sorts its snapshots, so matching 100k flows is one pass through memory in
//! order, where a hash map would take 100k probes at random places (half the cost of an
//! ingest, measured).

use crate::{
    datapath::{FlowDelta, FlowId},
    shrink,
};

/// The known flows in `FlowId` order, each with its index in the aggregator's slab.
#[derive(Debug, Default)]
pub(super) struct FlowIndex {
    sorted: Vec<(FlowId, u32)>,
}

impl FlowIndex {
    /// Sets `found[i]` to the index of `deltas[i]`'s flow, calling `add` for each flow
    /// not known yet. Unsorted deltas are sorted first (by position, not moved).
    pub fn resolve(
        &mut self,
        deltas: &[FlowDelta],
        found: &mut Vec<u32>,
        add: impl FnMut(&FlowId) -> u32,
    ) {
        found.clear();
        found.resize(deltas.len(), 0);
        if deltas.is_sorted_by(|a, b| a.id <= b.id) {
            self.walk(deltas, 0..deltas.len(), found, add);
        } else {
            let mut order: Vec<usize> = (0..deltas.len()).collect();
            order.sort_by(|&a, &b| deltas[a].id.cmp(&deltas[b].id));
            self.walk(deltas, order.into_iter(), found, add);
        }
    }

    /// Drops the flows that are no longer `live`; call it before any index is reused.
    pub fn retain(&mut self, live: impl Fn(u32) -> bool) {
        self.sorted.retain(|&(_, index)| live(index));
        shrink::to_live(&mut self.sorted);
    }

    fn walk(
        &mut self,
        deltas: &[FlowDelta],
        in_order: impl Iterator<Item = usize>,
        found: &mut [u32],
        mut add: impl FnMut(&FlowId) -> u32,
    ) {
        let mut added: Vec<(FlowId, u32)> = Vec::new();
        let mut cursor = 0;
        for position in in_order {
            let id = &deltas[position].id;
            cursor = self.seek(cursor, id);
            found[position] = match (self.sorted.get(cursor), added.last()) {
                (Some((known, index)), _) if known == id => *index,
                // The same new flow twice in one snapshot.
                (_, Some((new, index))) if new == id => *index,
                _ => {
                    let index = add(id);
                    added.push((id.clone(), index));
                    index
                }
            };
        }
        if !added.is_empty() {
            // Two sorted runs: the standard stable sort merges them in linear time.
            self.sorted.append(&mut added);
            self.sorted.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    /// The position of the first known flow at or after `id`, searching from `from`
    /// forwards: one step when the next delta is the next known flow, a gallop when
    /// many flows did not move.
    fn seek(&self, from: usize, id: &FlowId) -> usize {
        let rest = &self.sorted[from..];
        let mut end = 1;
        while end < rest.len() && rest[end].0 < *id {
            end *= 2;
        }
        from + rest[..end.min(rest.len())].partition_point(|(known, _)| known < id)
    }
}
