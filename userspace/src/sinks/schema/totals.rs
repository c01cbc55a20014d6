//! `type: "totals"`: one interface's exact counts during one interval; these lines close
//! the interval.

use std::time::Duration;

use serde::Serialize;

use crate::{
    datapath::InterfaceTotals,
    enrich::coverage::{Coverage, Gap},
};

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
    /// Schema v2 only: bytes (rx + tx) of the interval's flows whose owner is a process,
    /// and their share of the bytes in flows (absent when no flow moved a byte).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_share: Option<f64>,
    /// Schema v2 only: the rest of the flows' bytes, by why they have no process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_process_bytes: Option<NoProcessBytes>,
}

/// `no_process_bytes`: every reason, zeros included (see `enrich::coverage::Gap`).
#[derive(Serialize)]
pub struct NoProcessBytes {
    pub forwarded: u64,
    pub kernel_answered: u64,
    pub socket_gone: u64,
    pub namespace_hidden: u64,
    pub resolving: u64,
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
            process_bytes: None,
            process_share: None,
            no_process_bytes: None,
        }
    }

    /// With the interval's `coverage` of the interface (schema v2; v1 lines stay as
    /// they were).
    pub fn with_coverage(mut self, coverage: Coverage, version: u32) -> Self {
        if version < SCHEMA_V2 {
            return self;
        }
        let bytes = |gap| coverage.no_process_bytes(gap);
        self.process_bytes = Some(coverage.process_bytes);
        self.process_share = coverage.process_share();
        self.no_process_bytes = Some(NoProcessBytes {
            forwarded: bytes(Gap::Forwarded),
            kernel_answered: bytes(Gap::KernelAnswered),
            socket_gone: bytes(Gap::SocketGone),
            namespace_hidden: bytes(Gap::NamespaceHidden),
            resolving: bytes(Gap::Resolving),
        });
        self
    }
}
