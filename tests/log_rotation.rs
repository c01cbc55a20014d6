//! `flowmeter log --output FILE --rotate-size 1` under UDP load, while the file is renamed
//! away (logrotate's rename) and SIGHUP comes only after some intervals were written
//! since: the size rotations that meet the rename leave the rotated numbers `.1..N`
//! without a gap, and every line is written once, whole (issue 12 item 9).
//!
//! A rotation size of one byte rotates at every batch, so every interval between a
//! rename and its SIGHUP meets one. The renamed files take names logrotate would not
//! shift, so only flowmeter numbers files. Needs root (it fails without it); traffic
//! never leaves the test's namespaces.

mod common;

use std::{
    collections::HashSet,
    fs,
    net::UdpSocket,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use common::{
    Flowmeter,
    netns::{Family, VethPair},
    traffic::send_datagrams,
};
use serde_json::Value;

const INTERVAL: Duration = Duration::from_millis(100);
const RENAMES: usize = 4;
const LOG: &str = "flowmeter.jsonl";

#[test]
fn a_rename_before_sighup_meeting_size_rotation_leaves_no_gap_and_every_line_once() {
    let pair = VethPair::new(Family::V4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let args = format!(
        "log --iface {} --interval {} --summary 0.5 --output {} --rotate-size 1 \
         --rotate-keep 1000",
        pair.a_if,
        INTERVAL.as_secs_f64(),
        path.display()
    );
    let flowmeter = Flowmeter::spawn(&pair.a, &args);
    wait_for_start(dir.path());

    // Load: a new UDP flow every few milliseconds, for as long as the renames go on.
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            let to = pair
                .b
                .run(|| UdpSocket::bind((pair.b_ip, 0)).expect("bind in b"));
            while !stop.load(Ordering::Relaxed) {
                let from = pair
                    .a
                    .run(|| UdpSocket::bind((pair.a_ip, 0)).expect("bind in a"));
                send_datagrams(&from, &to, 20, 500);
            }
        });
        // The load stops however this ends: a failed step must not leave it running.
        let _stop_load = SetOnDrop(&stop);
        for k in 0..RENAMES {
            thread::sleep(3 * INTERVAL);
            // The log is made again by the write after a rotation or a reopen: on a
            // loaded machine that may be an interval or two away.
            wait_until_exists(&path);
            fs::rename(&path, dir.path().join(format!("renamed-{k}"))).unwrap();
            // Intervals written after the rename, before the signal: each one rotates.
            thread::sleep(3 * INTERVAL);
            flowmeter.signal(libc::SIGHUP);
        }
        thread::sleep(3 * INTERVAL);
    });
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "{}", finished.stderr);

    let mut numbers: Vec<usize> = names(dir.path())
        .iter()
        .filter_map(|name| name.strip_prefix(&format!("{LOG}.")))
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.sort_unstable();
    assert!(numbers.len() > 10, "rotated {} times", numbers.len());
    assert_eq!(
        numbers,
        (1..=numbers.len()).collect::<Vec<_>>(),
        "rotated files numbered without a gap"
    );

    // Every line once, whole, however it was spread over the files.
    let mut lines = HashSet::new();
    let mut records = Vec::new();
    for name in names(dir.path()) {
        let text = fs::read_to_string(dir.path().join(&name)).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends in a whole line"
        );
        for line in text.lines() {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not a whole JSON line ({e}): {line}"));
            assert!(lines.insert(line.to_owned()), "written twice: {line}");
            records.push(record);
        }
    }
    let of_type = |kind: &'static str| records.iter().filter(move |r| r["type"] == kind);
    assert_eq!(of_type("start").count(), 1);
    assert_eq!(of_type("gap").count(), 0, "no write failed");
    // One totals line per interval (one interface), and the cycle summaries count the
    // intervals: none is missing.
    let intervals: u64 = of_type("summary")
        .filter(|r| r["scope"] == "cycle")
        .map(|r| r["cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(of_type("totals").count() as u64, intervals);
    assert!(of_type("flow").count() > 0, "the load made flow records");
}

/// Waits (at most 30 s) for the `start` record in the log file.
fn wait_for_start(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let text = fs::read_to_string(dir.join(LOG)).unwrap_or_default();
        if text.contains("\"type\":\"start\"") {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("no start record in {}", dir.join(LOG).display());
}

fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Sets its flag when dropped, also while a panic unwinds.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits (at most 10 s) until `path` exists.
fn wait_until_exists(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} was not made again",
            path.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}
