//! Alerts of `flowmeter log` on real traffic between two test namespaces: a remote in a
//! foreign country over the threshold raises exactly one start and one end; traffic
//! under the threshold, or to a home country, raises nothing; an interface rate over
//! `--alert-rate` raises a rate alert, and one under it does not. A foreign remote that
//! a process and a socketless flow both talk to gets an alert naming the process, with
//! the reasons of the process's flows only.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    thread,
    time::Duration,
};

use common::{
    Flowmeter,
    geo::write_country_db,
    netns::{MAC_A, MAC_B, VethPair},
    packets::{RawSender, UdpHeaders, mac},
};

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// In NL, outside the home country.
const FOREIGN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// In DE, the home country: a second address of the same peer.
const HOME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const THRESHOLD: u64 = 20_000;

/// A pair whose peer answers for a foreign and a home address.
fn pair() -> VethPair {
    let pair = VethPair::with_ips(IpAddr::V4(LOCAL), IpAddr::V4(FOREIGN));
    pair.b.ip(&format!("addr add {HOME}/32 dev {}", pair.b_if));
    pair.a.ip(&format!("route add {HOME}/32 dev {}", pair.a_if));
    pair.a.ip(&format!(
        "neigh add {HOME} lladdr {MAC_B} dev {} nud permanent",
        pair.a_if
    ));
    pair
}

/// Sends `count` datagrams of `size` bytes to `to`, from a socket of namespace a.
fn send(pair: &VethPair, to: SocketAddr, count: usize, size: usize) {
    let socket = pair
        .a
        .run(|| UdpSocket::bind((LOCAL, 0)).expect("bind in a"));
    for _ in 0..count {
        socket.send_to(&vec![1; size], to).expect("send");
    }
}

fn alerts(log: &common::Log) -> Vec<&serde_json::Value> {
    log.of_type("alert")
}

/// The alerts of one kind.
fn alerts_of<'a>(log: &'a common::Log, kind: &str) -> Vec<&'a serde_json::Value> {
    alerts(log)
        .into_iter()
        .filter(|a| a["kind"] == kind)
        .collect()
}

/// `log` on a, with 198.51.100.0/24 in NL, outside the home country DE, and foreign
/// traffic over [`THRESHOLD`] alerting.
fn foreign_log(pair: &VethPair) -> Flowmeter {
    let db = write_country_db(&[("192.0.2.0/24", "DE"), ("198.51.100.0/24", "NL")]);
    let args = format!(
        "--iface {} --interval 0.3 --geoip {} --home DE --alert-foreign {THRESHOLD} \
         --alert-clear 0.5",
        pair.a_if,
        db.display()
    );
    Flowmeter::start_log(&pair.a, &args)
}

#[test]
fn foreign_traffic_over_the_threshold_starts_and_ends_once() {
    let pair = pair();
    let _sinks = pair.b.run(|| {
        (
            UdpSocket::bind((FOREIGN, 9000)).expect("bind foreign"),
            UdpSocket::bind((HOME, 9000)).expect("bind home"),
        )
    });
    let flowmeter = foreign_log(&pair);
    // Home traffic over the threshold: never an alert.
    send(&pair, SocketAddr::from((HOME, 9000)), 60, 1000);
    // Foreign traffic over it, in one burst: one start...
    send(&pair, SocketAddr::from((FOREIGN, 9000)), 60, 1000);
    // ... then a trickle under it for several intervals: the end, and nothing more.
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(200));
        send(&pair, SocketAddr::from((FOREIGN, 9000)), 2, 100);
    }
    thread::sleep(Duration::from_millis(400));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");

    let log = finished.log();
    let alerts = alerts(&log);
    let phases: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(
        phases,
        [("foreign", "start"), ("foreign", "end")],
        "{alerts:#?}"
    );
    for alert in &alerts {
        assert_eq!(alert["remote_ip"], FOREIGN.to_string(), "{alert}");
        assert_eq!(alert["country"], "NL", "{alert}");
        assert_eq!(alert["threshold_bytes"], THRESHOLD, "{alert}");
    }
    assert!(
        alerts[0]["bytes"].as_u64().unwrap() > THRESHOLD,
        "{}",
        alerts[0]
    );
    let stderr_alerts: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains("ALERT"))
        .collect();
    assert_eq!(
        stderr_alerts.len(),
        2,
        "one stderr line per alert: {stderr_alerts:?}"
    );
}

#[test]
fn an_interface_rate_over_the_limit_alerts_and_one_under_it_does_not() {
    for (limit, expect_alert) in [("100k", true), ("10G", false)] {
        let pair = pair();
        let _sink = pair
            .b
            .run(|| UdpSocket::bind((FOREIGN, 9000)).expect("bind"));
        let args = format!(
            "--iface {} --interval 0.3 --alert-rate {limit} --alert-clear 0.3",
            pair.a_if
        );
        let flowmeter = Flowmeter::start_log(&pair.a, &args);
        // About 60 kB in a burst: over 1 Mbit/s for a 0.3 s interval.
        send(&pair, SocketAddr::from((FOREIGN, 9000)), 60, 1000);
        thread::sleep(Duration::from_millis(800));
        let finished = flowmeter.stop();
        assert!(finished.status.success(), "flowmeter failed: {finished:?}");
        let log = finished.log();
        let rate_alerts = alerts_of(&log, "rate");
        if expect_alert {
            let start = rate_alerts
                .iter()
                .find(|a| a["phase"] == "start")
                .unwrap_or_else(|| panic!("no rate start over {limit}: {rate_alerts:#?}"));
            assert_eq!(start["direction"], "tx", "{start}");
            assert_eq!(start["iface"], pair.a_if, "{start}");
            assert!(start["rate_bps"].as_u64().unwrap() > 100_000, "{start}");
            assert_eq!(start["limit_bps"], 100_000, "{start}");
        } else {
            assert!(
                rate_alerts.is_empty(),
                "alerts under {limit}: {rate_alerts:#?}"
            );
        }
    }
}

#[test]
fn a_foreign_alert_names_the_process_with_its_own_reasons_not_a_socketless_flows() {
    let pair = pair();
    let _sink = pair
        .b
        .run(|| UdpSocket::bind((FOREIGN, 9000)).expect("bind foreign"));
    let flowmeter = foreign_log(&pair);
    // The test's own socket: one datagram first, so that its process is known before
    // the burst (a flow still resolving names no process).
    let socket = pair
        .a
        .run(|| UdpSocket::bind((LOCAL, 0)).expect("bind in a"));
    let to = SocketAddr::from((FOREIGN, 9000));
    socket.send_to(&[1; 100], to).expect("send");
    thread::sleep(Duration::from_millis(1000));
    // From the same remote, frames to a port nothing listens on: a flow (and the port
    // unreachable answers) with no local process, in every interval of the burst.
    let sender = pair.b.run(|| RawSender::bind(&pair.b_if));
    let macs = (mac(MAC_A), mac(MAC_B));
    for _ in 0..20 {
        for _ in 0..10 {
            socket.send_to(&[1; 1000], to).expect("send");
        }
        sender.send_udp(1, 100, |_| UdpHeaders {
            dst_mac: macs.0,
            src_mac: macs.1,
            src: FOREIGN,
            dst: LOCAL,
            src_port: 9100,
            dst_port: 9101,
        });
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(800));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");

    let log = finished.log();
    let foreign = alerts_of(&log, "foreign");
    let start = foreign
        .iter()
        .find(|a| a["phase"] == "start")
        .unwrap_or_else(|| panic!("no foreign start: {foreign:#?}"));
    assert!(
        start["flows"].as_u64().unwrap() >= 2,
        "the socketless flow is in the alert's figures: {start}"
    );
    for alert in &foreign {
        assert_eq!(alert["pid"], std::process::id(), "{alert}");
        assert_eq!(alert["local_port"], socket.local_addr().unwrap().port());
        assert_eq!(
            alert["reasons"],
            serde_json::json!(["remote in NL, outside home countries DE"]),
            "{alert}"
        );
    }
}
