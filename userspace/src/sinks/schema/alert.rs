//! `type: "alert"`: a condition's start, reminder or end, as `sinks::alerts` raises it
//! (`Alert::record` fills it in). `ts` is the alert's `at`. Its fields, absent where they
//! do not apply:
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | `foreign`, `suspicious`, `rate` or `flood` |
//! | `phase` | string | `start`, `reminder` or `end` |
//! | `since` | string | RFC 3339: the beginning of the first interval in which the condition held; with `kind` and the subject fields it names one episode |
//! | `duration_s` | number | `ts - since`, seconds |
//! | `interval_s` | number | the interval's real length, seconds |
//! | `iface` | string | the interface (rate), or the interface of the flow named below |
//! | `direction` | string | rate: `rx` or `tx` |
//! | `proto`, `local_ip`, `local_port`, `remote_ip`, `remote_port` | as in `flow` | foreign, suspicious: the flow behind the alert that moved the most bytes in the interval |
//! | `country` | string | foreign, suspicious: the remote's country, when known |
//! | `flows` | number | foreign, suspicious: how many flows the figures sum |
//! | `pid`, `comm`, `exe`, `user` | as in `flow` | the process of the flow named, when known |
//! | `verdict` | string | foreign, suspicious: that flow's verdict |
//! | `bytes` | number | the interval's bytes: rx + tx to/from the remote (foreign), of the subject's suspicious flows (suspicious), of the direction (rate) |
//! | `rate_bps` | number | rate: bits per second over the interval |
//! | `threshold_bytes` | number | foreign: `--alert-foreign` |
//! | `limit_bps` | number | rate: the limit in bits per second (for `PCT%`, that share of the link) |
//! | `limit_percent` | number | rate: the `PCT%` given, if the limit is a percentage |
//! | `link_bps` | number | rate: the link speed, when known |
//! | `reasons` | array of strings | foreign, suspicious: the evidence of the flows behind the alert, each sentence once |
//! | `new_flows_per_s` | number | flood: new flows per second this interval (flood-like flows plus IP packets in no flow) |
//! | `threshold_flows_per_s` | number | flood: `--alert-flood` |
//! | `packets` | number | flood: its packets this interval |
//! | `stray_packets` | number | flood: IP packets received in no flow this interval (table full, or evicted before read) |
//! | `sources` | array of objects | flood: the top source prefixes by packets, `{"prefix", "packets_per_s", "bps"}`, each with at least 1% of the flood |
//! | `source_prefixes` | number | flood: distinct source prefixes (/24, /64) it came from |
//! | `ports` | array of objects | flood: the top local ports by packets, `{"proto", "port", "packets_per_s", "bps"}` |
//! | `folded` | number | conditions folded into this alert instead of raised one by one; absent when none |
//! | `recording` | string | start: the flight recording (`--record-dir`) that holds the seconds before and after it; absent when the recorder is off or could not write |
//! | `message` | string | the one-line text written on stderr |

use serde::Serialize;

use super::{FlowKey, ProcessFields, Proto};

/// The `type` of an alert line in the log.
pub const ALERT_TYPE: &str = "alert";

/// `type: "alert"`: the fields are described in the module docs.
#[derive(Serialize)]
pub struct AlertRecord<'a> {
    pub kind: &'static str,
    pub phase: &'static str,
    pub since: String,
    pub duration_s: f64,
    pub interval_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    /// Foreign, suspicious: the flow named.
    #[serde(flatten)]
    pub flow: Option<FlowKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<usize>,
    #[serde(flatten)]
    pub process: ProcessFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_bps: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_flows_per_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_flows_per_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stray_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<FloodSourceRecord>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_prefixes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<FloodPortRecord>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<usize>,
    /// Start: the recording that holds it (set by `log` when the recorder writes one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    pub message: String,
}

/// Flood: one source prefix that carries it.
#[derive(Serialize)]
pub struct FloodSourceRecord {
    pub prefix: String,
    pub packets_per_s: u64,
    pub bps: u64,
}

/// Flood: one local port that carries it.
#[derive(Serialize)]
pub struct FloodPortRecord {
    pub proto: Proto,
    pub port: u16,
    pub packets_per_s: u64,
    pub bps: u64,
}
