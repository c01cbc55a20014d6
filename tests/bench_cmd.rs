//! `flowmeter bench` measures an interface while a load runs: its JSON report carries
//! per-second rates and totals that equal the interface's own counters exactly, and
//! its report says how much was in no flow and why, with what to do about it.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use common::{
    netns::{Family, MAC_A, MAC_B, VethPair},
    packets::{self, RawSender, UdpHeaders},
};

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
    // Our datagrams were in flows; what else crossed (IPv6 is off) is small.
    let in_no_flow = iface["tx"]["unattributed_packets"].as_u64().unwrap();
    assert!(in_no_flow < DATAGRAMS / 10, "{report}");
}

/// Spoofed sources, each a new flow, through a 16-flow table without the new-flow
/// budget: nearly all of it is in no flow, evicted before it was read, and the report
/// says to raise --flows.
#[test]
fn bench_tells_the_unattributed_share_and_what_to_do() {
    const SOURCES: u64 = 2000;
    let pair = VethPair::new(Family::V4);
    let IpAddr::V4(a_ip) = pair.a_ip else {
        unreachable!("an IPv4 pair")
    };
    let (child, stderr_reader) = common::spawn_until_stderr(
        &pair.a,
        &[
            "bench",
            "--iface",
            &pair.a_if,
            "--duration",
            "2",
            "--flows",
            "16",
            "--new-flow-budget",
            "0",
        ],
        "run your load now",
        Duration::from_secs(30),
    );
    pair.b.run(|| {
        let macs = (packets::mac(MAC_A), packets::mac(MAC_B));
        RawSender::bind(&pair.b_if).send_udp(SOURCES, 18, |n| UdpHeaders {
            dst_mac: macs.0,
            src_mac: macs.1,
            src: Ipv4Addr::new(198, 51, 100, n as u8),
            dst: a_ip,
            src_port: 1024 + (n / 256) as u16,
            dst_port: 53,
        })
    });
    let output = child.wait_with_output().expect("wait for flowmeter bench");
    let stderr = stderr_reader.join().expect("stderr reader");
    assert!(output.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let told = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("rx unattributed"))
        .unwrap_or_else(|| panic!("no unattributed line: {stdout}"));
    let percent: u32 = told
        .trim_start()
        .trim_start_matches("rx unattributed ")
        .split('%')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no share: {told}"));
    assert!(percent >= 90, "{stdout}");
    assert!(
        told.contains("(evicted before read: raise --flows)")
            || told.contains("(flow table full: raise --flows)"),
        "{stdout}"
    );
}
