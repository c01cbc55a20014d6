//! Flow records, as a flow exporter writes them: one record per flow when it ends (idle
//! for the idle timeout, or a TCP FIN/RST and then an interval without traffic), and one
//! at most every active timeout while it lasts. Each record counts what its flow moved
//! since its previous record (NetFlow/IPFIX delta semantics), between the start of the
//! first interval and the end of the last interval it moved in. Its `end` is what the
//! wall clock said at that last end and its `start` is `end` less the real time between
//! the two (the intervals' monotonic lengths), so a wall-clock step makes no record
//! longer, shorter or negative.
//!
//! [`FlowRecords`] turns the enriched intervals into [`FlowRecord`] values; it knows
//! nothing of JSON. `LogSink` writes them as `flow` lines of schema v2
//! ([`FlowRecord::wire`]); the IPFIX exporter takes the same values ([`RecordTap`]).
//!
//! Cost follows what changed: a flow that moved costs one hash lookup; a flow that did
//! not move costs nothing until its idle check comes due, at most once per idle timeout.
//! The table holds one entry per live flow and forgets it with its final record; a flow
//! the kernel let go from its full table ends at once (`evicted`), so a flood of new
//! flows never holds more open records than the kernel table has flows.

use std::{
    collections::BTreeMap,
    mem,
    time::{Duration, SystemTime},
};

use rustc_hash::FxHashMap;

use super::{
    moment,
    schema::{self, FlowRecordLine},
};
use crate::{
    datapath::{FlowDelta, FlowId},
    enrich::{EnrichedSnapshot, Facts, coverage::Gap},
    shrink,
};

const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;

/// `--idle-timeout` and `--active-timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A flow that has not moved for this long has ended.
    pub idle: Duration,
    /// A flow that lasts gets a record about this often (to the nearest interval).
    pub active: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(15),
            active: Duration::from_secs(60),
        }
    }
}

/// Why a record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The flow did not move for the idle timeout: it ended.
    Idle,
    /// The flow is still running: the active timeout cut a record; more follow.
    Active,
    /// A TCP FIN was seen, then an interval without traffic: it ended.
    Fin,
    /// A TCP RST was seen, then an interval without traffic: it ended.
    Rst,
    /// `log` stopped (signal or `--duration`): every open flow is written.
    Stop,
    /// The kernel let the flow go from its full table: its record ends with what was
    /// read of it (later traffic under its key is a new flow), so the open records are
    /// never more than the kernel table holds.
    Evicted,
}

impl EndReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Active => "active",
            Self::Fin => "fin",
            Self::Rst => "rst",
            Self::Stop => "stop",
            Self::Evicted => "evicted",
        }
    }
}

/// One flow record: what a flow moved since its previous record.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRecord {
    pub id: FlowId,
    /// The start of the first interval counted: `end` less the record's real length,
    /// so the two are that length apart even if the wall clock was stepped in between.
    pub start: SystemTime,
    /// The end of the last interval counted (the last one the flow moved in), as the
    /// wall clock said then.
    pub end: SystemTime,
    pub counts: Counts,
    /// TCP: the OR of every flag byte since the flow started, as the datapath keeps it.
    pub tcp_flags: u8,
    pub end_reason: EndReason,
    /// What the enrichers knew of the flow: the latest interval's, but see
    /// [`takes_new_facts`].
    pub facts: Facts,
}

impl FlowRecord {
    /// The `flow` line of schema v2.
    pub fn wire(&self) -> FlowRecordLine<'_> {
        FlowRecordLine {
            iface: &self.id.iface,
            key: schema::FlowKey::new(&self.id),
            start: schema::timestamp(self.start),
            end: schema::timestamp(self.end),
            end_reason: self.end_reason.label(),
            counts: schema::FlowCounts {
                rx_packets: self.counts.rx_packets,
                rx_bytes: self.counts.rx_bytes,
                tx_packets: self.counts.tx_packets,
                tx_bytes: self.counts.tx_bytes,
                tcp_flags: schema::tcp_flags(self.id.proto, self.tcp_flags),
            },
            facts: schema::FlowFacts::new(&self.facts),
            no_process: Gap::of(&self.facts.owner).map(Gap::name),
        }
    }
}

/// Something besides the log that takes every flow record the log writes (the IPFIX
/// exporter): `LogSink` hands each one over as it writes it, and flushes it with the
/// log's batch.
pub trait RecordTap: Send {
    fn record(&mut self, record: &FlowRecord);
    /// The log committed a batch: send what is gathered. Returns lines for stderr.
    fn flush(&mut self) -> Vec<String>;
}

/// Packets and bytes each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

impl Counts {
    fn add(&mut self, flow: &FlowDelta) {
        self.rx_packets += flow.rx_packets;
        self.rx_bytes += flow.rx_bytes;
        self.tx_packets += flow.tx_packets;
        self.tx_bytes += flow.tx_bytes;
    }
}

/// A flow whose record is open.
struct Open {
    /// Tells this incarnation from an earlier one of the same key in the checks below.
    generation: u64,
    /// The wall clock at the end of the last interval the flow moved in.
    end: SystemTime,
    /// Elapsed time at the start of the record's first interval.
    began: Duration,
    /// Elapsed time at the end of the last interval the flow moved in.
    last_moved: Duration,
    counts: Counts,
    tcp_flags: u8,
    facts: Facts,
}

impl Open {
    /// The record: the flow's final one, or one cut by the active timeout (a new `Open`
    /// then takes its place). Its facts move into it.
    fn into_record(self, id: FlowId, end_reason: EndReason) -> FlowRecord {
        FlowRecord {
            id,
            start: moment::began(self.end, self.last_moved.saturating_sub(self.began)),
            end: self.end,
            counts: self.counts,
            tcp_flags: self.tcp_flags,
            end_reason,
            facts: self.facts,
        }
    }

    fn closed_by(&self) -> EndReason {
        if self.tcp_flags & TCP_RST != 0 {
            EndReason::Rst
        } else {
            EndReason::Fin
        }
    }
}

/// A flow to look at again, if it is still the same incarnation.
type Check = (FlowId, u64);

/// The open records, and when to look at the flows that stopped moving.
pub struct FlowRecords {
    timeouts: Timeouts,
    open: FxHashMap<FlowId, Open>,
    /// Idle checks by the elapsed time they are due; each open flow has exactly one.
    idle_checks: BTreeMap<Duration, Vec<Check>>,
    /// Flows with FIN or RST that moved in the last interval: ended if they do not move
    /// in this one.
    closing: Vec<Check>,
    /// The previous interval's `closing`, kept for its buffer.
    was_closing: Vec<Check>,
    /// The sum of the intervals' real lengths: deadlines do not follow the wall clock.
    elapsed: Duration,
    next_generation: u64,
}

impl FlowRecords {
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            open: FxHashMap::default(),
            idle_checks: BTreeMap::new(),
            closing: Vec::new(),
            was_closing: Vec::new(),
            elapsed: Duration::ZERO,
            next_generation: 0,
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Flows with an open record.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Takes one interval in and appends to `out` the records it ends or cuts.
    pub fn observe(&mut self, interval: &EnrichedSnapshot, out: &mut Vec<FlowRecord>) {
        let snapshot = interval.snapshot();
        let began = self.elapsed;
        self.elapsed += snapshot.interval;
        mem::swap(&mut self.closing, &mut self.was_closing);
        self.closing.clear();
        for (flow, facts) in interval.flows() {
            self.moved(flow, facts, snapshot.at, began, out);
        }
        // An owner answered after the flow last moved: its record need not end
        // `resolving`.
        for (flow, facts) in interval.late() {
            if let Some(open) = self.open.get_mut(flow)
                && takes_new_facts(facts, &open.facts)
            {
                open.facts = facts.clone();
            }
        }
        self.close_finished(out);
        self.expire_idle(out);
        // After a flood's flows have ended, their room is given back.
        shrink::to_live(&mut self.open);
        shrink::to_live(&mut self.closing);
        shrink::to_live(&mut self.was_closing);
        shrink::to_live(out);
    }

    /// Ends the records of flows the kernel let go (the reader's `gone`), appending them
    /// to `out`; a flow whose record already ended is skipped.
    pub fn end_evicted(
        &mut self,
        gone: impl IntoIterator<Item = FlowId>,
        out: &mut Vec<FlowRecord>,
    ) {
        for id in gone {
            // Its idle or closing check, if any, finds no open record and is dropped.
            if let Some(open) = self.open.remove(&id) {
                out.push(open.into_record(id, EndReason::Evicted));
            }
        }
    }

    /// Ends every open record (`log` is stopping), one at a time: a million open flows
    /// need not be held as records all at once.
    pub fn drain_open(&mut self) -> impl Iterator<Item = FlowRecord> + '_ {
        self.idle_checks.clear();
        self.closing.clear();
        self.was_closing.clear();
        self.open
            .drain()
            .map(|(id, open)| open.into_record(id, EndReason::Stop))
    }

    fn moved(
        &mut self,
        flow: &FlowDelta,
        facts: &Facts,
        at: SystemTime,
        began: Duration,
        out: &mut Vec<FlowRecord>,
    ) {
        let now = self.elapsed;
        let generation = match self.open.get_mut(&flow.id) {
            Some(open) => {
                // Cut before this interval if taking it in would make the record longer
                // than the active timeout by more than half an interval.
                let span = now.saturating_sub(open.began);
                if span > self.timeouts.active + (now - began) / 2 {
                    let next = Open {
                        began,
                        counts: Counts::default(),
                        facts: facts.clone(),
                        ..*open
                    };
                    let cut = mem::replace(open, next);
                    out.push(cut.into_record(flow.id.clone(), EndReason::Active));
                } else if takes_new_facts(facts, &open.facts) {
                    open.facts.clone_from(facts);
                }
                open.counts.add(flow);
                open.end = at;
                open.last_moved = now;
                open.tcp_flags = flow.tcp_flags;
                open.generation
            }
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                let mut counts = Counts::default();
                counts.add(flow);
                self.open.insert(
                    flow.id.clone(),
                    Open {
                        generation,
                        end: at,
                        began,
                        last_moved: now,
                        counts,
                        tcp_flags: flow.tcp_flags,
                        facts: facts.clone(),
                    },
                );
                self.idle_checks
                    .entry(now + self.timeouts.idle)
                    .or_default()
                    .push((flow.id.clone(), generation));
                generation
            }
        };
        let is_tcp = flow.id.proto.0 == flowmeter_common::PROTO_TCP;
        if is_tcp && flow.tcp_flags & (TCP_FIN | TCP_RST) != 0 {
            self.closing.push((flow.id.clone(), generation));
        }
    }

    /// Flows that had FIN or RST and did not move in this interval: their final ACKs
    /// are in, they have ended.
    fn close_finished(&mut self, out: &mut Vec<FlowRecord>) {
        let now = self.elapsed;
        for (id, generation) in self.was_closing.drain(..) {
            let ended = self
                .open
                .get(&id)
                .is_some_and(|open| open.generation == generation && open.last_moved < now);
            if ended && let Some(open) = self.open.remove(&id) {
                let reason = open.closed_by();
                out.push(open.into_record(id, reason));
            }
        }
    }

    /// Ends the flows whose idle check is due and that have not moved for the idle
    /// timeout; the others get their check again when it can next be due.
    fn expire_idle(&mut self, out: &mut Vec<FlowRecord>) {
        let now = self.elapsed;
        while let Some(due) = self.idle_checks.first_entry() {
            if *due.key() > now {
                break;
            }
            for (id, generation) in due.remove() {
                let Some(open) = self.open.get(&id) else {
                    continue;
                };
                if open.generation != generation {
                    continue; // An earlier incarnation's check.
                }
                let deadline = open.last_moved + self.timeouts.idle;
                if deadline <= now {
                    if let Some(open) = self.open.remove(&id) {
                        out.push(open.into_record(id, EndReason::Idle));
                    }
                } else {
                    self.idle_checks
                        .entry(deadline)
                        .or_default()
                        .push((id, generation));
                }
            }
        }
    }
}

/// Whether a record takes this interval's facts instead of those it holds: the latest,
/// except that a more severe verdict is kept until the record ends, and so is a known
/// process when its socket closes (TIME_WAIT has no process).
fn takes_new_facts(new: &Facts, held: &Facts) -> bool {
    if new.judgement.verdict < held.judgement.verdict {
        return false;
    }
    if held.owner.process().is_some() && new.owner.process().is_none() {
        return false;
    }
    new != held
}

#[cfg(test)]
mod tests;
