//! The latest facts (process, country, verdict) of every flow the aggregator remembers.
//!
//! Facts arrive with each snapshot for the flows that moved in it; a flow keeps the facts
//! of the last interval it moved in. The aggregator forgets a flow idle for
//! [`FORGET_AFTER`] (or, past its flow limit, the flows idle longest first), and this
//! cache forgets it by the same rules, so its size follows the aggregator's.

use std::{sync::Arc, time::Duration};

use rustc_hash::FxHashMap;

use super::state::ProcessKey;
use crate::{
    datapath::{FlowDelta, FlowId},
    enrich::Facts,
    flow::{FORGET_AFTER, OwnerOf},
    shrink,
};

/// What is known about one flow.
#[derive(Clone, Debug)]
pub struct Known {
    pub facts: Facts,
    /// The line key of its process, made once here rather than at every refresh.
    pub process: Option<ProcessKey>,
    /// Its process's container, else its systemd unit: the line key when grouping by
    /// container.
    pub container: Option<Arc<str>>,
    /// Bytes both ways since it was first seen: which process or country weighs most in
    /// a line of many flows.
    pub bytes: u64,
    /// The aggregator's elapsed time when it last moved.
    pub last_seen: Duration,
}

#[derive(Debug, Default)]
pub struct FactsCache {
    /// Fx hashing: probed for every flow of every interval.
    flows: FxHashMap<FlowId, Known>,
}

impl FactsCache {
    /// Records the facts of one interval's flows. `now` is the aggregator's elapsed time
    /// after ingesting the interval, `live` its flow count.
    pub fn update(
        &mut self,
        flows: impl IntoIterator<Item = (FlowDelta, Facts)>,
        now: Duration,
        live: usize,
    ) {
        // One key per process and update, shared by its flows.
        let mut keys: FxHashMap<u32, ProcessKey> = FxHashMap::default();
        for (delta, facts) in flows {
            let process = facts.owner.process().map(|process| {
                let key = keys.entry(process.pid).or_insert_with(|| ProcessKey {
                    comm: Arc::from(process.comm.as_str()),
                    pid: process.pid,
                });
                if *key.comm != *process.comm {
                    key.comm = Arc::from(process.comm.as_str());
                }
                key.clone()
            });
            let container = facts.owner.process().and_then(|process| {
                let cgroup = &process.cgroup;
                cgroup.container.clone().or_else(|| cgroup.unit.clone())
            });
            let moved = delta.rx_bytes + delta.tx_bytes;
            match self.flows.get_mut(&delta.id) {
                Some(known) => {
                    known.facts = facts;
                    known.process = process;
                    known.container = container;
                    known.bytes += moved;
                    known.last_seen = now;
                }
                None => {
                    self.flows.insert(
                        delta.id,
                        Known {
                            facts,
                            process,
                            container,
                            bytes: moved,
                            last_seen: now,
                        },
                    );
                }
            }
        }
        self.forget(now, live);
    }

    pub fn get(&self, flow: &FlowId) -> Option<&Known> {
        self.flows.get(flow)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowId, &Known)> {
        self.flows.iter()
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    fn forget(&mut self, now: Duration, live: usize) {
        self.flows
            .retain(|_, known| now.saturating_sub(known.last_seen) < FORGET_AFTER);
        let excess = self.flows.len().saturating_sub(live);
        if excess > 0 {
            let mut by_age: Vec<(Duration, FlowId)> = self
                .flows
                .iter()
                .map(|(id, known)| (known.last_seen, id.clone()))
                .collect();
            by_age.select_nth_unstable_by(excess - 1, |a, b| a.0.cmp(&b.0));
            for (_, id) in &by_age[..excess] {
                self.flows.remove(id);
            }
        }
        shrink::to_live(&mut self.flows);
    }
}

/// The owner groupings ask the facts of each flow.
impl OwnerOf<ProcessKey> for FactsCache {
    fn process(&self, flow: &FlowId) -> Option<ProcessKey> {
        self.flows.get(flow)?.process.clone()
    }

    fn container(&self, flow: &FlowId) -> Option<Arc<str>> {
        self.flows.get(flow)?.container.clone()
    }
}

/// One flow's own facts, whatever flow is asked.
impl OwnerOf<ProcessKey> for Known {
    fn process(&self, _: &FlowId) -> Option<ProcessKey> {
        self.process.clone()
    }

    fn container(&self, _: &FlowId) -> Option<Arc<str>> {
        self.container.clone()
    }
}
