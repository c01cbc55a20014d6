//! The console (`flowmeter top`) at 10k, 100k and 1M flows that all moved, each with a
//! process: how long a key takes to answer (a new sort, a new grouping: the view is built
//! again from the aggregator) and what one interval costs the screen thread (ingest, the
//! flood watch, the facts, the view). Issue 11's target: keys answered within 100 ms at
//! 1M flows.
//!
//! The console has 40 s of history first, as on a busy host.

use std::{hint::black_box, path::PathBuf, sync::Arc, time::Duration};

#[path = "common/steady.rs"]
mod steady;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flowmeter::{
    console::{Console, Key, Setup, State},
    enrich::{
        EnrichedSnapshot, Facts,
        geo::Location,
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Verdict},
    },
};

const SIZES: [u32; 3] = [10_000, 100_000, 1_000_000];

/// The steady snapshot, its flows owned by 64 worker processes.
fn interval(flows: u32) -> EnrichedSnapshot {
    let workers: Vec<Arc<ProcessInfo>> = (0..64)
        .map(|n| {
            Arc::new(ProcessInfo {
                pid: 10_000 + n,
                comm: format!("worker{n}"),
                exe: Some(PathBuf::from("/usr/bin/worker")),
                exe_deleted: false,
                cgroup: Default::default(),
                uid: 33,
                user: "www-data".into(),
                cmdline: format!("/usr/bin/worker{n} --serve"),
            })
        })
        .collect();
    EnrichedSnapshot::from_fn(steady::snapshot(flows), |flow| Facts {
        owner: Owner::Process(workers[flow.id.remote_port as usize % workers.len()].clone()),
        location: Location::Unknown,
        judgement: Judgement {
            verdict: Verdict::Business,
            reasons: vec![],
            foreign: false,
        },
    })
}

fn console_after_40s(interval: &EnrichedSnapshot) -> Console {
    let mut console = Console::new(Setup::default(), State::default(), None);
    for _ in 0..40 {
        console.ingest(interval.clone());
    }
    console
}

fn console(c: &mut Criterion) {
    let mut keys = c.benchmark_group("console_key");
    keys.measurement_time(Duration::from_secs(5));
    for flows in SIZES {
        if flows >= 1_000_000 {
            keys.sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        let interval = interval(flows);
        let mut console = console_after_40s(&interval);
        // Sort by 10 s, then back by 2 s: each press builds the view again.
        let mut sorts = [Key::Char('2'), Key::Char('1')].into_iter().cycle();
        keys.bench_with_input(BenchmarkId::new("sort", flows), &flows, |b, _| {
            b.iter(|| black_box(console.press(sorts.next().unwrap())))
        });
        keys.bench_with_input(BenchmarkId::new("group", flows), &flows, |b, _| {
            b.iter(|| black_box(console.press(Key::Char('g'))))
        });
    }
    keys.finish();

    let mut cycle = c.benchmark_group("console_interval");
    cycle.measurement_time(Duration::from_secs(5));
    for flows in SIZES {
        if flows >= 1_000_000 {
            cycle
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        let interval = interval(flows);
        let mut console = console_after_40s(&interval);
        // The clone is the metering thread's: it hands the screen its own snapshot.
        cycle.bench_with_input(BenchmarkId::from_parameter(flows), &flows, |b, _| {
            b.iter_batched(
                || interval.clone(),
                |interval| console.ingest(interval),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    cycle.finish();
}

criterion_group!(benches, console);
criterion_main!(benches);
