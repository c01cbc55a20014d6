//! A step of the wall clock, +1 h and -1 h, between two intervals, through the log
//! pipeline as `commands/log.rs` runs it (enriched snapshot → flow records, alert
//! engine, totals, summaries → `LogSink` → file): episodes go on, every duration and
//! rate is the real one, and every timestamp says what the wall clock said.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use super::Moment;
use crate::{
    datapath::{DirectionTotals, InterfaceTotals, Snapshot},
    enrich::{
        EnrichedSnapshot,
        geo::{CountryCode, Location},
    },
    sinks::{
        alerts::{ALERT_TYPE, AlertConfig, AlertEngine, RateLimit},
        fixtures::{business, flow},
        log::{FlowLines, LogSink},
        output::Destination,
        records::Timeouts,
        schema::timestamp,
        summary::Summaries,
    },
};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const MIB: u64 = 1 << 20;
/// 2027-01-15T08:00:00Z: a step of an hour either way stays on that day.
const T0: u64 = 1_800_000_000;
/// The wall clock is stepped just before this interval.
const STEPPED_AT: u64 = 11;
/// The foreign flow (and the rate over the limit) lasts this many intervals.
const LOUD: u64 = 20;
const INTERVALS: u64 = 30;
/// Summaries are taken after these intervals (the second period spans the step).
const SUMMARIES_AFTER: [u64; 3] = [5, 15, INTERVALS];

#[derive(Clone, Copy, Debug)]
enum Step {
    Forward,
    Back,
}

/// The test's two clocks: both advance with each interval; only the wall clock steps.
struct SteppedClock {
    wall: SystemTime,
    monotonic: Instant,
}

impl SteppedClock {
    fn new() -> Self {
        Self {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(T0),
            monotonic: Instant::now(),
        }
    }

    fn tick(&mut self, length: Duration) {
        self.wall += length;
        self.monotonic += length;
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Forward => self.wall += HOUR,
            Step::Back => self.wall -= HOUR,
        }
    }

    fn now(&self) -> Moment {
        Moment {
            wall: self.wall,
            monotonic: self.monotonic,
        }
    }
}

/// The wall clock's reading after interval `n`.
fn wall_after(n: u64, step: Step) -> SystemTime {
    let unstepped = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + n);
    match (n >= STEPPED_AT, step) {
        (false, _) => unstepped,
        (true, Step::Forward) => unstepped + HOUR,
        (true, Step::Back) => unstepped - HOUR,
    }
}

/// Interval `n`: a flow to CN of 2 MiB for the first [`LOUD`] intervals, a local flow
/// of 100 bytes in every one, and eth0's totals of both.
fn interval(n: u64, clock: &SteppedClock) -> EnrichedSnapshot {
    let mut flows = vec![flow("192.0.2.1", 53, 100, 0)];
    let mut facts = vec![business(Location::Local)];
    if n <= LOUD {
        flows.push(flow("203.0.113.7", 443, 2 * MIB, 0));
        facts.push(business(Location::Country(CountryCode::new("CN").unwrap())));
    }
    let bytes = flows.iter().map(|flow| flow.rx_bytes).sum();
    let snapshot = Snapshot {
        at: clock.wall,
        interval: SECOND,
        interfaces: vec![InterfaceTotals {
            iface: Arc::from("eth0"),
            rx: DirectionTotals {
                packets: flows.len() as u64,
                bytes,
                ..Default::default()
            },
            tx: DirectionTotals::default(),
        }],
        flows,
        overflow: Vec::new(),
    };
    EnrichedSnapshot::from_parts(snapshot, facts)
}

/// Every line `log` would write over [`INTERVALS`] one-second intervals with the wall
/// clock stepped before interval [`STEPPED_AT`], then stopped.
fn log_across(step: Step) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowmeter.jsonl");
    let destination = Destination::File {
        path: path.clone(),
        rotate: None,
    };
    let timeouts = Timeouts {
        idle: 3 * SECOND,
        active: 8 * SECOND,
    };
    let mut sink = LogSink::open(&destination, FlowLines::Records { timeouts, top: 0 }).unwrap();
    let mut alerts = AlertEngine::new(AlertConfig {
        home: "DE".parse().unwrap(),
        rate: Some(RateLimit::BitsPerSecond(8_000_000)),
        clear: 2 * SECOND,
        ..AlertConfig::default()
    });
    let mut clock = SteppedClock::new();
    let mut summaries = Summaries::new(clock.now());
    for n in 1..=INTERVALS {
        if n == STEPPED_AT {
            clock.step(step);
        }
        clock.tick(SECOND);
        let interval = interval(n, &clock);
        sink.push_flows(&interval).unwrap();
        if n == INTERVALS {
            sink.push_open_flows(interval.snapshot().at).unwrap();
        }
        for alert in alerts.observe(&interval) {
            sink.push_record(ALERT_TYPE, alert.at, alert.record())
                .unwrap();
        }
        sink.push_totals(&interval).unwrap();
        summaries.record_interval(interval.snapshot());
        summaries.record_cycle(Duration::from_micros(100));
        if SUMMARIES_AFTER.contains(&n) {
            let now = clock.now();
            let records = summaries.take(now);
            sink.push_summaries(now.wall, &records).unwrap();
        }
        assert!(sink.commit().unwrap().is_empty());
    }
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Seconds into 2027-01-15 of an RFC 3339 timestamp of that day.
fn seconds(ts: &Value) -> f64 {
    let ts = ts.as_str().unwrap();
    let time = ts
        .strip_prefix("2027-01-15T")
        .and_then(|rest| rest.strip_suffix('Z'))
        .unwrap_or_else(|| panic!("{ts} is not of 2027-01-15"));
    let parts: Vec<f64> = time.split(':').map(|part| part.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["type"] == kind).collect()
}

fn check_across(step: Step) {
    let lines = log_across(step);

    // Timestamps say what the wall clock said: each interval's totals, after the step too.
    let totals = of_type(&lines, "totals");
    assert_eq!(totals.len(), INTERVALS as usize);
    for (n, line) in (1..=INTERVALS).zip(&totals) {
        assert_eq!(
            line["ts"],
            timestamp(wall_after(n, step)),
            "{step:?}: {line}"
        );
        assert_eq!(line["interval_s"], 1.0);
    }

    // One episode per condition, however the wall clock moved: a start, then an end
    // once the traffic stopped and `clear` (2 s) passed, after 22 s of real time.
    let alerts = of_type(&lines, "alert");
    let story: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(
        story,
        [
            ("foreign", "start"),
            ("rate", "start"),
            ("foreign", "end"),
            ("rate", "end")
        ],
        "{step:?}: {alerts:?}"
    );
    for alert in &alerts {
        let started = alert["phase"] == "start";
        assert_eq!(alert["since"], timestamp(wall_after(0, step)), "{alert}");
        let expected = if started { 1.0 } else { (LOUD + 2) as f64 };
        assert_eq!(alert["duration_s"], expected, "{step:?}: {alert}");
        assert_eq!(alert["interval_s"], 1.0);
        if !started {
            assert_eq!(alert["ts"], timestamp(wall_after(LOUD + 2, step)));
            let message = alert["message"].as_str().unwrap();
            assert!(message.contains(", after 22s"), "{step:?}: {message}");
        }
        if alert["kind"] == "rate" && started {
            assert_eq!(alert["rate_bps"], (2 * MIB + 100) * 8, "{alert}");
        }
    }

    // Flow records: never longer than the active timeout and an interval, never
    // negative, and what moved is counted once.
    let flows = of_type(&lines, "flow");
    let mut local_bytes = 0;
    let mut foreign_bytes = 0;
    for record in &flows {
        let length = seconds(&record["end"]) - seconds(&record["start"]);
        assert!(
            (1.0..=9.0).contains(&length),
            "{step:?}: {length} s: {record}"
        );
        let bytes = record["rx_bytes"].as_u64().unwrap();
        match record["remote_ip"].as_str().unwrap() {
            "192.0.2.1" => local_bytes += bytes,
            _ => foreign_bytes += bytes,
        }
    }
    assert_eq!(local_bytes, 100 * INTERVALS);
    assert_eq!(foreign_bytes, 2 * MIB * LOUD);
    // The record ended by `stop` ends with the last interval, on the stepped clock.
    let stopped = flows.iter().find(|r| r["end_reason"] == "stop").unwrap();
    assert_eq!(stopped["end"], timestamp(wall_after(INTERVALS, step)));

    // Summaries: each period as long as it really was, ending when the clock said.
    let summaries = of_type(&lines, "summary");
    assert_eq!(
        summaries.len(),
        2 * SUMMARIES_AFTER.len(),
        "interface and cycle"
    );
    let mut previous = 0;
    for (after, pair) in SUMMARIES_AFTER.iter().zip(summaries.chunks(2)) {
        for summary in pair {
            let period = (after - previous) as f64;
            assert_eq!(summary["period_s"], period, "{step:?}: {summary}");
            assert_eq!(summary["end"], timestamp(wall_after(*after, step)));
            let length = seconds(&summary["end"]) - seconds(&summary["start"]);
            assert_eq!(length, period, "{step:?}: {summary}");
        }
        assert_eq!(pair[0]["intervals"], after - previous);
        previous = *after;
    }
}

#[test]
fn a_wall_clock_step_forward_stretches_no_duration_and_starts_no_episode() {
    check_across(Step::Forward);
}

#[test]
fn a_wall_clock_step_back_makes_no_duration_negative_and_ends_no_episode() {
    check_across(Step::Back);
}
