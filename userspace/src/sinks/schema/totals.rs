//! `type: "totals"`: one interface's exact counts during one interval; these lines close
//! the interval.

use std::time::Duration;

use serde::Serialize;

use crate::datapath::InterfaceTotals;

use super::SCHEMA_V2;

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
    /// Schema v2 only (absent in v1, whose lines stay as they were): received packets
    /// of new flows over the kernel's new-flow budget. Only received packets spend it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_over_budget_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_over_budget_bytes: Option<u64>,
    /// Schema v2 only: packets counted in a flow that the kernel's table let go before
    /// it was read (a full table churning: raise `--flows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_evicted_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_evicted_packets: Option<u64>,
}

impl<'a> Totals<'a> {
    /// The record as schema `version` writes it.
    pub fn new(totals: &'a InterfaceTotals, interval: Duration, version: u32) -> Self {
        let v2 = |value: u64| (version >= SCHEMA_V2).then_some(value);
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
            rx_over_budget_packets: v2(totals.rx.over_budget_packets),
            rx_over_budget_bytes: v2(totals.rx.over_budget_bytes),
            rx_evicted_packets: v2(totals.rx.evicted_packets),
            tx_evicted_packets: v2(totals.tx.evicted_packets),
        }
    }
}
