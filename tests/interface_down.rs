//! An interface that is down at start is metered anyway, with one warning that says so
//! and what to do; it counts nothing until it is up, and then it counts exactly.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{net::UdpSocket, time::Duration};

use common::{
    Flowmeter,
    netns::{Family, VethPair},
};

#[test]
fn a_down_interface_is_metered_with_a_warning_and_counts_once_up() {
    let pair = VethPair::new(Family::V4);
    pair.a.ip(&format!("link set {} down", pair.a_if));
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    pair.a.ip(&format!("link set {} up", pair.a_if));
    pair.a.wait_operstate_up(&pair.a_if);
    let before = pair.wait_quiet();
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let receiver = pair
        .a
        .run(|| UdpSocket::bind((a_ip, 9000)).expect("bind in a"));
    pair.b.run(|| {
        let sender = UdpSocket::bind((b_ip, 0)).expect("bind in b");
        for _ in 0..10 {
            sender.send_to(&[7; 100], (a_ip, 9000)).expect("send");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let after = pair.wait_quiet();
    let finished = flowmeter.stop();
    drop(receiver);
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    let warnings: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains("is down"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "flowmeter: warning: {0} is down; metering it anyway, it counts nothing until \
             it is up (ip link set {0} up)",
            pair.a_if
        )],
        "{}",
        finished.stderr
    );
    // Once up, the ten datagrams are counted: the run's totals are at least what moved
    // after it came up, and equal to the interface's counters over the whole run.
    let since_up = after.since(&before);
    assert!(since_up.rx_packets >= 10, "{since_up:?}");
    let totals = finished.log().totals_sum(&pair.a_if);
    assert!(
        totals.counters().rx_packets >= since_up.rx_packets,
        "{totals:?} {since_up:?}"
    );
}
