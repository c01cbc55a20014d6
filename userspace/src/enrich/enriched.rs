//! What the enrichers hand downstream each interval: the reader's snapshot with every
//! flow paired with its [`Facts`]. The pairing is the type: a flow's facts cannot be
//! read at another flow's index, and there is never a flow without facts.

use crate::datapath::{FlowDelta, FlowId, Snapshot};

use super::Facts;

/// One interval, enriched. Built by [`super::Enricher::enrich`] (or [`Self::from_fn`]
/// in tests and benchmarks); read by the sinks, the console and `audit --watch`.
#[derive(Clone, Debug, PartialEq)]
pub struct EnrichedSnapshot {
    snapshot: Snapshot,
    /// `facts[i]` is about `snapshot.flows[i]`; private, so the two stay in step.
    facts: Vec<Facts>,
    /// Facts of flows that did not move in this interval, whose owner was answered in
    /// it (it was `resolving` when they last moved): a record still open takes them.
    late: Vec<(FlowId, Facts)>,
}

impl EnrichedSnapshot {
    /// Pairs every flow of `snapshot` with the facts `facts_of` gives for it, in order.
    pub fn from_fn(snapshot: Snapshot, facts_of: impl FnMut(&FlowDelta) -> Facts) -> Self {
        let facts = snapshot.flows.iter().map(facts_of).collect();
        Self {
            snapshot,
            facts,
            late: Vec::new(),
        }
    }

    /// Pairs `snapshot`'s flows with `facts`, in order; one fact per flow (panics
    /// otherwise: the enricher and tests build both from the same flows).
    pub(crate) fn from_parts(snapshot: Snapshot, facts: Vec<Facts>) -> Self {
        assert_eq!(snapshot.flows.len(), facts.len(), "one fact per flow");
        Self {
            snapshot,
            facts,
            late: Vec::new(),
        }
    }

    /// With the facts of flows answered late (see [`Self::late`]).
    pub fn with_late(mut self, late: Vec<(FlowId, Facts)>) -> Self {
        self.late = late;
        self
    }

    /// Facts of flows that did not move in this interval but whose owner, `resolving`
    /// when they last moved, was answered in it.
    pub fn late(&self) -> &[(FlowId, Facts)] {
        &self.late
    }

    /// The interval as the reader saw it: its time, length, interface totals and flows.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Every flow with its facts, in the snapshot's order.
    pub fn flows(&self) -> impl ExactSizeIterator<Item = (&FlowDelta, &Facts)> + Clone {
        self.snapshot.flows.iter().zip(&self.facts)
    }

    /// The flow at `index` of the snapshot, with its facts.
    pub fn flow(&self, index: usize) -> Option<(&FlowDelta, &Facts)> {
        Some((self.snapshot.flows.get(index)?, self.facts.get(index)?))
    }

    /// The flows with their facts, owned (for a consumer that keeps the facts, like
    /// the console's cache); read [`Self::snapshot`] first for the rest.
    pub fn into_flows(self) -> impl Iterator<Item = (FlowDelta, Facts)> {
        self.snapshot.flows.into_iter().zip(self.facts)
    }
}
