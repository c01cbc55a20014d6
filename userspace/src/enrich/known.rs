//! What the enricher already knows about each flow: its owner, its remote's location and
//! its judgement without the interval's fan-out, with what that judgement was made from.
//! [`super::Enricher`] reads it for every flow of every interval and recomputes only
//! what can have changed; entries of flows the reader stopped reporting are forgotten,
//! so memory follows the live flows.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::{datapath::FlowId, shrink};

use super::{Facts, sockets::Owner};

/// One flow's facts, and when and from what they were found.
#[derive(Debug)]
pub struct Known {
    /// Owner, location, and the judgement for an interval without a flood.
    pub facts: Facts,
    /// When the socket table was last asked for the owner.
    pub owner_checked: Instant,
    /// When the reader last reported the flow.
    pub seen: Instant,
    /// The host has sent on the flow (in any interval so far).
    pub sent: bool,
    /// What the judgement was made from; another value makes it stale.
    pub made_from: MadeFrom,
}

/// The inputs of a cached judgement that can change while the flow lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadeFrom {
    /// The owning process's facts' generation (`0` with no process).
    pub process: u64,
    /// The rules' and persistence points' generation.
    pub rules: u64,
    pub sent: bool,
}

impl Known {
    /// The owner is not a process, and the socket table is due to be asked again.
    pub fn owner_due(&self, now: Instant, retry_unowned: Duration) -> bool {
        !matches!(self.facts.owner, Owner::Process(_))
            && now.saturating_duration_since(self.owner_checked) >= retry_unowned
    }
}

/// Flows the reader reported lately, by id.
#[derive(Debug, Default)]
pub struct KnownFlows {
    /// Fx hashing: probed once for every flow of every interval.
    flows: FxHashMap<FlowId, Known>,
    last_sweep: Option<Instant>,
}

/// How often flows not reported for a while are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Beyond this many entries more than twice the interval's flows, a sweep also forgets
/// flows not reported in this interval (a flood of short flows).
const SLACK: usize = 4096;

impl KnownFlows {
    pub fn get_mut(&mut self, flow: &FlowId) -> Option<&mut Known> {
        self.flows.get_mut(flow)
    }

    pub fn insert(&mut self, flow: FlowId, known: Known) {
        self.flows.insert(flow, known);
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Forgets flows not reported for `keep`, every [`SWEEP_EVERY`]; and when the cache
    /// holds more than twice the `live` flows of this interval (plus some slack), the
    /// flows not reported now. Amortised: a sweep follows at least `live` insertions
    /// or [`SWEEP_EVERY`].
    pub fn sweep(&mut self, now: Instant, keep: Duration, live: usize) {
        let oversized = self.flows.len() > 2 * live + SLACK;
        let due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_EVERY);
        if !(due || oversized) {
            return;
        }
        self.last_sweep = Some(now);
        self.flows
            .retain(|_, known| now.saturating_duration_since(known.seen) < keep);
        if self.flows.len() > 2 * live + SLACK {
            self.flows.retain(|_, known| known.seen >= now);
        }
        shrink::to_live(&mut self.flows);
    }
}
