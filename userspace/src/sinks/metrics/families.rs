//! The metric families flowmeter exports, named as the Prometheus naming guide and
//! node_exporter do (`flowmeter_` prefix, `_total` counters, bytes and seconds), and how
//! an interval adds to them. Labels are bounded whatever the traffic: interfaces,
//! directions, reasons, alert kinds, countries, verdicts and at most `--metrics-top`
//! process names; never a remote address or a flow. The encoding goes to the endpoint
//! (`endpoint.rs`).

use std::{fmt::Write as _, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use rustc_hash::FxHashMap;

use super::{Setup, named::NamedSet};
use crate::{
    datapath::{DirectionTotals, Snapshot},
    enrich::{EnrichedSnapshot, geo::Location, verdict::Verdict},
    flow::unattributed::Reason,
    sinks::alerts::{Alert, AlertKind, Phase},
};

/// The `process` label of traffic of processes past `--metrics-top`.
pub const OTHER: &str = "other";
/// The `process` label of traffic no local process owns (forwarded, ICMP, not yet
/// resolved, or whose process is gone).
pub const UNOWNED: &str = "(none)";

const DIRECTIONS: [&str; 2] = ["rx", "tx"];
const ALERT_KINDS: [AlertKind; 4] = [
    AlertKind::Foreign,
    AlertKind::Suspicious,
    AlertKind::Rate,
    AlertKind::Flood,
];

/// Cycle-time buckets: 0.5 ms doubling to 4.1 s (14 bounds, then +Inf).
const CYCLE_BUCKETS: (f64, f64, u16) = (0.0005, 2.0, 14);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    device: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Unattributed {
    device: String,
    direction: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Device {
    device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Country {
    country: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByVerdict {
    verdict: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Process {
    process: String,
    direction: &'static str,
}

/// Every family, registered once, and the process names they label.
pub struct Families {
    registry: Registry,
    bytes: Family<Direction, Counter>,
    packets: Family<Direction, Counter>,
    unattributed_bytes: Family<Unattributed, Counter>,
    unattributed_packets: Family<Unattributed, Counter>,
    flows: Gauge,
    evictions: Counter,
    insert_failures: Counter,
    cycle: Histogram,
    alerts_active: Family<Kind, Gauge>,
    alerts_started: Family<Kind, Counter>,
    country_bytes: Family<Country, Counter>,
    verdict_bytes: Family<ByVerdict, Counter>,
    process_bytes: Family<Process, Counter>,
    processes: NamedSet,
}

impl Families {
    /// The families, with every interface's series (and every alert kind's, for a
    /// command with alerts) at 0, so they exist before the first traffic.
    pub fn new(setup: &Setup) -> Self {
        let mut registry = Registry::with_prefix("flowmeter");
        let bytes = Family::default();
        let packets = Family::default();
        let unattributed_bytes = Family::default();
        let unattributed_packets = Family::default();
        let link_speed = Family::<Device, Gauge>::default();
        let flows: Gauge = Gauge::default();
        let capacity: Gauge = Gauge::default();
        let evictions = Counter::default();
        let insert_failures = Counter::default();
        let (start, factor, length) = CYCLE_BUCKETS;
        let cycle = Histogram::new(exponential_buckets(start, factor, length));
        let alerts_active = Family::default();
        let alerts_started = Family::default();
        let country_bytes = Family::default();
        let verdict_bytes = Family::default();
        let process_bytes = Family::default();
        registry.register(
            "interface_bytes",
            "Bytes the kernel programs counted on the interface, every frame (exact)",
            bytes.clone(),
        );
        registry.register(
            "interface_packets",
            "Packets the kernel programs counted on the interface, every frame (exact)",
            packets.clone(),
        );
        registry.register(
            "unattributed_bytes",
            "Of the interface's bytes, those in no flow, by reason",
            unattributed_bytes.clone(),
        );
        registry.register(
            "unattributed_packets",
            "Of the interface's packets, those in no flow, by reason",
            unattributed_packets.clone(),
        );
        registry.register(
            "interface_speed_bits_per_second",
            "The interface's link speed, where the driver tells it",
            link_speed.clone(),
        );
        registry.register(
            "flows",
            "Flows in the kernel's flow table at the last read",
            flows.clone(),
        );
        registry.register(
            "flow_table_capacity_flows",
            "Flows the kernel's table holds (--flows), for IPv4 and for IPv6 each",
            capacity.clone(),
        );
        registry.register(
            "flow_table_evictions",
            "Flows the full kernel table let go before they ended",
            evictions.clone(),
        );
        registry.register(
            "flow_table_insert_failures",
            "Packets of new flows that found no room in the kernel table",
            insert_failures.clone(),
        );
        registry.register(
            "cycle_seconds",
            "flowmeter's work for one interval: read, enrich, write",
            cycle.clone(),
        );
        registry.register(
            "alerts_active",
            "Alerts whose condition holds now, by kind",
            alerts_active.clone(),
        );
        registry.register(
            "alerts_started",
            "Alerts started, by kind",
            alerts_started.clone(),
        );
        registry.register(
            "country_bytes",
            "Bytes of flows by the remote's country (ISO code, local or unknown)",
            country_bytes.clone(),
        );
        registry.register(
            "verdict_bytes",
            "Bytes of flows by verdict",
            verdict_bytes.clone(),
        );
        registry.register(
            "process_bytes",
            "Bytes of flows by local process name: the first --metrics-top names to \
                 carry the most, then other, and (none) for traffic no process owns",
            process_bytes.clone(),
        );
        capacity.set(i64::from(setup.flow_capacity));
        for (device, speed) in &setup.interfaces {
            for direction in DIRECTIONS {
                let labels = Direction {
                    device: device.clone(),
                    direction,
                };
                let _ = bytes.get_or_create(&labels);
                let _ = packets.get_or_create(&labels);
            }
            if let Some(bps) = speed {
                link_speed
                    .get_or_create(&Device {
                        device: device.clone(),
                    })
                    .set(i64::try_from(*bps).unwrap_or(i64::MAX));
            }
        }
        if setup.alerts {
            for kind in ALERT_KINDS {
                let labels = Kind { kind: kind.label() };
                let _ = alerts_active.get_or_create(&labels);
                let _ = alerts_started.get_or_create(&labels);
            }
        }
        Self {
            registry,
            bytes,
            packets,
            unattributed_bytes,
            unattributed_packets,
            flows,
            evictions,
            insert_failures,
            cycle,
            alerts_active,
            alerts_started,
            country_bytes,
            verdict_bytes,
            process_bytes,
            processes: NamedSet::new(setup.top_processes),
        }
    }

    /// Adds every interface's totals of one interval.
    pub fn record_totals(&mut self, snapshot: &Snapshot) {
        for interface in &snapshot.interfaces {
            for (direction, totals) in DIRECTIONS.into_iter().zip([&interface.rx, &interface.tx]) {
                self.record_direction(&interface.iface, direction, totals);
            }
        }
    }

    fn record_direction(
        &mut self,
        device: &str,
        direction: &'static str,
        totals: &DirectionTotals,
    ) {
        let labels = Direction {
            device: device.to_owned(),
            direction,
        };
        self.bytes.get_or_create(&labels).inc_by(totals.bytes);
        self.packets.get_or_create(&labels).inc_by(totals.packets);
        self.insert_failures.inc_by(totals.table_full_packets);
        for reason in Reason::ALL {
            let (packets, bytes) = (reason.packets(totals), reason.bytes(totals));
            let labels = Unattributed {
                device: device.to_owned(),
                direction,
                reason: reason.name(),
            };
            // A reason's series appears with its first traffic: most hosts never have
            // some of them.
            if packets > 0 || self.unattributed_packets.get(&labels).is_some() {
                self.unattributed_packets
                    .get_or_create(&labels)
                    .inc_by(packets);
                self.unattributed_bytes.get_or_create(&labels).inc_by(bytes);
            }
        }
    }

    /// Adds one interval's flows by country, verdict and process name, summed first so
    /// that a label's counter is found once per interval, not once per flow.
    pub fn record_traffic(&mut self, interval: &EnrichedSnapshot) {
        let mut sums: FxHashMap<(Location, Verdict, Option<&str>), [u64; 2]> = FxHashMap::default();
        for (flow, facts) in interval.flows() {
            let process = facts.owner.process().map(|p| p.comm.as_str());
            let key = (facts.location, facts.judgement.verdict, process);
            let sum = sums.entry(key).or_default();
            sum[0] += flow.rx_bytes;
            sum[1] += flow.tx_bytes;
        }
        let mut by_process: FxHashMap<Option<&str>, u64> = FxHashMap::default();
        for ((_, _, process), [rx, tx]) in &sums {
            *by_process.entry(*process).or_default() += rx + tx;
        }
        self.processes.admit(
            by_process
                .iter()
                .filter_map(|(name, bytes)| Some(((*name)?, *bytes))),
        );
        for ((location, verdict, process), sum) in &sums {
            let process = match process {
                None => UNOWNED,
                Some(name) if self.processes.contains(name) => name,
                Some(_) => OTHER,
            };
            for (direction, bytes) in DIRECTIONS.into_iter().zip(*sum) {
                self.country_bytes
                    .get_or_create(&Country {
                        country: location.to_string(),
                        direction,
                    })
                    .inc_by(bytes);
                self.verdict_bytes
                    .get_or_create(&ByVerdict {
                        verdict: verdict.label(),
                        direction,
                    })
                    .inc_by(bytes);
                self.process_bytes
                    .get_or_create(&Process {
                        process: process.to_owned(),
                        direction,
                    })
                    .inc_by(bytes);
            }
        }
    }

    /// The flow table after a read.
    pub fn record_table(&mut self, flows: usize, evicted: usize) {
        self.flows.set(i64::try_from(flows).unwrap_or(i64::MAX));
        self.evictions.inc_by(evicted as u64);
    }

    /// Starts add to `started` and `active`; ends take from `active`.
    pub fn record_alerts(&mut self, alerts: &[Alert]) {
        for alert in alerts {
            let labels = Kind {
                kind: alert.kind.label(),
            };
            match alert.phase {
                Phase::Start => {
                    self.alerts_started.get_or_create(&labels).inc();
                    self.alerts_active.get_or_create(&labels).inc();
                }
                Phase::End => {
                    let active = self.alerts_active.get_or_create(&labels);
                    if active.get() > 0 {
                        active.dec();
                    }
                }
                Phase::Reminder => {}
            }
        }
    }

    pub fn record_cycle(&mut self, took: Duration) {
        self.cycle.observe(took.as_secs_f64());
    }

    /// The families in the text format, without the closing `# EOF` (the endpoint adds
    /// the `process_*` metrics after them).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if text::encode_registry(&mut text, &self.registry).is_err() {
            // Writing to a String cannot fail; say so rather than serve half a text.
            text.clear();
            let _ = writeln!(text, "# flowmeter: encoding the metrics failed");
        }
        text
    }
}
