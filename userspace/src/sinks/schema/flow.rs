//! `type: "flow"`: in schema v1 (`--flow-records interval`), one flow's traffic during
//! one interval, with what the enrichers know of it ([`Flow`]); in schema v2, one flow
//! record ([`FlowRecordLine`], filled in by `sinks::records::FlowRecord::wire`). The
//! enrichers' fields are the same in both ([`FlowFacts`]).

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{FlowKey, ProcessFields, RemotePlace};
use crate::{
    datapath::{FlowDelta, Protocol},
    enrich::{Facts, sockets::Owner, verdict::Reason},
};

/// `type: "flow"`, schema v1: one flow's traffic during one interval.
#[derive(Serialize)]
pub struct Flow<'a> {
    pub iface: &'a str,
    pub interval_s: f64,
    #[serde(flatten)]
    pub key: FlowKey,
    #[serde(flatten)]
    pub counts: FlowCounts,
    #[serde(flatten)]
    pub facts: FlowFacts<'a>,
}

impl<'a> Flow<'a> {
    pub fn new(flow: &'a FlowDelta, facts: &'a Facts, interval: Duration) -> Self {
        Self {
            iface: &flow.id.iface,
            interval_s: interval.as_secs_f64(),
            key: FlowKey::new(&flow.id),
            counts: FlowCounts {
                rx_packets: flow.rx_packets,
                rx_bytes: flow.rx_bytes,
                tx_packets: flow.tx_packets,
                tx_bytes: flow.tx_bytes,
                tcp_flags: tcp_flags(flow.id.proto, flow.tcp_flags),
            },
            facts: FlowFacts::new(facts),
        }
    }
}

/// `type: "flow"`, schema v2: what a flow moved since its previous record, between
/// `start` and `end`, and why the record was written.
#[derive(Serialize)]
pub struct FlowRecordLine<'a> {
    pub iface: &'a str,
    #[serde(flatten)]
    pub key: FlowKey,
    /// RFC 3339: the start of the first interval counted.
    pub start: String,
    /// RFC 3339: the end of the last interval counted.
    pub end: String,
    /// `"idle"`, `"active"`, `"fin"`, `"rst"`, `"stop"` or `"evicted"`.
    pub end_reason: &'static str,
    #[serde(flatten)]
    pub counts: FlowCounts,
    #[serde(flatten)]
    pub facts: FlowFacts<'a>,
    /// Why the flow has no process, as `totals`' `no_process_bytes` names it
    /// (`"forwarded"`, `"kernel_answered"`, `"socket_gone"`, `"namespace_hidden"`,
    /// `"resolving"`); absent when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_process: Option<&'static str>,
}

/// `rx_packets` ... `tx_bytes` (in v1 the interval's, in v2 since the previous record)
/// and `tcp_flags`.
#[derive(Serialize)]
pub struct FlowCounts {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// TCP only: the OR of every flag byte seen since the flow started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
}

/// `tcp_flags`: on TCP flows only.
pub fn tcp_flags(proto: Protocol, flags: u8) -> Option<u8> {
    (proto.0 == flowmeter_common::PROTO_TCP).then_some(flags)
}

/// What the enrichers know of a flow, as `flow` lines carry it (v1 and v2 alike).
#[derive(Serialize)]
pub struct FlowFacts<'a> {
    #[serde(flatten)]
    pub place: RemotePlace<'a>,
    /// `"process"`, `"unresolved"` (a local socket whose process is gone or hidden),
    /// `"none"` (no local socket: forwarded, raw, ICMP) or `"resolving"` (not looked up
    /// yet when the record was written). v2's `no_process` tells the finer reason.
    pub owner: &'static str,
    #[serde(flatten)]
    pub process: ProcessFields<'a>,
    /// `"business"`, `"cloud-agent"` or `"suspicious"`.
    pub verdict: &'static str,
    /// The evidence behind the verdict and the risk marks, one sentence each.
    #[serde(skip_serializing_if = "Sentences::is_empty")]
    pub reasons: Sentences<'a>,
}

/// Reasons written as their sentences, each formatted straight into the line: a flow
/// line costs no `String` per reason (a million stop records are written at once).
pub struct Sentences<'a>(pub &'a [Reason]);

impl Sentences<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Sentences<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// One reason as a JSON string, formatted by its `Display`.
        struct Sentence<'a>(&'a Reason);
        impl Serialize for Sentence<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        serializer.collect_seq(self.0.iter().map(Sentence))
    }
}

impl<'a> FlowFacts<'a> {
    pub fn new(facts: &'a Facts) -> Self {
        Self {
            place: RemotePlace::new(&facts.location, facts.judgement.foreign),
            owner: match facts.owner {
                Owner::Process(_) => "process",
                Owner::Unresolved => "unresolved",
                Owner::NoLocalSocket => "none",
                // As before the finer reasons (v2's `no_process`) were told apart.
                Owner::Forwarded => "none",
                Owner::Hidden => "unresolved",
                Owner::Resolving => "resolving",
            },
            process: ProcessFields::new(facts.owner.process()),
            verdict: facts.judgement.verdict.label(),
            reasons: Sentences(&facts.judgement.reasons),
        }
    }
}
