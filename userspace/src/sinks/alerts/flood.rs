//! Flood detection: one pass over an interval's flows that says how many new flows
//! arrived per second and what carries them, for the engine's single `flood` condition.
//!
//! The snapshot does not say which flows are new, so a flow counts as one of a flood's
//! when it looks like one: inbound only (nothing sent back) with at most
//! [`FEW_PACKETS`] packets this interval ([`is_flood_like`]). IP packets that found no
//! flow (the table full, or their flow evicted before it was read) count too, one flow
//! each: that is what a flood through a full table leaves. Over
//! `--alert-flood` of those per second, a flood holds.
//!
//! The flows counted are summed per source prefix (/24 for IPv4, /64 for IPv6) and per
//! local port, in maps kept from one interval to the next: no allocation per flow,
//! only a counter per prefix and per port. The few largest of each ([`CARRIERS_NAMED`])
//! are the flood's [`Carriers`]; while a flood alert is active, the per-flow alerts of
//! flows it carries are folded into it (`engine.rs` asks [`Carriers::carries`]).

use std::{fmt, sync::Arc, time::Duration};

use rustc_hash::FxHashMap;

pub use crate::datapath::SourcePrefix;
use crate::{
    datapath::{FlowDelta, Protocol},
    enrich::{EnrichedSnapshot, Facts},
    units,
};

/// `--alert-flood` when not given: new flows per second.
pub const DEFAULT_FLOOD_FLOWS_PER_S: u64 = 5_000;

/// A flow with at most this many packets in an interval, all received, looks like a
/// flood's (a spoofed source sends one or two, and gets nothing back that counts).
pub const FEW_PACKETS: u64 = 2;

/// How many source prefixes, and how many local ports, a flood alert names.
pub const CARRIERS_NAMED: usize = 5;

/// A source prefix is named as a flood's carrier only if it sends at least this share
/// of the flood's packets.
pub const MIN_SHARE_PERCENT: u64 = 1;

/// Whether `flow` looks like one of a flood's: see the module docs.
pub fn is_flood_like(flow: &FlowDelta) -> bool {
    flow.tx_packets == 0 && (1..=FEW_PACKETS).contains(&flow.rx_packets)
}

/// A local (destination) port of one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPort {
    pub proto: Protocol,
    pub port: u16,
}

impl fmt::Display for LocalPort {
    /// `udp/53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto, self.port)
    }
}

/// Packets and bytes received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Traffic {
    packets: u64,
    bytes: u64,
}

impl Traffic {
    fn add(&mut self, packets: u64, bytes: u64) {
        self.packets = self.packets.saturating_add(packets);
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// One source prefix or local port that carries a flood, with its share per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Carrier<K> {
    pub key: K,
    pub packets_per_s: u64,
    pub bps: u64,
}

/// What a flood alert says beyond the fields every alert has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodFigures {
    /// Flood-like flows plus IP packets in no flow, per second.
    pub new_flows_per_s: u64,
    /// `--alert-flood`.
    pub threshold_per_s: u64,
    /// The flood's packets this interval (its flows' and those in no flow).
    pub packets: u64,
    /// IP packets received in no flow this interval (table full, or evicted unread).
    pub stray_packets: u64,
    /// The largest source prefixes by packets, largest first, each carrying at least
    /// [`MIN_SHARE_PERCENT`] of the flood: a spoof spread over the whole address space
    /// has none, and naming its busiest /24s would only name noise.
    pub sources: Vec<Carrier<SourcePrefix>>,
    /// How many distinct source prefixes the flood came from this interval.
    pub source_prefixes: u64,
    /// The largest local ports by packets, largest first.
    pub ports: Vec<Carrier<LocalPort>>,
}

impl FloodFigures {
    /// "; from 198.51.100.0/24 (100k pkt/s, 51.2 Mbit/s), ...; to udp/53 (...)": what
    /// carries the flood, with or without rates.
    pub fn carriers(&self, with_rates: bool) -> impl fmt::Display + '_ {
        CarriersText {
            figures: self,
            sources: true,
            ports: true,
            with_rates,
        }
    }

    /// The "; from ..." part of [`Self::carriers`]: the named source prefixes or, when none
    /// carries a share worth naming, how widely the sources are spread.
    pub fn sources(&self, with_rates: bool) -> impl fmt::Display + '_ {
        CarriersText {
            figures: self,
            sources: true,
            ports: false,
            with_rates,
        }
    }

    /// The "; to ..." part of [`Self::carriers`]: the local ports.
    pub fn ports(&self, with_rates: bool) -> impl fmt::Display + '_ {
        CarriersText {
            figures: self,
            sources: false,
            ports: true,
            with_rates,
        }
    }
}

struct CarriersText<'a> {
    figures: &'a FloodFigures,
    sources: bool,
    ports: bool,
    with_rates: bool,
}

impl fmt::Display for CarriersText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flood = self.figures;
        if self.sources {
            if flood.sources.is_empty() && flood.source_prefixes > 0 {
                write!(
                    f,
                    "; from {} source prefixes, none with {MIN_SHARE_PERCENT}% of it",
                    units::compact(flood.source_prefixes as f64, "")
                )?;
            } else {
                write_carriers(f, "from", &flood.sources, self.with_rates)?;
            }
        }
        if self.ports {
            write_carriers(f, "to", &flood.ports, self.with_rates)?;
        }
        Ok(())
    }
}

/// "; from 198.51.100.0/24 (100k pkt/s, 51.2 Mbit/s), 203.0.113.0/24 (...)", nothing
/// when there are none.
fn write_carriers<K: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    carriers: &[Carrier<K>],
    with_rates: bool,
) -> fmt::Result {
    for (n, carrier) in carriers.iter().enumerate() {
        if n == 0 {
            write!(f, "; {label} {}", carrier.key)?;
        } else {
            write!(f, ", {}", carrier.key)?;
        }
        if with_rates {
            write!(
                f,
                " ({}, {})",
                units::compact(carrier.packets_per_s as f64, " pkt/s"),
                units::bits_per_second(carrier.bps)
            )?;
        }
    }
    Ok(())
}

/// One interval as the detector read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodReading {
    /// Flood-like flows.
    pub flows: usize,
    /// Their bytes plus those of the IP packets in no flow.
    pub bytes: u64,
    /// Bits per second of `bytes` over the interval.
    pub rate_bps: u64,
    /// The interface that received most of it.
    pub iface: Option<Arc<str>>,
    pub figures: FloodFigures,
}

impl FloodReading {
    /// Whether this interval is a flood: strictly over the threshold.
    pub fn holds(&self) -> bool {
        self.figures.new_flows_per_s > self.figures.threshold_per_s
    }
}

/// The source prefixes and local ports a flood alert named: the flows it carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carriers {
    sources: Vec<SourcePrefix>,
    ports: Vec<LocalPort>,
}

impl Carriers {
    pub fn of(figures: &FloodFigures) -> Self {
        Self {
            sources: figures.sources.iter().map(|c| c.key).collect(),
            ports: figures.ports.iter().map(|c| c.key).collect(),
        }
    }

    /// Whether the flood carries `flow`: flood-like, no local process, and from a named
    /// prefix or to a named port.
    pub fn carries(&self, flow: &FlowDelta, facts: &Facts) -> bool {
        is_flood_like(flow)
            && facts.owner.process().is_none()
            && (self.sources.contains(&SourcePrefix::of(flow.id.remote_ip))
                || self.ports.contains(&LocalPort {
                    proto: flow.id.proto,
                    port: flow.id.local_port,
                }))
    }
}

/// Counts each interval's flood-like traffic; its maps are kept and cleared, not
/// rebuilt, from one interval to the next.
#[derive(Default)]
pub struct FloodDetector {
    sources: FxHashMap<SourcePrefix, Traffic>,
    ports: FxHashMap<LocalPort, Traffic>,
    /// Packets per interface: a handful of entries.
    ifaces: Vec<(Arc<str>, u64)>,
}

impl FloodDetector {
    /// One pass over the interval's flows, against `threshold_per_s` new flows per second.
    pub fn read(&mut self, interval: &EnrichedSnapshot, threshold_per_s: u64) -> FloodReading {
        self.sources.clear();
        self.ports.clear();
        self.ifaces.clear();
        let snapshot = interval.snapshot();
        let mut flows = 0_usize;
        let mut total = Traffic::default();
        for (flow, _) in interval.flows() {
            if !is_flood_like(flow) {
                continue;
            }
            flows += 1;
            let (packets, bytes) = (flow.rx_packets, flow.rx_bytes);
            total.add(packets, bytes);
            self.sources
                .entry(SourcePrefix::of(flow.id.remote_ip))
                .or_default()
                .add(packets, bytes);
            let port = LocalPort {
                proto: flow.id.proto,
                port: flow.id.local_port,
            };
            self.ports.entry(port).or_default().add(packets, bytes);
            self.count_iface(&flow.id.iface, packets);
        }
        // Traffic over the kernel's new-flow budget has no flows, only its source prefix
        // and local port: it is part of the stray packets below, and carries the flood
        // as much as flood-like flows do.
        for over in &snapshot.overflow {
            self.sources
                .entry(over.prefix)
                .or_default()
                .add(over.packets, over.bytes);
            let port = LocalPort {
                proto: over.proto,
                port: over.local_port,
            };
            self.ports
                .entry(port)
                .or_default()
                .add(over.packets, over.bytes);
        }
        let mut stray = Traffic::default();
        for totals in &snapshot.interfaces {
            let rx = &totals.rx;
            let not_ip = rx.non_ip_packets.saturating_add(rx.malformed_packets);
            let not_ip_bytes = rx.non_ip_bytes.saturating_add(rx.malformed_bytes);
            let packets = rx.unattributed_packets.saturating_sub(not_ip);
            stray.add(packets, rx.unattributed_bytes.saturating_sub(not_ip_bytes));
            self.count_iface(&totals.iface, packets);
        }
        total.add(stray.packets, stray.bytes);
        let seconds = snapshot.interval;
        let flood_packets_per_s = per_second(total.packets, seconds);
        let figures = FloodFigures {
            new_flows_per_s: per_second(flows as u64 + stray.packets, seconds),
            threshold_per_s,
            packets: total.packets,
            stray_packets: stray.packets,
            sources: largest(&self.sources, seconds)
                .into_iter()
                .filter(|carrier| {
                    carrier.packets_per_s * 100 >= flood_packets_per_s * MIN_SHARE_PERCENT
                })
                .collect(),
            source_prefixes: self.sources.len() as u64,
            ports: largest(&self.ports, seconds),
        };
        self.shrink();
        FloodReading {
            flows,
            bytes: total.bytes,
            rate_bps: per_second(total.bytes.saturating_mul(8), seconds),
            iface: self
                .ifaces
                .iter()
                .filter(|(_, packets)| *packets > 0)
                .max_by_key(|(_, packets)| *packets)
                .map(|(iface, _)| Arc::clone(iface)),
            figures,
        }
    }

    fn count_iface(&mut self, iface: &Arc<str>, packets: u64) {
        match self.ifaces.iter_mut().find(|(name, _)| name == iface) {
            Some((_, sum)) => *sum = sum.saturating_add(packets),
            None => self.ifaces.push((Arc::clone(iface), packets)),
        }
    }

    /// After a flood, gives back most of what its maps grew to.
    fn shrink(&mut self) {
        const KEEP: usize = 4096;
        if self.sources.capacity() > KEEP.max(self.sources.len() * 8) {
            self.sources.shrink_to(KEEP.max(self.sources.len() * 2));
        }
        if self.ports.capacity() > KEEP.max(self.ports.len() * 8) {
            self.ports.shrink_to(KEEP.max(self.ports.len() * 2));
        }
    }
}

/// `count` per second over `interval`, rounded.
fn per_second(count: u64, interval: Duration) -> u64 {
    let seconds = interval.as_secs_f64();
    if seconds > 0.0 {
        (count as f64 / seconds).round() as u64
    } else {
        0
    }
}

/// The [`CARRIERS_NAMED`] keys with the most packets (ties: the smaller key first), in
/// one pass that keeps only that many.
fn largest<K: Copy + Ord>(counts: &FxHashMap<K, Traffic>, interval: Duration) -> Vec<Carrier<K>> {
    let mut top: Vec<(K, Traffic)> = Vec::with_capacity(CARRIERS_NAMED + 1);
    let before = |a: &(K, Traffic), b: &(K, Traffic)| {
        a.1.packets > b.1.packets || (a.1.packets == b.1.packets && a.0 < b.0)
    };
    for (&key, &traffic) in counts {
        let entry = (key, traffic);
        if top.len() == CARRIERS_NAMED && !top.last().is_some_and(|last| before(&entry, last)) {
            continue;
        }
        let at = top.iter().position(|held| before(&entry, held));
        top.insert(at.unwrap_or(top.len()), entry);
        top.truncate(CARRIERS_NAMED);
    }
    top.into_iter()
        .map(|(key, traffic)| Carrier {
            key,
            packets_per_s: per_second(traffic.packets, interval),
            bps: per_second(traffic.bytes.saturating_mul(8), interval),
        })
        .collect()
}
