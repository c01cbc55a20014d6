//! The flight recorder's per-interval work (`Recorder::record`: the top talkers, the
//! split of the kept remotes per owner, one JSON line into the ring) over 10,000 and
//! 100,000 steady flows of 100 processes, each to its own remote; and, printed first,
//! the ring's memory once a 15-minute window of such seconds is full, with its bound.
//! No alert fires, so no file is written: the writer's work is on its own thread.
//! Beside it, the `top` record's own selection (`--top 10`), which `record` replaces.

use std::{
    hint::black_box,
    time::{Duration, SystemTime},
};

#[path = "common/steady.rs"]
mod steady;
#[path = "common/window.rs"]
mod window;

use criterion::{Criterion, criterion_group, criterion_main};
use flowmeter::{datapath::Snapshot, enrich::EnrichedSnapshot, sinks::top::TopTalkers};
use window::{WINDOW, recorder};

fn interval(flows: u32, second: u64) -> EnrichedSnapshot {
    steady::of_workers(Snapshot {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + second),
        ..steady::snapshot(flows)
    })
}

fn record(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut group = c.benchmark_group("recorder");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for flows in [10_000, 100_000] {
        let interval = interval(flows, 0);
        let mut recorder = recorder(dir.path());
        for _ in 0..WINDOW.as_secs() {
            recorder.record(&interval, &[]);
        }
        let (memory, bound) = recorder.memory();
        println!("recorder/{flows} ring after 15 min: {memory} bytes, bound {bound} bytes");
        eprintln!(
            "recorder/{flows} flows: the ring holds {:.1} MiB for 15 min ({} bytes a second); \
             its bound is {:.1} MiB",
            memory as f64 / 1_048_576.0,
            memory / WINDOW.as_secs() as usize,
            bound as f64 / 1_048_576.0
        );
        group.bench_function(format!("record/{flows}"), |b| {
            b.iter(|| black_box(recorder.record(&interval, &[]).top.flows));
        });
        // What the log did before for its `top` record alone, which `record` now shares:
        // the recorder's own cost is the difference.
        let mut talkers = TopTalkers::new(10);
        group.bench_function(format!("top_10_only/{flows}"), |b| {
            b.iter(|| black_box(talkers.of(&interval).flows));
        });
    }
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
