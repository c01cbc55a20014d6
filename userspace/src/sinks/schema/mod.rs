//! The JSON-lines wire format, versions 1 and 2: every record `flowmeter log` writes, one file
//! per record type, as docs/log-schema.md describes them. It is built from the internal
//! types and owned here, so internals can change without changing what log pipelines
//! parse.
//!
//! Every line is one object with `v` (schema version), `type` and `ts` (RFC 3339, UTC):
//! the [`Line`] envelope around a record. The pieces several records share are here:
//! the protocol name ([`Proto`]), the five fields naming a flow ([`FlowKey`]) and the
//! process fields ([`ProcessFields`]), so a field is spelled in one place.
//!
//! Version 2 (the default) writes `flow` records when flows end and a `top` record per
//! interval; version 1 (`--flow-records interval`) one `flow` line per flow per interval.
//! The other records are the same in both.
//!
//! Records of the datapath's and the enrichers' values (`start`, v1 `flow`, `totals`,
//! `interface`) are built here. The sinks' own values fill theirs (`FlowRecord::wire`, `Top::record`,
//! `Alert::record`, `SummaryRecord::wire`, `Gap::record`), so that this module depends on nothing else in
//! `sinks` and no import runs in a circle. [`LogSink`](super::log::LogSink) writes the
//! lines.

mod alert;
mod flow;
mod gap;
mod interface;
mod recorder;
mod start;
pub mod summary;
mod top;
mod totals;

use std::time::SystemTime;

use serde::Serialize;
use time::{OffsetDateTime, macros::format_description};

pub use self::{
    alert::{ALERT_TYPE, AlertRecord, FloodPortRecord, FloodSourceRecord},
    flow::{Flow, FlowCounts, FlowFacts, FlowRecordLine, tcp_flags},
    gap::GapRecord,
    interface::InterfaceRecord,
    recorder::{RECORDER_TYPE, RecorderRecord},
    start::{Start, StartInterface, StartRecords},
    summary::Summary,
    top::{TopProcess, TopRecord, TopRemote},
    totals::Totals,
};
use crate::{
    datapath::{FlowId, Protocol},
    enrich::{geo::Location, sockets::ProcessInfo},
};

/// Schema version 1: the log with `--flow-records interval` (and `bench --json`).
pub const SCHEMA_VERSION: u32 = 1;
/// Schema version 2: the log with flow records (the default).
pub const SCHEMA_V2: u32 = 2;

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

/// `proto`: a name for the protocols flowmeter parses, the IP protocol number otherwise.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Proto {
    Name(String),
    Number(u8),
}

impl Proto {
    pub fn of(protocol: Protocol) -> Self {
        use flowmeter_common::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
        match protocol.0 {
            PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6 => Proto::Name(protocol.to_string()),
            number => Proto::Number(number),
        }
    }
}

/// `proto`, `local_ip`, `local_port`, `remote_ip`, `remote_port`: the flow a `flow` line
/// counts, or the one an `alert` names.
#[derive(Serialize)]
pub struct FlowKey {
    pub proto: Proto,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_ip: String,
    pub remote_port: u16,
}

impl FlowKey {
    pub fn new(id: &FlowId) -> Self {
        Self {
            proto: Proto::of(id.proto),
            local_ip: id.local_ip.to_string(),
            local_port: id.local_port,
            remote_ip: id.remote_ip.to_string(),
            remote_port: id.remote_port,
        }
    }
}

/// `pid`, `comm`, `exe`, `user`: the process of a flow, each absent when unknown.
#[derive(Serialize)]
pub struct ProcessFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// The container its cgroup names (`docker:0123456789ab`), and the systemd unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a str>,
}

impl<'a> ProcessFields<'a> {
    pub fn new(process: Option<&'a ProcessInfo>) -> Self {
        Self {
            pid: process.map(|p| p.pid),
            comm: process.map(|p| p.comm.as_str()),
            exe: process
                .and_then(|p| p.exe.as_ref())
                .map(|exe| exe.display().to_string()),
            user: process.map(|p| p.user.as_str()),
            container: process.and_then(|p| p.cgroup.container.as_deref()),
            unit: process.and_then(|p| p.cgroup.unit.as_deref()),
        }
    }
}

/// `country`, `remote_local`, `foreign`: where a remote is, each absent when it does not
/// apply (`flow` and `top` records alike).
#[derive(Serialize)]
pub struct RemotePlace<'a> {
    /// The remote's country (ISO 3166 alpha-2), when the database knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    /// The remote is in a private or special range (no country).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote_local: bool,
    /// The remote is outside the `--home` countries.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub foreign: bool,
}

impl<'a> RemotePlace<'a> {
    pub fn new(location: &'a Location, foreign: bool) -> Self {
        Self {
            country: match location {
                Location::Country(code) => Some(code.as_str()),
                Location::Local | Location::Unknown => None,
            },
            remote_local: *location == Location::Local,
            foreign,
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
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_075_845_123_456_789);
        assert_eq!(timestamp(at), "2025-11-25T13:04:05.123Z");
    }

    #[test]
    fn protocols_flowmeter_parses_have_names_others_numbers() {
        let json = |number| serde_json::to_string(&Proto::of(Protocol(number))).unwrap();
        assert_eq!(json(6), r#""tcp""#);
        assert_eq!(json(17), r#""udp""#);
        assert_eq!(json(1), r#""icmp""#);
        assert_eq!(json(58), r#""icmpv6""#);
        assert_eq!(json(47), "47");
    }
}
