//! `flowmeter bench` measures an interface while a load runs: its JSON report carries
//! per-second rates and totals that equal the interface's own counters exactly.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use common::netns::{Family, VethPair};

const DATAGRAMS: u64 = 300;

#[test]
fn bench_reports_rates_and_exact_totals() {
    let pair = VethPair::new(Family::V4);
    let before = pair.wait_quiet();
    // Once it says "run your load now", the programs are attached.
    let (child, stderr_reader) = common::spawn_until_stderr(
        &pair.a,
        &["bench", "--iface", &pair.a_if, "--duration", "3", "--json"],
        "run your load now",
        Duration::from_secs(30),
    );

    let sender = pair
        .a
        .run(|| UdpSocket::bind((pair.a_ip, 0)).expect("bind in a"));
    let _receiver = pair
        .b
        .run(|| UdpSocket::bind((pair.b_ip, 9000)).expect("bind in b"));
    for _ in 0..DATAGRAMS {
        sender
            .send_to(&[3; 100], SocketAddr::new(pair.b_ip, 9000))
            .expect("send");
    }
    let output = child.wait_with_output().expect("wait for flowmeter bench");
    let stderr = stderr_reader.join().expect("stderr reader");
    assert!(output.status.success(), "bench failed: {stderr}");
    let after = pair.a_counters();

    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(report["type"], "bench", "{report}");
    let iface = &report["interfaces"][0];
    assert_eq!(iface["iface"], pair.a_if.as_str(), "{report}");
    let counted = after.since(&before);
    assert_eq!(iface["tx"]["packets"], counted.tx_packets, "{report}");
    assert_eq!(iface["tx"]["bytes"], counted.tx_bytes, "{report}");
    assert_eq!(iface["rx"]["packets"], counted.rx_packets, "{report}");
    assert!(counted.tx_packets >= DATAGRAMS, "{counted:?}");
    assert!(iface["seconds"].as_u64().unwrap() >= 2, "{report}");
    assert!(iface["tx"]["pps"]["max"].as_u64().unwrap() > 0, "{report}");
    assert!(report["cpu_percent"].as_f64().unwrap() >= 0.0, "{report}");
}
