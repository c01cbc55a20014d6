//! `flowmeter bench` measures an interface while a load runs: its JSON report carries
//! per-second rates and totals that equal the interface's own counters exactly.

mod common;

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, UdpSocket},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use common::{
    FLOWMETER,
    netns::{Family, VethPair},
};

const DATAGRAMS: u64 = 300;

#[test]
fn bench_reports_rates_and_exact_totals() {
    let pair = VethPair::new(Family::V4);
    let before = pair.wait_quiet();
    let mut child = Command::new("ip")
        .args(["netns", "exec", pair.a.name(), FLOWMETER, "bench"])
        .args(["--iface", &pair.a_if, "--duration", "3", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowmeter bench");
    // Wait (bounded) for "run your load now": the programs are attached.
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready, attached) = mpsc::channel();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("run your load now") {
                let _ = ready.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    if attached.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "flowmeter bench never attached: {}",
            stderr_reader.join().unwrap()
        );
    }

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
