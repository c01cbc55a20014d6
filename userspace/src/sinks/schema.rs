//! The JSON-lines wire format, version 1. It is built from the internal types and owned
//! here, so internals can change without changing what log pipelines parse.
//!
//! Every line is one object with `v` (schema version), `type` and `ts` (RFC 3339, UTC).

use std::time::{Duration, SystemTime};

use serde::Serialize;
use time::{OffsetDateTime, macros::format_description};

use crate::{
    datapath::{Attachment, FlowDelta, InterfaceTotals},
    enrich::{Facts, geo::Location, sockets::Owner},
};

pub const SCHEMA_VERSION: u32 = 1;

/// One line: the common envelope around a record.
#[derive(Serialize)]
pub struct Line<'a, T: Serialize> {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts: &'a str,
    #[serde(flatten)]
    pub record: T,
}

/// `type: "start"`: written once, after the programs are attached.
#[derive(Serialize)]
pub struct Start<'a> {
    pub version: &'static str,
    pub interval_s: f64,
    pub flow_capacity: u32,
    /// The GeoIP database in use.
    pub geoip: &'a str,
    pub interfaces: Vec<StartInterface<'a>>,
}

#[derive(Serialize)]
pub struct StartInterface<'a> {
    pub name: &'a str,
    pub ifindex: u32,
    /// `"xdp"`, `"xdp-generic"` or `"tc"`.
    pub ingress: &'static str,
    pub ingress_reason: &'a str,
    pub egress: &'static str,
}

impl<'a> StartInterface<'a> {
    pub fn from_attachment(attachment: &'a Attachment) -> Self {
        Self {
            name: &attachment.interface.name,
            ifindex: attachment.interface.ifindex,
            ingress: attachment.ingress.name(),
            ingress_reason: &attachment.reason,
            egress: "tc",
        }
    }
}

/// `proto`: a name for the protocols flowmeter parses, the IP protocol number otherwise.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Proto {
    Name(String),
    Number(u8),
}

/// `type: "flow"`: one flow's traffic during one interval.
#[derive(Serialize)]
pub struct Flow<'a> {
    pub iface: &'a str,
    pub interval_s: f64,
    pub proto: Proto,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_ip: String,
    pub remote_port: u16,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// TCP only: the OR of every flag byte seen since the flow started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
    /// The remote's country (ISO 3166 alpha-2), when the database knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The remote is in a private or special range (no country).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote_local: bool,
    /// The remote is outside the `--home` countries.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub foreign: bool,
    /// `"process"`, `"unresolved"` (a local socket whose process is gone or hidden) or
    /// `"none"` (no local socket: forwarded, raw, ICMP).
    pub owner: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// `"business"`, `"cloud-agent"` or `"suspicious"`.
    pub verdict: &'static str,
    /// The evidence behind the verdict and the risk marks, one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl<'a> Flow<'a> {
    pub fn new(flow: &'a FlowDelta, facts: &'a Facts, interval: Duration) -> Self {
        let proto = match flow.id.proto.0 {
            flowmeter_common::PROTO_TCP
            | flowmeter_common::PROTO_UDP
            | flowmeter_common::PROTO_ICMP
            | flowmeter_common::PROTO_ICMPV6 => Proto::Name(flow.id.proto.to_string()),
            number => Proto::Number(number),
        };
        let process = facts.owner.process();
        Self {
            iface: &flow.id.iface,
            interval_s: interval.as_secs_f64(),
            proto,
            local_ip: flow.id.local_ip.to_string(),
            local_port: flow.id.local_port,
            remote_ip: flow.id.remote_ip.to_string(),
            remote_port: flow.id.remote_port,
            rx_packets: flow.rx_packets,
            rx_bytes: flow.rx_bytes,
            tx_packets: flow.tx_packets,
            tx_bytes: flow.tx_bytes,
            tcp_flags: (flow.id.proto.0 == flowmeter_common::PROTO_TCP).then_some(flow.tcp_flags),
            country: facts.location.country().map(|c| c.as_str().to_owned()),
            remote_local: facts.location == Location::Local,
            foreign: facts.judgement.foreign,
            owner: match facts.owner {
                Owner::Process(_) => "process",
                Owner::Unresolved => "unresolved",
                Owner::NoLocalSocket => "none",
            },
            pid: process.map(|p| p.pid),
            comm: process.map(|p| p.comm.as_str()),
            exe: process
                .and_then(|p| p.exe.as_ref())
                .map(|e| e.display().to_string()),
            user: process.map(|p| p.user.as_str()),
            verdict: facts.judgement.verdict.label(),
            reasons: facts
                .judgement
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// `type: "totals"`: one interface during one interval. `rx_packets` etc. count every
/// frame; `*_unattributed_*` is the part in no `flow` line (over a run, flows plus
/// unattributed equal the totals exactly), with its reasons beside it.
#[derive(Serialize)]
pub struct Totals<'a> {
    pub iface: &'a str,
    pub interval_s: f64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_unattributed_packets: u64,
    pub rx_unattributed_bytes: u64,
    pub tx_unattributed_packets: u64,
    pub tx_unattributed_bytes: u64,
    pub rx_non_ip_packets: u64,
    pub tx_non_ip_packets: u64,
    pub rx_malformed_packets: u64,
    pub tx_malformed_packets: u64,
    pub rx_table_full_packets: u64,
    pub tx_table_full_packets: u64,
}

impl<'a> Totals<'a> {
    pub fn new(totals: &'a InterfaceTotals, interval: Duration) -> Self {
        Self {
            iface: &totals.iface,
            interval_s: interval.as_secs_f64(),
            rx_packets: totals.rx.packets,
            rx_bytes: totals.rx.bytes,
            tx_packets: totals.tx.packets,
            tx_bytes: totals.tx.bytes,
            rx_unattributed_packets: totals.rx.unattributed_packets,
            rx_unattributed_bytes: totals.rx.unattributed_bytes,
            tx_unattributed_packets: totals.tx.unattributed_packets,
            tx_unattributed_bytes: totals.tx.unattributed_bytes,
            rx_non_ip_packets: totals.rx.non_ip_packets,
            tx_non_ip_packets: totals.tx.non_ip_packets,
            rx_malformed_packets: totals.rx.malformed_packets,
            tx_malformed_packets: totals.tx.malformed_packets,
            rx_table_full_packets: totals.rx.table_full_packets,
            tx_table_full_packets: totals.tx.table_full_packets,
        }
    }
}

/// RFC 3339 in UTC with milliseconds, always the same width: `2026-11-25T13:04:05.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_075_845_123_456_789);
        assert_eq!(timestamp(at), "2025-11-25T13:04:05.123Z");
    }
}
