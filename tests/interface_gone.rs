//! An interface deleted while `flowmeter log` meters it: one stderr line and one
//! `interface` record say it is gone, its totals until then are all in the log, and no
//! totals are written for it while it is gone. Created again under the same name, it is
//! metered again (a `back` record, and its new traffic counted exactly); created again
//! under an index the programs' interface map cannot hold, the record and stderr say it
//! is not metered and why. `top` keeps running through the same, attaches to the new
//! interface, and says what happened once its screen is closed.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces, which
//! are deleted (with the veth pair) however the test ends.

mod common;

use std::{
    io::Write,
    net::UdpSocket,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use common::{
    Flowmeter, Log, TotalsRecord,
    attach::{attached, wait_detached},
    console::ScriptedConsole,
    netns::{Counters, Family, VethPair, unique_name},
};
use serde::Deserialize;

/// Longest wait for a record flowmeter writes at its next interval (0.2 s).
const RECORD_TIMEOUT: Duration = Duration::from_secs(10);
/// An ifindex far beyond the interface map's room (the highest metered at start + 4,096).
const INDEX_BEYOND_THE_MAP: u32 = 60_000;

#[test]
fn a_deleted_interface_is_told_once_dropped_from_the_totals_and_metered_again_when_back() {
    let pair = VethPair::new(Family::V4);
    let before = pair.wait_quiet();
    // lo's totals, written every interval, show the intervals that pass while a_if is gone.
    let mut flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --iface lo --interval 0.2", pair.a_if),
    );
    let first = send(&pair, 10).since(&before);

    pair.a.ip(&format!("link del {}", pair.a_if));
    let gone = wait_for_interface(&mut flowmeter, &pair.a_if, "gone");
    assert_eq!(gone["metered"], false, "{gone}");
    // Two intervals with lo's totals and none of a_if's.
    for _ in 0..2 {
        wait_for_totals(&mut flowmeter, "lo");
    }

    pair.add_link(None);
    let back = wait_for_interface(&mut flowmeter, &pair.a_if, "back");
    assert_eq!(back["metered"], true, "{back}");
    assert_eq!(back["ingress"], "tc", "{back}");
    let second = send(&pair, 7);

    pair.a.ip(&format!("link del {}", pair.a_if));
    wait_for_interface(&mut flowmeter, &pair.a_if, "gone");
    pair.add_link(Some(INDEX_BEYOND_THE_MAP));
    let refused = wait_for_interface(&mut flowmeter, &pair.a_if, "back");
    assert_eq!(refused["metered"], false, "{refused}");
    assert_eq!(refused["ifindex"], INDEX_BEYOND_THE_MAP, "{refused}");
    let reason = refused["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("beyond"), "{refused}");
    send(&pair, 3);
    wait_for_totals(&mut flowmeter, "lo");

    let finished = flowmeter.stop();
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    let said: Vec<&str> = finished
        .stderr_lines()
        .into_iter()
        .filter(|line| line.contains(&format!("interface {} ", pair.a_if)))
        .collect();
    let a_if = &pair.a_if;
    let gone_line = format!(
        "flowmeter: interface {a_if} is gone (deleted); its counts until now are kept, it is \
         left out of the totals from here on, and metered again if it comes back"
    );
    assert_eq!(said.len(), 4, "{}", finished.stderr);
    assert_eq!(said[0], gone_line);
    assert!(
        said[1].starts_with(&format!(
            "flowmeter: interface {a_if} is back (ifindex {}); metered again: ingress tc",
            back["ifindex"]
        )),
        "{}",
        said[1]
    );
    assert_eq!(said[2], gone_line);
    assert_eq!(
        said[3],
        format!(
            "flowmeter: interface {a_if} is back (ifindex {INDEX_BEYOND_THE_MAP}) but is not \
             metered: {reason}"
        )
    );

    // Each life of a_if in the log: its totals equal what the interface counted, and
    // the last life, not metered, has none.
    let lives = lives_of(&finished.log(), a_if);
    assert_eq!(lives.len(), 3, "{lives:?}");
    assert_eq!(sum(&lives[0]), first, "before the first deletion");
    assert_eq!(sum(&lives[1]), second, "metered again once back");
    assert!(lives[2].is_empty(), "not metered: {:?}", lives[2]);
}

#[test]
fn top_keeps_running_when_its_interface_is_deleted_and_attaches_when_it_is_back() {
    let pair = VethPair::new(Family::V4);
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name());
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let stderr = scratch.join("stderr");
    // `script` gives the console a terminal; `q` on its input reaches the console.
    let mut top = ScriptedConsole::start(
        &pair.a,
        &format!("--iface '{}' --interval 0.2", pair.a_if),
        &format!("2>'{}'", stderr.display()),
    );
    wait_until("top attached", || attached(&pair).tc_ingress == 1);

    pair.a.ip(&format!("link del {}", pair.a_if));
    thread::sleep(Duration::from_millis(600));
    assert!(top.running(), "top ended when its interface was deleted");
    pair.add_link(None);
    wait_until("top attached to the new interface", || {
        attached(&pair).tc_ingress == 1
    });

    top.keys().write_all(b"q").expect("pressing q");
    wait_until("top quit", || !top.running());
    let status = top.wait();
    let said = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "{status}: {said}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(
        lines[0].contains(&format!("interface {} is gone", pair.a_if)),
        "{said}"
    );
    assert!(
        lines[1].contains(&format!("interface {} is back", pair.a_if)),
        "{said}"
    );
    wait_detached(&pair);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Waits at most 20 s for `done` (loading and verifying the programs included).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after 20 s");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `datagrams` from b to a, and returns what a's interface counted since it was
/// created, once the link is quiet (a re-created link is quiet until this sends).
fn send(pair: &VethPair, datagrams: usize) -> Counters {
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let receiver = pair
        .a
        .run(|| UdpSocket::bind((a_ip, 9000)).expect("bind in a"));
    pair.b.run(|| {
        let sender = UdpSocket::bind((b_ip, 0)).expect("bind in b");
        for _ in 0..datagrams {
            sender.send_to(&[7; 100], (a_ip, 9000)).expect("send");
        }
    });
    drop(receiver);
    pair.wait_quiet()
}

fn wait_for_interface(flowmeter: &mut Flowmeter, iface: &str, event: &str) -> serde_json::Value {
    flowmeter
        .wait_for_line(RECORD_TIMEOUT, |r| {
            r["type"] == "interface" && r["iface"] == iface && r["event"] == event
        })
        .unwrap_or_else(|| panic!("no `{event}` record for {iface} in {RECORD_TIMEOUT:?}"))
}

fn wait_for_totals(flowmeter: &mut Flowmeter, iface: &str) {
    flowmeter
        .wait_for_line(RECORD_TIMEOUT, |r| {
            r["type"] == "totals" && r["iface"] == iface
        })
        .unwrap_or_else(|| panic!("no totals for {iface} in {RECORD_TIMEOUT:?}"));
}

/// `iface`'s totals records, split at each `back` record: one list per life of the
/// interface. The interval of a `gone` record (same `ts`) has its last totals; none may
/// come after them until the next `back`.
fn lives_of(log: &Log, iface: &str) -> Vec<Vec<TotalsRecord>> {
    let mut lives = vec![Vec::new()];
    // The `ts` of the `gone` record while the interface is gone.
    let mut gone: Option<&serde_json::Value> = None;
    for record in &log.records {
        if record["iface"] != iface {
            continue;
        }
        match record["type"].as_str() {
            Some("totals") => {
                assert!(
                    gone.is_none_or(|ts| *ts == record["ts"]),
                    "totals written while {iface} is gone: {record}"
                );
                let totals = TotalsRecord::deserialize(record).expect("a totals record");
                lives.last_mut().expect("a life").push(totals);
            }
            Some("interface") if record["event"] == "gone" => {
                assert!(gone.is_none(), "gone twice: {record}");
                gone = Some(&record["ts"]);
            }
            Some("interface") => {
                assert!(gone.is_some(), "back without being gone: {record}");
                gone = None;
                lives.push(Vec::new());
            }
            _ => {}
        }
    }
    lives
}

fn sum(totals: &[TotalsRecord]) -> Counters {
    totals
        .iter()
        .map(TotalsRecord::counters)
        .fold(Counters::default(), |sum, t| sum.plus(&t))
}
