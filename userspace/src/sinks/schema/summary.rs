//! `type: "summary"`: how each interface's rate spread over a period, and flowmeter's
//! own cycle time (`sinks::summary::SummaryRecord::wire` fills them in). `ts` is when the
//! summary was taken, the period's end.
//!
//! `scope: "interface"`, one per interface:
//! `iface`, `start`, `end` (RFC 3339), `period_s`, `intervals`, `rx_bytes`, `rx_packets`,
//! `rx_bps_mean`, `rx_bps_p50`, `rx_bps_p95`, `rx_bps_p99`, `rx_bps_max`, the same for
//! `tx_`, and, when the link speed is known, `link_bps` and `rx_p50_pct_of_link`,
//! `rx_p95_pct_of_link`, `rx_p99_pct_of_link`, `rx_max_pct_of_link` (and `tx_`).
//!
//! `scope: "cycle"`, one per period: `start`, `end`, `period_s`, `cycles`,
//! `cycle_us_p50`, `cycle_us_p95`, `cycle_us_p99`, `cycle_us_max`.

use serde::Serialize;

#[derive(Serialize)]
#[serde(untagged)]
pub enum Summary<'a> {
    Interface(Interface<'a>),
    Cycle(Cycle),
}

#[derive(Serialize)]
pub struct Interface<'a> {
    /// `"interface"`.
    pub scope: &'static str,
    pub iface: &'a str,
    pub start: String,
    pub end: String,
    pub period_s: f64,
    pub intervals: u64,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bps_mean: u64,
    pub rx_bps_p50: u64,
    pub rx_bps_p95: u64,
    pub rx_bps_p99: u64,
    pub rx_bps_max: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bps_mean: u64,
    pub tx_bps_p50: u64,
    pub tx_bps_p95: u64,
    pub tx_bps_p99: u64,
    pub tx_bps_max: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_bps: Option<u64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub of_link: Option<OfLink>,
}

/// Each rate percentile as a percentage of the link speed, to 0.01.
#[derive(Serialize)]
pub struct OfLink {
    pub rx_p50_pct_of_link: f64,
    pub rx_p95_pct_of_link: f64,
    pub rx_p99_pct_of_link: f64,
    pub rx_max_pct_of_link: f64,
    pub tx_p50_pct_of_link: f64,
    pub tx_p95_pct_of_link: f64,
    pub tx_p99_pct_of_link: f64,
    pub tx_max_pct_of_link: f64,
}

#[derive(Serialize)]
pub struct Cycle {
    /// `"cycle"`.
    pub scope: &'static str,
    pub start: String,
    pub end: String,
    pub period_s: f64,
    pub cycles: u64,
    pub cycle_us_p50: u64,
    pub cycle_us_p95: u64,
    pub cycle_us_p99: u64,
    pub cycle_us_max: u64,
}
