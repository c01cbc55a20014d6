//! `type: "alert"`: a condition's start, reminder or end, as `sinks::alerts` raises it
//! (`Alert::record` fills it in). `ts` is the alert's `at`. Its fields, absent where they
//! do not apply:
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | `foreign`, `suspicious` or `rate` |
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
//! | `message` | string | the one-line text written on stderr |

use serde::Serialize;

use super::{FlowKey, ProcessFields};

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
    pub message: String,
}
