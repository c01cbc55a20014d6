//! A spoofed-source flood through `flowmeter log`, as a hostile user would send it: the
//! peer namespace writes hand-built UDP frames from many addresses of 198.51.100.0/24
//! and 203.0.113.0/24 and many source ports (an AF_PACKET socket, `common::packets`)
//! into the metered end, while a steady UDP flow of known size runs.
//!
//! - Into a full table, without the new-flow budget: 60,000 random sources through a
//!   16,384-flow table. The totals must stay exact, the flood must be one `flood` alert
//!   naming its source prefixes and local ports, and the per-flow alerts must not storm.
//! - With the default budget: 1,000,000 distinct sources through the default
//!   65,536-flow table. The totals and the steady flow stay exact, and every flood packet
//!   is either the one packet of a flow created within the budget or over budget.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use common::{
    Flowmeter,
    netns::{ETHERNET_HEADER, Family, MAC_A, MAC_B, VethPair},
    packets::{self, Random, RawSender, UDP_FRAME_HEADERS, UdpHeaders},
};

const FLOOD_FRAMES: u64 = 60_000;
/// 60-byte frames, the smallest Ethernet carries (without its checksum).
const FLOOD_PAYLOAD: usize = 18;
const STEADY_DATAGRAMS: u64 = 200;
const STEADY_PAYLOAD: usize = 500;
const STEADY_PORTS: (u16, u16) = (7000, 9000);

fn ipv4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => panic!("an IPv4 pair, not {ip}"),
    }
}

/// Frame `n` of the flood: two thirds from 198.51.100.0/24, a third from
/// 203.0.113.0/24, random hosts and source ports; three quarters to port 53, the rest
/// to port 123.
fn flood_frame(random: &mut Random, n: u64, dst: Ipv4Addr) -> UdpHeaders {
    let bits = random.next();
    let host = bits as u8;
    let src = if n % 3 < 2 {
        Ipv4Addr::new(198, 51, 100, host)
    } else {
        Ipv4Addr::new(203, 0, 113, host)
    };
    UdpHeaders {
        dst_mac: packets::mac(MAC_A),
        src_mac: packets::mac(MAC_B),
        src,
        dst,
        src_port: (bits >> 16) as u16,
        dst_port: if n % 4 == 3 { 123 } else { 53 },
    }
}

#[test]
fn a_spoofed_flood_is_one_flood_alert_and_the_totals_stay_exact() {
    let pair = VethPair::new(Family::V4);
    let (a_ip, b_ip) = (ipv4(pair.a_ip), ipv4(pair.b_ip));
    let before = pair.wait_quiet();
    // The steady flow's receiver: a local process on a, so it is nobody's flood.
    let _sink = pair
        .a
        .run(|| UdpSocket::bind((a_ip, STEADY_PORTS.1)).expect("bind in a"));
    let steady = pair
        .b
        .run(|| UdpSocket::bind((b_ip, STEADY_PORTS.0)).expect("bind in b"));
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!(
            // The table-full case: no budget holds the flood back.
            "--iface {} --flows 16384 --new-flow-budget 0 --interval 0.5 --alert-clear 2",
            pair.a_if
        ),
    );

    let flood_bytes = thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..STEADY_DATAGRAMS {
                steady
                    .send_to(&[7; STEADY_PAYLOAD], (a_ip, STEADY_PORTS.1))
                    .expect("steady send");
                thread::sleep(Duration::from_millis(10));
            }
        });
        pair.b.run(|| {
            let sender = RawSender::bind(&pair.b_if);
            let mut random = Random::new(42);
            sender.send_udp(FLOOD_FRAMES, FLOOD_PAYLOAD, |n| {
                flood_frame(&mut random, n, a_ip)
            })
        })
    });
    // Long enough for the flood to end (--alert-clear 2).
    thread::sleep(Duration::from_millis(2500));
    pair.wait_quiet();
    let finished = flowmeter.stop();
    let counted = pair.a_counters().since(&before);
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );

    // Exact: what was sent, what the interface counted, what the log says.
    let steady_frame = (UDP_FRAME_HEADERS + STEADY_PAYLOAD) as u64;
    assert_eq!(
        (counted.rx_packets, counted.rx_bytes),
        (
            FLOOD_FRAMES + STEADY_DATAGRAMS,
            flood_bytes + STEADY_DATAGRAMS * steady_frame
        ),
        "a_if received what was sent"
    );
    let log = finished.log();
    log.assert_exact(&pair.a_if, counted);
    let local = SocketAddr::from((a_ip, STEADY_PORTS.1));
    let remote = SocketAddr::from((b_ip, STEADY_PORTS.0));
    let steady_flow = log
        .flow(&pair.a_if, "udp", local, remote)
        .expect("the steady flow has records");
    // Exact in every run so far; only `<=` is promised while the kernel lets a flood
    // evict real flows from a full table (issue 11's per-CPU new-flow budget).
    assert!(
        steady_flow.rx_packets <= STEADY_DATAGRAMS,
        "never more than was sent: {steady_flow:?}"
    );
    assert_eq!(
        steady_flow.rx_bytes,
        steady_flow.rx_packets * (ETHERNET_HEADER + 20 + 8 + STEADY_PAYLOAD as u64)
    );

    // One flood alert, naming what carried it.
    let alerts = log.of_type("alert");
    let (floods, others): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = alerts
        .into_iter()
        .partition(|alert| alert["kind"] == "flood");
    let starts: Vec<_> = floods.iter().filter(|a| a["phase"] == "start").collect();
    assert_eq!(starts.len(), 1, "one flood start: {floods:#?}");
    let start = starts[0];
    assert_eq!(start["iface"], pair.a_if, "{start}");
    assert!(
        start["new_flows_per_s"].as_u64().unwrap() > 5_000,
        "{start}"
    );
    let prefixes: Vec<&str> = start["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| source["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["198.51.100.0/24", "203.0.113.0/24"], "{start}");
    let ports: Vec<u64> = start["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|port| port["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [53, 123], "{start}");
    assert!(start["sources"][0]["packets_per_s"].as_u64().unwrap() > 0);
    assert!(start["sources"][0]["bps"].as_u64().unwrap() > 0);
    assert!(
        floods.iter().filter(|a| a["phase"] == "end").count() <= 1,
        "{floods:#?}"
    );
    assert!(others.len() <= 5, "a handful of other alerts: {others:#?}");
    let stderr_starts = finished
        .stderr
        .lines()
        .filter(|line| line.contains("ALERT start flood: "))
        .count();
    assert_eq!(stderr_starts, 1, "{}", finished.stderr);
}

const MILLION: u64 = 1_000_000;
/// The default `--new-flow-budget` for the default `--flows`.
const DEFAULT_BUDGET: u64 = 65_536 / 32;

/// Frame `n` of the million-source flood: every frame from another source (address and
/// port), so every one is a new flow; even frames from 198.51.100.0/24, odd ones from
/// 203.0.113.0/24, to port 53 (123 for every fourth).
fn million_frame(n: u64, dst: Ipv4Addr) -> UdpHeaders {
    let host = (n >> 1) as u8;
    let src = if n % 2 == 0 {
        Ipv4Addr::new(198, 51, 100, host)
    } else {
        Ipv4Addr::new(203, 0, 113, host)
    };
    UdpHeaders {
        dst_mac: packets::mac(MAC_A),
        src_mac: packets::mac(MAC_B),
        src,
        dst,
        src_port: 1024 + (n >> 9) as u16,
        dst_port: if n % 4 == 3 { 123 } else { 53 },
    }
}

fn in_flood_prefixes(ip: IpAddr) -> bool {
    let [a, b, c, _] = ipv4(ip).octets();
    [a, b, c] == [198, 51, 100] || [a, b, c] == [203, 0, 113]
}

#[test]
fn a_million_source_flood_spends_the_new_flow_budget_and_nothing_is_lost() {
    let started = Instant::now();
    let pair = VethPair::new(Family::V4);
    let (a_ip, b_ip) = (ipv4(pair.a_ip), ipv4(pair.b_ip));
    let before = pair.wait_quiet();
    let _sink = pair
        .a
        .run(|| UdpSocket::bind((a_ip, STEADY_PORTS.1)).expect("bind in a"));
    let steady = pair
        .b
        .run(|| UdpSocket::bind((b_ip, STEADY_PORTS.0)).expect("bind in b"));
    // The default table and budget.
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    let send_steady = || {
        steady
            .send_to(&[7; STEADY_PAYLOAD], (a_ip, STEADY_PORTS.1))
            .expect("steady send")
    };
    // The steady flow exists before the flood spends the budget.
    send_steady();
    thread::sleep(Duration::from_millis(100));

    let flooding = Instant::now();
    let flood_bytes = thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 1..STEADY_DATAGRAMS {
                send_steady();
                thread::sleep(Duration::from_millis(10));
            }
        });
        pair.b.run(|| {
            let sender = RawSender::bind(&pair.b_if);
            sender.send_udp(MILLION, FLOOD_PAYLOAD, |n| million_frame(n, a_ip))
        })
    });
    let flood_time = flooding.elapsed();
    pair.wait_quiet();
    let finished = flowmeter.stop();
    let counted = pair.a_counters().since(&before);
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    let flood_frame = (UDP_FRAME_HEADERS + FLOOD_PAYLOAD) as u64;
    assert_eq!(flood_bytes, MILLION * flood_frame);
    let steady_frame = (UDP_FRAME_HEADERS + STEADY_PAYLOAD) as u64;
    assert_eq!(
        (counted.rx_packets, counted.rx_bytes),
        (
            MILLION + STEADY_DATAGRAMS,
            flood_bytes + STEADY_DATAGRAMS * steady_frame
        ),
        "a_if received what was sent"
    );

    // Exact totals; flows plus unattributed equal them.
    let log = finished.log();
    let totals = log.assert_exact(&pair.a_if, counted);
    // The steady flow, created before the flood, lost nothing.
    let local = SocketAddr::from((a_ip, STEADY_PORTS.1));
    let remote = SocketAddr::from((b_ip, STEADY_PORTS.0));
    let steady_flow = log
        .flow(&pair.a_if, "udp", local, remote)
        .expect("the steady flow has records");
    assert_eq!(
        (steady_flow.rx_packets, steady_flow.rx_bytes),
        (STEADY_DATAGRAMS, STEADY_DATAGRAMS * steady_frame),
        "the steady flow is exact"
    );

    // Every flood frame is the one packet of a flow created within the budget, or over
    // budget: nothing else, and nothing lost.
    let flood_flows: Vec<_> = log
        .flows()
        .into_iter()
        .filter(|f| f.iface == pair.a_if && in_flood_prefixes(f.remote_ip))
        .collect();
    let created: u64 = flood_flows.iter().map(|f| f.rx_packets).sum();
    assert!(
        flood_flows.iter().all(|f| f.rx_packets == 1),
        "every flood flow has one packet"
    );
    let sum_of = |field: &str| -> u64 {
        log.of_type("totals")
            .iter()
            .filter(|t| t["iface"] == pair.a_if.as_str())
            .map(|t| {
                t[field]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no {field}: {t}"))
            })
            .sum()
    };
    let over_budget = (
        sum_of("rx_over_budget_packets"),
        sum_of("rx_over_budget_bytes"),
    );
    assert_eq!(
        created + over_budget.0,
        MILLION,
        "flood flows ({created}) + over budget ({}) = the flood",
        over_budget.0
    );
    assert_eq!(
        over_budget.1,
        over_budget.0 * flood_frame,
        "over-budget bytes"
    );
    assert_eq!(totals.rx_table_full_packets, 0, "the table kept room");
    assert!(
        totals.rx_unattributed_packets >= over_budget.0,
        "over budget is part of the unattributed traffic: {totals:?}"
    );
    // The budget held: at most DEFAULT_BUDGET new flows per CPU per second (window)
    // begun while the flood ran.
    // SAFETY: sysconf has no memory arguments.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
    let windows = flood_time.as_secs() + 2;
    assert!(
        created <= DEFAULT_BUDGET * cpus * windows,
        "{created} flood flows in {flood_time:?} on {cpus} CPUs: over the budget"
    );
    eprintln!(
        "1M-source flood: sent in {flood_time:?}, {created} flows created, {} over budget, \
         whole test {:?}",
        over_budget.0,
        started.elapsed()
    );
}

#[test]
fn generated_frames_carry_a_valid_ipv4_header() {
    let mut frame = vec![0; UDP_FRAME_HEADERS + FLOOD_PAYLOAD];
    flood_frame(&mut Random::new(1), 0, Ipv4Addr::new(10, 99, 0, 1)).write(&mut frame);
    assert_eq!(packets::ipv4_checksum(&frame[14..34]), 0);
    assert_eq!(frame[12..14], [0x08, 0x00], "IPv4");
    assert_eq!(frame[16..18], 46_u16.to_be_bytes(), "IP total length");
    assert_eq!(frame[38..40], 26_u16.to_be_bytes(), "UDP length");
    assert_eq!(frame[36..38], 53_u16.to_be_bytes(), "to port 53");
    assert_eq!(frame[26..29], [198, 51, 100]);
}
