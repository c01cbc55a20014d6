//! The log's own per-interval work over 10,000 steady flows (every flow moves every
//! second and none ends), in both `--flow-records` modes side by side: `flow` lines
//! (records table and JSON, or v1's line per flow), the `top` record (v2), `totals`,
//! and the batch written to /dev/null. Enrichment and the reader are not in it.
//!
//! Before timing, it prints how many bytes an hour of such traffic writes in each mode:
//! v2 over a simulated hour (3,600 one-second intervals, default timeouts), v1 over 60
//! intervals times 60 (its intervals are all alike); on stdout for `cargo xtask bench`,
//! and in words on stderr.

use std::{
    hint::black_box,
    path::PathBuf,
    time::{Duration, SystemTime},
};

#[path = "common/steady.rs"]
mod steady;

use criterion::{Criterion, criterion_group, criterion_main};
use flowmeter::{
    datapath::Snapshot,
    enrich::EnrichedSnapshot,
    sinks::{
        log::{FlowLines, LogSink},
        output::Destination,
        records::Timeouts,
    },
};

const FLOWS: u32 = 10_000;
const HOUR: u64 = 3600;

/// 10,000 TCP flows of 100 local processes to 10,000 remote hosts, each moving 15 kB
/// in and 400 B out per second; eth0's totals.
fn interval() -> EnrichedSnapshot {
    steady::of_workers(Snapshot {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ..steady::snapshot(FLOWS)
    })
}

fn sink(lines: FlowLines) -> LogSink {
    let destination = Destination::File {
        path: PathBuf::from("/dev/null"),
        rotate: None,
    };
    LogSink::open(&destination, lines).expect("opening /dev/null")
}

/// What the log does with one interval (no alerts: none fire on this traffic).
fn cycle(sink: &mut LogSink, interval: &EnrichedSnapshot) {
    sink.push_flows(interval).expect("flow lines");
    sink.push_top(interval).expect("top");
    sink.push_totals(interval).expect("totals");
    black_box(sink.commit().expect("writing"));
}

/// Bytes `intervals` intervals write.
fn bytes_over(lines: FlowLines, interval: &EnrichedSnapshot, intervals: u64) -> u64 {
    let mut sink = sink(lines);
    for _ in 0..intervals {
        cycle(&mut sink, interval);
    }
    sink.committed_bytes()
}

const RECORDS: FlowLines = FlowLines::Records {
    timeouts: Timeouts {
        idle: Duration::from_secs(15),
        active: Duration::from_secs(60),
    },
    top: 10,
};

fn log_cycle(c: &mut Criterion) {
    let interval = interval();
    let v1_per_hour = bytes_over(FlowLines::EveryInterval, &interval, 60) * (HOUR / 60);
    let v2_per_hour = bytes_over(RECORDS, &interval, HOUR);
    // On stdout, one line that `cargo xtask bench` reads into results.json.
    println!(
        "log_cycle/{FLOWS} bytes per hour: interval_v1 {v1_per_hour}, timeouts_v2 {v2_per_hour}"
    );
    eprintln!(
        "log_cycle/{FLOWS} steady flows: --flow-records interval (v1) writes {:.2} GB per \
         hour; timeouts (v2, idle 15 s, active 60 s, top 10) {:.1} MB per hour: 1/{:.0}",
        v1_per_hour as f64 / 1e9,
        v2_per_hour as f64 / 1e6,
        v1_per_hour as f64 / v2_per_hour as f64
    );

    let mut group = c.benchmark_group(format!("log_cycle/{FLOWS}"));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("interval_v1", |b| {
        let mut sink = sink(FlowLines::EveryInterval);
        b.iter(|| cycle(&mut sink, &interval));
    });
    group.bench_function("timeouts_v2", |b| {
        let mut sink = sink(RECORDS);
        // Past the first active timeout: the steady state, where a record is cut
        // every 60 intervals per flow.
        for _ in 0..61 {
            cycle(&mut sink, &interval);
        }
        b.iter(|| cycle(&mut sink, &interval));
    });
    group.finish();
}

criterion_group!(benches, log_cycle);
criterion_main!(benches);
