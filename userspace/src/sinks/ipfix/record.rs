//! One flow record of the log ([`FlowRecord`], both directions of a flow) as IPFIX data
//! records: one per direction that moved, source and destination as on the wire, so
//! every collector counts them as the unidirectional flows it knows (RFC 5103 biflows
//! would need the collector to read reverse elements; nfacctd, for one, adds up only
//! the forward counters). The encoder writes each in the templates' layout.

use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    enrich::geo::Location,
    sinks::records::{EndReason, FlowRecord},
};

/// The longest process or user name exported, in bytes: a record stays well inside one
/// message whatever a process calls itself.
const MAX_NAME: usize = 128;

/// One direction of a flow record, as one IPFIX data record.
#[derive(Clone, Debug, PartialEq)]
pub struct Directed<'a> {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub source_port: u16,
    pub destination_port: u16,
    pub protocol: u8,
    /// TCP: the flags of the whole flow (the datapath keeps one OR for both ways).
    pub tcp_flags: u16,
    pub octets: u64,
    pub packets: u64,
    /// Milliseconds since the Unix epoch.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The metered interface's index for received traffic, else 0.
    pub ingress: u32,
    /// The metered interface's index for sent traffic, else 0.
    pub egress: u32,
    /// flowEndReason (RFC 5102): 1 idle, 2 active, 3 end detected, 4 forced, 5 resources.
    pub end_reason: u8,
    /// The owning process's `comm`, `-` if none is known.
    pub process_name: &'a str,
    /// Its pid, 0 if none is known.
    pub process_id: u32,
    /// Its user, `-` if none is known.
    pub user_name: &'a str,
    /// The remote's country (ISO 3166 alpha-2), `local` (a private or special range) or
    /// `unknown`.
    pub country: &'a str,
    /// `business`, `cloud-agent` or `suspicious`.
    pub verdict: &'static str,
}

impl Directed<'_> {
    pub fn is_v6(&self) -> bool {
        self.source.is_ipv6()
    }
}

/// The IPFIX records of one flow record on the interface `ifindex`: received traffic
/// (remote to local) first, then sent; a direction that moved nothing has none.
pub fn directions(record: &FlowRecord, ifindex: u32) -> impl Iterator<Item = Directed<'_>> {
    let id = &record.id;
    let process = record.facts.owner.process();
    let shared = Directed {
        source: id.remote_ip,
        destination: id.local_ip,
        source_port: id.remote_port,
        destination_port: id.local_port,
        protocol: id.proto.0,
        tcp_flags: if id.proto.0 == flowmeter_common::PROTO_TCP {
            u16::from(record.tcp_flags)
        } else {
            0
        },
        octets: record.counts.rx_bytes,
        packets: record.counts.rx_packets,
        start_ms: millis(record.start),
        end_ms: millis(record.end),
        ingress: ifindex,
        egress: 0,
        end_reason: end_reason(record.end_reason),
        process_name: process.map_or(NONE, |p| non_empty(&p.comm)),
        process_id: process.map_or(0, |p| p.pid),
        user_name: process.map_or(NONE, |p| non_empty(&p.user)),
        country: match &record.facts.location {
            Location::Country(code) => code.as_str(),
            Location::Local => "local",
            Location::Unknown => "unknown",
        },
        verdict: record.facts.judgement.verdict.label(),
    };
    let sent = Directed {
        source: id.local_ip,
        destination: id.remote_ip,
        source_port: id.local_port,
        destination_port: id.remote_port,
        octets: record.counts.tx_bytes,
        packets: record.counts.tx_packets,
        ingress: 0,
        egress: ifindex,
        ..shared.clone()
    };
    [shared, sent].into_iter().filter(|d| d.packets > 0)
}

/// flowEndReason's codes (RFC 5102 §5.11.3).
fn end_reason(reason: EndReason) -> u8 {
    match reason {
        EndReason::Idle => 1,
        EndReason::Active => 2,
        EndReason::Fin | EndReason::Rst => 3,
        EndReason::Stop => 4,
        EndReason::Evicted => 5,
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// What a name element says when there is no name: RFC 7011 gives a variable-length
/// field no empty value (parsers refuse a length of 0).
const NONE: &str = "-";

/// At most [`MAX_NAME`] bytes, cut at a character boundary; [`NONE`] if empty.
fn non_empty(name: &str) -> &str {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if end == 0 { NONE } else { &name[..end] }
}
