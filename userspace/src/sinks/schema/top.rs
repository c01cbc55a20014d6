//! `type: "top"` (schema v2): the interval's remote hosts and processes that moved the
//! most bytes, with their verdicts, so "who was it at 03:14:07" has a one-second answer
//! while `flow` records come only when flows end (`sinks::top::Top::record` fills it in).

use serde::Serialize;

use super::{ProcessFields, RemotePlace};

/// `type: "top"`: one per interval, before its `totals`.
#[derive(Serialize)]
pub struct TopRecord<'a> {
    pub interval_s: f64,
    /// Flows that moved in the interval.
    pub flows: usize,
    /// Most bytes (rx + tx) first.
    pub remotes: Vec<TopRemote<'a>>,
    /// Most bytes (rx + tx) first; flows without a known process are in none.
    pub processes: Vec<TopProcess<'a>>,
}

/// One remote host's traffic in the interval, over all its flows.
#[derive(Serialize)]
pub struct TopRemote<'a> {
    pub remote_ip: String,
    #[serde(flatten)]
    pub place: RemotePlace<'a>,
    pub flows: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The most severe verdict among its flows.
    pub verdict: &'static str,
    /// `pid`, `comm`, `exe`, `user`: the process it is listed with (the worst verdict
    /// among the processes with flows to it, then the most bytes); absent with none.
    #[serde(flatten)]
    pub process: ProcessFields<'a>,
    /// How many processes have flows to it.
    pub processes: usize,
}

/// One process's traffic in the interval, over all its flows.
#[derive(Serialize)]
pub struct TopProcess<'a> {
    #[serde(flatten)]
    pub process: ProcessFields<'a>,
    pub flows: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The most severe verdict among its flows.
    pub verdict: &'static str,
}
