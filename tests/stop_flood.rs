//! SIGTERM at full load: `flowmeter log --flows 1048576` meters a flood of
//! [`FLOOD_SOURCES`] distinct spoofed sources (hand-built UDP frames from 198.51.100.0/24 and
//! 203.0.113.0/24, an AF_PACKET socket in the peer namespace, `common::packets`), and
//! is told to stop while it holds them all. It must exit 0 within [`STOP_BOUND`],
//! with every line valid JSON, the last interval's `totals` written, a `stop` record for
//! the flows still open, totals over the run equal to the interface's own counters, and
//! nothing left attached.
//!
//! The flood is sent whole at full rate, then the interface's counters settle (that fixes
//! what the totals must equal) and the signal comes: flowmeter is still at full load then,
//! with every source a live flow in the kernel table and in its open records.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    fs::File,
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use serde::Deserialize;

use common::{
    Flowmeter,
    attach::wait_detached,
    netns::{Counters, Family, MAC_A, MAC_B, VethPair},
    packets::{self, RawSender},
};

/// A tenth of issue 11's million: the harness's debug build writes a stop record about
/// 30x slower than the release build (serde_json unoptimised), so a million would take
/// minutes to stop here. The release build at a million sources is measured by hand.
const FLOOD_SOURCES: u64 = 100_000;
/// 60-byte frames, the smallest Ethernet carries (without its checksum).
const FLOOD_PAYLOAD: usize = 18;
/// What the debug build (the test harness's) meets on this 2-vCPU machine with room to
/// spare; the release build stops within the 2 s the service promises (see the report
/// of issue 11 and docs/service.md).
const STOP_BOUND: Duration = Duration::from_secs(30);
/// Loading and verifying the programs, and creating a million-entry table.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The fields of a log line this test reads; every line must parse as one.
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    iface: String,
    #[serde(default)]
    end_reason: String,
    #[serde(default)]
    rx_packets: u64,
    #[serde(default)]
    rx_bytes: u64,
    #[serde(default)]
    tx_packets: u64,
    #[serde(default)]
    tx_bytes: u64,
    #[serde(default)]
    rx_unattributed_packets: u64,
    #[serde(default)]
    rx_unattributed_bytes: u64,
    #[serde(default)]
    tx_unattributed_packets: u64,
    #[serde(default)]
    tx_unattributed_bytes: u64,
}

impl Line {
    fn counters(&self) -> Counters {
        Counters {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            tx_packets: self.tx_packets,
            tx_bytes: self.tx_bytes,
        }
    }

    fn unattributed(&self) -> Counters {
        Counters {
            rx_packets: self.rx_unattributed_packets,
            rx_bytes: self.rx_unattributed_bytes,
            tx_packets: self.tx_unattributed_packets,
            tx_bytes: self.tx_unattributed_bytes,
        }
    }
}

/// What the log says over the run, read line by line (it is large).
#[derive(Default, Debug)]
struct Read {
    lines: u64,
    totals: Counters,
    unattributed: Counters,
    flows: Counters,
    stop_records: u64,
    /// The types of the last few lines, in order.
    tail: Vec<String>,
}

fn read_log(path: &std::path::Path, iface: &str) -> Read {
    let mut read = Read::default();
    for (n, line) in BufReader::new(File::open(path).expect("the log"))
        .lines()
        .enumerate()
    {
        let line = line.expect("reading the log");
        let parsed: Line = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("line {} is not a valid record ({e}): {line}", n + 1));
        read.lines += 1;
        match parsed.kind.as_str() {
            "totals" if parsed.iface == iface => {
                read.totals = read.totals.plus(&parsed.counters());
                read.unattributed = read.unattributed.plus(&parsed.unattributed());
            }
            "flow" if parsed.iface == iface => {
                read.flows = read.flows.plus(&parsed.counters());
                read.stop_records += u64::from(parsed.end_reason == "stop");
            }
            _ => {}
        }
        if read.tail.len() == 4 {
            read.tail.remove(0);
        }
        read.tail.push(parsed.kind);
    }
    read
}

#[test]
fn sigterm_in_a_flood_exits_fast_with_the_last_interval_exact() {
    let pair = VethPair::new(Family::V4);
    let a_ip = packets::ipv4(pair.a_ip);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log_path = dir.path().join("flowmeter.jsonl");
    let before = pair.wait_quiet();
    // To a file: a pipe read by this (debug) harness would hold the writer back.
    let flowmeter = Flowmeter::spawn(
        &pair.a,
        &format!(
            "log --iface {} --flows 1048576 --interval 1 --output {}",
            pair.a_if,
            log_path.display()
        ),
    );
    common::wait_for_start_record(&log_path, START_TIMEOUT);

    let began = Instant::now();
    let flood_bytes = pair.b.run(|| {
        let sender = RawSender::bind(&pair.b_if);
        // Parsed once: the harness is a debug build, and this runs for every frame.
        let macs = (packets::mac(MAC_A), packets::mac(MAC_B));
        sender.send_udp(FLOOD_SOURCES, FLOOD_PAYLOAD, |n| {
            packets::distinct_source(n, a_ip, macs)
        })
    });
    eprintln!("{FLOOD_SOURCES} sources sent in {:?}", began.elapsed());
    let counted = pair.wait_quiet().since(&before);
    assert!(
        counted.rx_packets >= FLOOD_SOURCES && counted.rx_bytes >= flood_bytes,
        "a_if received the flood: {counted:?}"
    );

    let signalled = Instant::now();
    flowmeter.signal(libc::SIGTERM);
    // `wait` fails the test if flowmeter takes longer.
    let finished = flowmeter.wait(STOP_BOUND);
    let took = signalled.elapsed();
    eprintln!("flowmeter exited {took:?} after SIGTERM");
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    wait_detached(&pair);

    let log = read_log(&log_path, &pair.a_if);
    eprintln!(
        "{} lines, {} stop records, totals {:?}",
        log.lines, log.stop_records, log.totals
    );
    assert_eq!(
        log.totals, counted,
        "the totals (left) differ from the interface's own counters (right)"
    );
    assert_eq!(
        log.flows.plus(&log.unattributed),
        log.totals,
        "flow records + unattributed (left) differ from the totals (right)"
    );
    assert!(
        log.stop_records > 0,
        "the flows open at the signal got their stop records"
    );
    // The last interval is closed by its totals; the final summaries follow it.
    let last_interval = log
        .tail
        .iter()
        .rev()
        .find(|kind| *kind != "summary")
        .expect("an interval before the summaries");
    assert_eq!(last_interval, "totals", "{:?}", log.tail);
    assert_eq!(log.tail.last().map(String::as_str), Some("summary"));
}
