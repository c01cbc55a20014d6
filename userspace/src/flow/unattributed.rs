//! Traffic in no flow, and why: the interfaces' unattributed packets summed over a run
//! with the share each reason explains, told in one phrase ("unattributed 58% (evicted
//! before read: raise --flows)") by the console's status line and `bench`'s report.

use std::fmt;

use crate::datapath::DirectionTotals;

/// Why traffic is in no flow: the reasons of a `totals` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No room in the flow table for a new flow.
    TableFull,
    /// In a flow the full table let go before it was read.
    Evicted,
    /// A new flow over the new-flow budget (a flood).
    OverBudget,
    NonIp,
    Malformed,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::TableFull,
        Reason::Evicted,
        Reason::OverBudget,
        Reason::NonIp,
        Reason::Malformed,
    ];

    /// The reason's name in `totals` records (`rx_<name>_packets`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::TableFull => "table_full",
            Reason::Evicted => "evicted",
            Reason::OverBudget => "over_budget",
            Reason::NonIp => "non_ip",
            Reason::Malformed => "malformed",
        }
    }

    /// The reason in words, with what to do when the user can do something.
    pub fn advice(self) -> &'static str {
        match self {
            Reason::TableFull => "flow table full: raise --flows",
            Reason::Evicted => "evicted before read: raise --flows",
            Reason::OverBudget => "new flows over --new-flow-budget: a flood",
            Reason::NonIp => "not IP",
            Reason::Malformed => "malformed",
        }
    }

    /// The packets of `totals` in no flow for this reason.
    pub fn packets(self, totals: &DirectionTotals) -> u64 {
        match self {
            Reason::TableFull => totals.table_full_packets,
            Reason::Evicted => totals.evicted_packets,
            Reason::OverBudget => totals.over_budget_packets,
            Reason::NonIp => totals.non_ip_packets,
            Reason::Malformed => totals.malformed_packets,
        }
    }

    /// The bytes of `totals` in no flow for this reason.
    pub fn bytes(self, totals: &DirectionTotals) -> u64 {
        match self {
            Reason::TableFull => totals.table_full_bytes,
            Reason::Evicted => totals.evicted_bytes,
            Reason::OverBudget => totals.over_budget_bytes,
            Reason::NonIp => totals.non_ip_bytes,
            Reason::Malformed => totals.malformed_bytes,
        }
    }
}

/// Packets in no flow out of all packets, and their reasons, summed over intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unattributed {
    pub packets: u64,
    pub unattributed_packets: u64,
    pub unattributed_bytes: u64,
    /// Packets of each of [`Reason::ALL`], in its order.
    by_reason: [u64; Reason::ALL.len()],
}

impl Unattributed {
    /// Adds one interval of one direction.
    pub fn add(&mut self, totals: &DirectionTotals) {
        self.packets += totals.packets;
        self.unattributed_packets += totals.unattributed_packets;
        self.unattributed_bytes += totals.unattributed_bytes;
        for (sum, reason) in self.by_reason.iter_mut().zip(Reason::ALL) {
            *sum += reason.packets(totals);
        }
    }

    /// The share of the packets in no flow, 0 to 1 (0 before any packet).
    pub fn share(&self) -> f64 {
        match self.packets {
            0 => 0.0,
            packets => self.unattributed_packets as f64 / packets as f64,
        }
    }

    /// The reason that explains the most unattributed packets (the first of
    /// [`Reason::ALL`] on a tie), if any does.
    pub fn main_reason(&self) -> Option<Reason> {
        let (reason, packets) = Reason::ALL
            .into_iter()
            .zip(self.by_reason)
            .rev()
            .max_by_key(|&(_, packets)| packets)?;
        (packets > 0).then_some(reason)
    }
}

/// "unattributed 58% (evicted before read: raise --flows)"; under 1%, one decimal.
impl fmt::Display for Unattributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = 100.0 * self.share();
        if percent < 1.0 && self.unattributed_packets > 0 {
            write!(f, "unattributed {percent:.1}%")?;
        } else {
            write!(f, "unattributed {percent:.0}%")?;
        }
        match self.main_reason() {
            Some(reason) => write!(f, " ({})", reason.advice()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(packets: u64, evicted: u64, non_ip: u64) -> DirectionTotals {
        DirectionTotals {
            packets,
            unattributed_packets: evicted + non_ip,
            evicted_packets: evicted,
            non_ip_packets: non_ip,
            ..Default::default()
        }
    }

    #[test]
    fn the_share_and_main_reason_are_over_the_whole_run() {
        let mut unattributed = Unattributed::default();
        assert_eq!(unattributed.to_string(), "unattributed 0%");
        unattributed.add(&interval(100, 0, 2));
        assert_eq!(unattributed.to_string(), "unattributed 2% (not IP)");
        unattributed.add(&interval(100, 114, 0));
        assert_eq!(unattributed.main_reason(), Some(Reason::Evicted));
        assert_eq!(
            unattributed.to_string(),
            "unattributed 58% (evicted before read: raise --flows)"
        );
    }

    #[test]
    fn a_small_share_has_a_decimal_and_a_tie_goes_to_the_first_reason() {
        let mut unattributed = Unattributed::default();
        unattributed.add(&DirectionTotals {
            packets: 1000,
            unattributed_packets: 4,
            table_full_packets: 2,
            malformed_packets: 2,
            ..Default::default()
        });
        assert_eq!(
            unattributed.to_string(),
            "unattributed 0.4% (flow table full: raise --flows)"
        );
    }
}
