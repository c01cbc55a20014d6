//! Memory is returned after a flood: `flowmeter log` (and `top`) in a namespace meters a spoofed
//! flood of [`FLOOD_SOURCES`] distinct sources (hand-built UDP frames from
//! 198.51.100.0/24 and 203.0.113.0/24, an AF_PACKET socket in the peer namespace,
//! `common::packets`) that fills its flow table, without the new-flow budget. Once the
//! flood's flows have aged out (`--idle-timeout 2`: their records end, and they leave
//! the kernel table with them), its resident memory must come back to within
//! [`BOUND`] times what it was before the flood. `top` has no idle timeout: it forgets
//! a flow idle for a minute (`flow::FORGET_AFTER`), and the flow leaves the kernel table
//! with it, so its test waits for that.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    io::Write,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use common::{
    Flowmeter,
    attach::{attached, wait_detached},
    console::{self, ScriptedConsole},
    netns::{Family, MAC_A, MAC_B, VethPair},
    packets::{self, RawSender},
};

/// More sources than the table holds (`--flows`), so it is full and the kernel evicts.
const FLOOD_SOURCES: u64 = 100_000;
const FLOWS: u64 = 65_536;
/// 60-byte frames, the smallest Ethernet carries (without its checksum).
const FLOOD_PAYLOAD: usize = 18;
/// After the flood, resident memory within this many times what it was before.
const BOUND: u64 = 2;
/// The flood must have grown the process at least this much, or it tested nothing.
const GROWTH: u64 = 3;
/// Longest wait for the flood's flows to age out and the memory to come back: the idle
/// timeout, the intervals that end the records, and the debug build's slow cycles.
const RETURN_TIMEOUT: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The same for `top`: the minute after which it forgets an idle flow, then as above.
const TOP_RETURN_TIMEOUT: Duration = Duration::from_secs(90);

/// The process's resident memory, in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The mappings holding the most resident memory, largest first (from /proc/PID/smaps).
fn largest_regions(pid: i32) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut regions: Vec<(u64, String)> = Vec::new();
    let mut name = String::new();
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kib = rss
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            regions.push((kib, name.clone()));
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            name = line.to_owned();
        }
    }
    regions.sort_by(|a, b| b.cmp(a));
    regions
        .iter()
        .take(6)
        .map(|(kib, name)| format!("{kib:>8} KiB {name}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn log_gives_its_memory_back_once_a_floods_flows_have_aged_out() {
    let pair = VethPair::new(Family::V4);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log_path = dir.path().join("flowmeter.jsonl");
    // To a file: a pipe read by this (debug) harness would hold the writer back.
    let flowmeter = Flowmeter::spawn(
        &pair.a,
        &format!(
            "log --iface {} --flows {FLOWS} --new-flow-budget 0 --interval 0.5 \
             --idle-timeout 2 --output {}",
            pair.a_if,
            log_path.display()
        ),
    );
    let pid = flowmeter.pid();
    common::wait_for_start_record(&log_path, START_TIMEOUT);
    // A few intervals, for the steady state of an idle host.
    thread::sleep(Duration::from_secs(2));
    let before = rss_kib(pid);

    let (peak, after) = flood_and_age(&pair, pid, before, RETURN_TIMEOUT);
    let finished = flowmeter.stop();
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    wait_detached(&pair);
    assert_returned(before, peak, after, RETURN_TIMEOUT);
}

/// Floods `pair`'s end a with [`FLOOD_SOURCES`] distinct sources while watching the
/// resident memory of `pid` (which was `before` KiB), then waits at most `timeout` for it
/// to come back within [`BOUND`] times `before`. Returns the peak and the last reading.
fn flood_and_age(pair: &VethPair, pid: i32, before: u64, timeout: Duration) -> (u64, u64) {
    let a_ip = packets::ipv4(pair.a_ip);
    let peak = AtomicU64::new(before);
    let flooding = AtomicBool::new(true);
    let began = Instant::now();
    thread::scope(|scope| {
        scope.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(100));
            }
        });
        pair.b.run(|| {
            let sender = RawSender::bind(&pair.b_if);
            let macs = (packets::mac(MAC_A), packets::mac(MAC_B));
            sender.send_udp(FLOOD_SOURCES, FLOOD_PAYLOAD, |n| {
                packets::distinct_source(n, a_ip, macs)
            });
        });
        // The flows are read (and grow the tables) in the intervals after the last frame.
        thread::sleep(Duration::from_secs(2));
        flooding.store(false, Ordering::Relaxed);
    });
    let peak = peak.into_inner();
    eprintln!(
        "{FLOOD_SOURCES} sources sent and read in {:?}",
        began.elapsed()
    );

    let aging = Instant::now();
    let mut after = rss_kib(pid);
    let mut peak = peak;
    while after > BOUND * before && aging.elapsed() < timeout {
        thread::sleep(Duration::from_millis(500));
        after = rss_kib(pid);
        peak = peak.max(after);
        eprintln!(
            "{:>5.1} s after: {after} KiB",
            aging.elapsed().as_secs_f64()
        );
    }
    if after > BOUND * before {
        eprintln!("where it is:\n{}", largest_regions(pid));
    }
    eprintln!(
        "RSS before the flood {before} KiB, peak {peak} KiB, {after} KiB {:?} after it",
        aging.elapsed()
    );

    (peak, after)
}

/// Holds the measurements to the bounds.
fn assert_returned(before: u64, peak: u64, after: u64, timeout: Duration) {
    assert!(
        peak >= GROWTH * before,
        "the flood grew flowmeter from {before} KiB to only {peak} KiB: it tested nothing"
    );
    assert!(
        after <= BOUND * before,
        "{timeout:?} after the flood, flowmeter still holds {after} KiB: more than \
         {BOUND}x the {before} KiB before it (peak {peak} KiB)"
    );
}

#[test]
fn top_gives_its_memory_back_once_it_has_forgotten_a_floods_flows() {
    let pair = VethPair::new(Family::V4);
    let mut top = ScriptedConsole::start(
        &pair.a,
        &format!(
            "--iface {} --flows {FLOWS} --new-flow-budget 0 --interval 0.5",
            pair.a_if
        ),
        "",
    );
    let deadline = Instant::now() + START_TIMEOUT;
    while attached(&pair).tc_ingress == 0 {
        assert!(
            Instant::now() < deadline,
            "top did not attach in {START_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let pid = console::top_pid(&pair.a_if).expect("the pid of flowmeter top");
    // A few intervals, for the steady state of an idle host.
    thread::sleep(Duration::from_secs(2));
    let before = rss_kib(pid);
    let (peak, after) = flood_and_age(&pair, pid, before, TOP_RETURN_TIMEOUT);
    top.keys().write_all(b"q").expect("pressing q");
    let deadline = Instant::now() + START_TIMEOUT;
    while top.running() {
        assert!(Instant::now() < deadline, "top did not quit on q");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(top.wait().success(), "top failed");
    wait_detached(&pair);
    assert_returned(before, peak, after, TOP_RETURN_TIMEOUT);
}
