//! `flowmeter bench`: meter an interface while the user runs their own load, and report
//! per-second packets/s and bits/s, their percentiles, the exact totals with the share
//! in no flow and its main reason, and what the metering itself cost in CPU. With
//! `--metrics`, every second's totals go to the Prometheus endpoint (`sinks::metrics`).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::{
    build,
    session::{Clock, Plan, Session, stop_signals},
};
use crate::{
    cli::BenchArgs,
    datapath::{DirectionTotals, Snapshot},
    flow::Unattributed,
    sinks::{metrics::Metrics, schema::SCHEMA_VERSION},
    units,
};

/// Rates are per second.
const SECOND: Duration = Duration::from_secs(1);

pub fn run(args: &BenchArgs, verbose: bool) -> Result<()> {
    let stop = stop_signals()?;
    let plan = Plan::new(&args.datapath, verbose)?;
    let mut metrics = build::metrics(
        &args.metrics,
        &plan.interfaces,
        plan.options.flow_capacity,
        false,
    )?;
    let mut session = plan.start("; run your load now")?;
    let started = Instant::now();
    let cpu_before = own_cpu_time();
    let mut stats: BTreeMap<Arc<str>, InterfaceStats> = BTreeMap::new();
    for _ in Clock::new(SECOND, Some(args.duration), &stop) {
        let began = Instant::now();
        let snapshot = session.read()?;
        record(&mut stats, &snapshot, true);
        if let Some(metrics) = &mut metrics {
            export(metrics, &session, &snapshot, began);
        }
        if !args.json {
            print_second(&snapshot, started.elapsed());
        }
    }
    session.detach();
    // The last partial second still counts in the totals, not in the per-second rates.
    let last = session.read()?;
    record(&mut stats, &last, false);
    let wall = started.elapsed();
    let cpu_percent = 100.0 * (own_cpu_time() - cpu_before).as_secs_f64() / wall.as_secs_f64();

    let report = Report {
        v: SCHEMA_VERSION,
        kind: "bench",
        duration_s: wall.as_secs_f64(),
        cpu_percent,
        interfaces: stats.iter().map(|(iface, s)| s.report(iface)).collect(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encoding the report")?
        );
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Hands one second, read since `began`, to the Prometheus endpoint (`--metrics`).
fn export(metrics: &mut Metrics, session: &Session, snapshot: &Snapshot, began: Instant) {
    metrics.record_snapshot(snapshot);
    metrics.record_table(session.flows_in_table(), session.gone().len());
    metrics.record_cycle(began.elapsed());
    metrics.publish();
}

/// Adds one interval: to the totals always, to the per-second rates if it is whole.
fn record(stats: &mut BTreeMap<Arc<str>, InterfaceStats>, snapshot: &Snapshot, rates: bool) {
    let seconds = snapshot.interval.as_secs_f64();
    for interface in &snapshot.interfaces {
        let entry = stats.entry(interface.iface.clone()).or_default();
        entry.rx.add(&interface.rx, seconds, rates);
        entry.tx.add(&interface.tx, seconds, rates);
    }
}

#[derive(Default)]
struct InterfaceStats {
    rx: DirectionStats,
    tx: DirectionStats,
}

struct DirectionStats {
    pps: Histogram<u64>,
    bps: Histogram<u64>,
    packets: u64,
    bytes: u64,
    unattributed: Unattributed,
}

impl Default for DirectionStats {
    fn default() -> Self {
        // Three significant figures, auto-resizing: any rate a NIC can carry.
        let histogram = || Histogram::new(3).expect("3 significant figures is valid");
        Self {
            pps: histogram(),
            bps: histogram(),
            packets: 0,
            bytes: 0,
            unattributed: Unattributed::default(),
        }
    }
}

impl DirectionStats {
    fn add(&mut self, totals: &DirectionTotals, seconds: f64, rates: bool) {
        self.packets += totals.packets;
        self.bytes += totals.bytes;
        self.unattributed.add(totals);
        if rates && seconds > 0.0 {
            let _ = self.pps.record((totals.packets as f64 / seconds) as u64);
            let _ = self
                .bps
                .record((totals.bytes as f64 * 8.0 / seconds) as u64);
        }
    }

    fn report(&self) -> DirectionReport {
        DirectionReport {
            pps: Percentiles::of(&self.pps),
            bps: Percentiles::of(&self.bps),
            packets: self.packets,
            bytes: self.bytes,
            unattributed_packets: self.unattributed.unattributed_packets,
            unattributed_bytes: self.unattributed.unattributed_bytes,
            unattributed_reason: self.unattributed.main_reason().map(|reason| reason.name()),
            unattributed: self.unattributed,
        }
    }
}

impl InterfaceStats {
    fn report(&self, iface: &str) -> InterfaceReport {
        InterfaceReport {
            iface: iface.to_owned(),
            seconds: self.rx.pps.len(),
            rx: self.rx.report(),
            tx: self.tx.report(),
        }
    }
}

/// `flowmeter bench --json`: one object.
#[derive(Serialize)]
struct Report {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    duration_s: f64,
    /// flowmeter's own user + system CPU over the run, in % of one core.
    cpu_percent: f64,
    interfaces: Vec<InterfaceReport>,
}

#[derive(Serialize)]
struct InterfaceReport {
    iface: String,
    /// Whole seconds that went into the rates.
    seconds: u64,
    rx: DirectionReport,
    tx: DirectionReport,
}

#[derive(Serialize)]
struct DirectionReport {
    pps: Percentiles,
    bps: Percentiles,
    /// Every frame the kernel program saw over the run: exact.
    packets: u64,
    bytes: u64,
    /// Of those, in no flow, and the reason that explains most of them (as named in
    /// `totals` records: `evicted`, `table_full`, ...), if any does.
    unattributed_packets: u64,
    unattributed_bytes: u64,
    unattributed_reason: Option<&'static str>,
    /// The same, for the text report.
    #[serde(skip)]
    unattributed: Unattributed,
}

#[derive(Serialize)]
struct Percentiles {
    p50: u64,
    p95: u64,
    p99: u64,
    max: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            p50: histogram.value_at_quantile(0.50),
            p95: histogram.value_at_quantile(0.95),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        }
    }
}

fn print_second(snapshot: &Snapshot, elapsed: Duration) {
    let seconds = snapshot.interval.as_secs_f64().max(f64::EPSILON);
    for interface in &snapshot.interfaces {
        let rate = |d: &DirectionTotals| {
            format!(
                "{:>10} pkt/s {:>12}",
                units::decimal(d.packets as f64 / seconds, ""),
                units::decimal(d.bytes as f64 * 8.0 / seconds, "bit/s")
            )
        };
        println!(
            "{:>6.1}s {:<12} rx {}   tx {}",
            elapsed.as_secs_f64(),
            interface.iface,
            rate(&interface.rx),
            rate(&interface.tx)
        );
    }
}

fn print_report(report: &Report) {
    println!();
    for interface in &report.interfaces {
        println!(
            "{} over {:.1} s ({} whole seconds):",
            interface.iface, report.duration_s, interface.seconds
        );
        println!(
            "      {:>10} {:>10} {:>10} {:>10}   {:>12} {:>12} {:>12} {:>12}",
            "pkt/s p50", "p95", "p99", "max", "bit/s p50", "p95", "p99", "max"
        );
        for (name, d) in [("rx", &interface.rx), ("tx", &interface.tx)] {
            println!(
                "  {name}  {:>10} {:>10} {:>10} {:>10}   {:>12} {:>12} {:>12} {:>12}",
                units::decimal(d.pps.p50 as f64, ""),
                units::decimal(d.pps.p95 as f64, ""),
                units::decimal(d.pps.p99 as f64, ""),
                units::decimal(d.pps.max as f64, ""),
                units::decimal(d.bps.p50 as f64, "bit/s"),
                units::decimal(d.bps.p95 as f64, "bit/s"),
                units::decimal(d.bps.p99 as f64, "bit/s"),
                units::decimal(d.bps.max as f64, "bit/s"),
            );
        }
        println!(
            "  totals (exact): rx {} packets, {} bytes; tx {} packets, {} bytes",
            interface.rx.packets, interface.rx.bytes, interface.tx.packets, interface.tx.bytes
        );
        println!(
            "  rx {}; tx {}",
            interface.rx.unattributed, interface.tx.unattributed
        );
    }
    println!(
        "flowmeter's own CPU: {:.2}% of one core (user + system, over the run)",
        report.cpu_percent
    );
}

/// This process's user + system CPU time so far.
fn own_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_intervals_count_in_totals_but_not_in_rates() {
        let mut stats = DirectionStats::default();
        let second = DirectionTotals {
            packets: 1000,
            bytes: 64_000,
            ..Default::default()
        };
        stats.add(&second, 1.0, true);
        stats.add(&second, 0.2, false);
        let report = stats.report();
        assert_eq!((report.packets, report.bytes), (2000, 128_000));
        // Three significant figures: within 0.1% of the true rates.
        assert!(report.pps.max.abs_diff(1000) <= 1, "{}", report.pps.max);
        assert!(
            report.bps.p50.abs_diff(512_000) <= 512,
            "{}",
            report.bps.p50
        );
        assert_eq!(stats.pps.len(), 1);
    }
}
