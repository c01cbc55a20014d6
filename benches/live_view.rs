//! `top` on the service's view (`Player::live`): what a new second costs the screen
//! thread with a full 15-minute window of the recorder's seconds (10,000 steady flows of
//! 100 processes, so every second holds its 30 remotes and 30 processes). The player
//! rebuilds the console from the window's seconds for each second shown, so this is
//! also what opening the view and each step key cost.

use std::{
    hint::black_box,
    time::{Duration, SystemTime},
};

#[path = "common/steady.rs"]
mod steady;
#[path = "common/window.rs"]
mod window;

use criterion::{Criterion, criterion_group, criterion_main};
use flowmeter::{
    console::{State, replay::Player},
    datapath::Snapshot,
    recorder::{
        Recorder,
        file::{Entry, Header, Recording},
        second::Second,
    },
};
use window::{WINDOW, recorder};

/// The recorder's second at `at` (seconds past a fixed epoch), as the socket sends it.
fn second(recorder: &mut Recorder, at: u64) -> Second {
    let interval = steady::of_workers(Snapshot {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + at),
        ..steady::snapshot(10_000)
    });
    let line = recorder.record(&interval, &[]).second;
    match serde_json::from_str(&line).expect("a second's line") {
        Entry::Second(second) => second,
        _ => unreachable!("the recorder's line is a second"),
    }
}

fn push(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut recorder = recorder(dir.path());
    let seconds: Vec<Second> = (0..WINDOW.as_secs())
        .map(|at| second(&mut recorder, at))
        .collect();
    let newest = second(&mut recorder, WINDOW.as_secs());
    let recording = Recording {
        header: Header::new(1.0, WINDOW.as_secs_f64(), 180.0, vec!["eth0".into()]),
        alerts: Vec::new(),
        seconds,
        damage: None,
    };
    let mut group = c.benchmark_group("live_view");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut player = Player::live(recording, 1, State::default());
    group.bench_function("push/900s_of_10000_flows", |b| {
        b.iter(|| player.push(black_box(newest.clone())));
    });
    group.finish();
}

criterion_group!(benches, push);
criterion_main!(benches);
