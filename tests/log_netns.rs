//! `flowmeter log` against real traffic: each test builds two network namespaces joined
//! by a veth pair, meters end `a` with the real binary (run inside namespace `a`) and
//! sends a known number of packets between the ends. Counts must be exact: the log's
//! totals equal the interface's own counters, and its flows plus the unattributed
//! part equal the totals.
//!
//! Needs root (the tests fail without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use common::{
    Finished, Flowmeter, Log,
    attach::{Attached, attached, wait_detached},
    netns::{Counters, ETHERNET_HEADER, Family, VethPair},
    run_flowmeter,
    traffic::{send_datagrams, tcp_transfer},
};

/// Seconds between reads: short, so every run spans several intervals.
const INTERVAL: &str = "0.25";
const UDP_A_TO_B: usize = 50;
const UDP_A_TO_B_PAYLOAD: usize = 200;
const UDP_B_TO_A: usize = 30;
const UDP_B_TO_A_PAYLOAD: usize = 300;
const UDP_HEADER: u64 = 8;
const TCP_MIN_HEADER: u64 = 20;
const TCP_TRANSFER: usize = 1 << 20;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

// ---------------------------------------------------------------------------------
// 1. Exact counts for every ingress hook and both families.

/// `--flow-records`: flow records at timeouts (schema v2, the default), or one line per
/// flow per interval (schema v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Records {
    Timeouts,
    Interval,
}

impl Records {
    fn args(self) -> &'static str {
        match self {
            Records::Timeouts => "",
            Records::Interval => " --flow-records interval",
        }
    }

    /// Every line carries this schema version, and flow lines their mode's fields.
    fn assert_lines(self, log: &Log) {
        let version = match self {
            Records::Timeouts => 2,
            Records::Interval => 1,
        };
        for record in &log.records {
            assert_eq!(record["v"], version, "{self:?}: {record}");
        }
        for flow in log.of_type("flow") {
            let (has, lacks) = match self {
                Records::Timeouts => ("end_reason", "interval_s"),
                Records::Interval => ("interval_s", "end_reason"),
            };
            assert!(
                flow.get(has).is_some() && flow.get(lacks).is_none(),
                "{self:?}: {flow}"
            );
        }
        assert_eq!(
            log.of_type("top").is_empty(),
            self == Records::Interval,
            "{self:?}: top records"
        );
    }
}

/// (test name, `--hook`, family, records): every ingress hook with IPv4 and with IPv6,
/// and v1's line per interval on two of them.
macro_rules! exact_count_cases {
    ($($name:ident: $hook:literal, $family:expr, $records:expr;)*) => {$(
        #[test]
        fn $name() {
            exact_counts($hook, $family, $records);
        }
    )*};
}

exact_count_cases! {
    exact_counts_xdp_native_ipv4: "xdp", Family::V4, Records::Timeouts;
    exact_counts_xdp_native_ipv6: "xdp", Family::V6, Records::Timeouts;
    exact_counts_xdp_generic_ipv4: "xdp-generic", Family::V4, Records::Timeouts;
    exact_counts_xdp_generic_ipv6: "xdp-generic", Family::V6, Records::Timeouts;
    exact_counts_tc_ipv4: "tc", Family::V4, Records::Timeouts;
    exact_counts_tc_ipv6: "tc", Family::V6, Records::Timeouts;
    exact_counts_tc_ipv4_v1_lines: "tc", Family::V4, Records::Interval;
    exact_counts_xdp_generic_ipv6_v1_lines: "xdp-generic", Family::V6, Records::Interval;
}

/// UDP both ways and a TCP transfer with a clean close, metered on `a` with `hook`.
fn exact_counts(hook: &str, family: Family, records: Records) {
    let pair = VethPair::new(family);
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!(
            "--iface {} --hook {hook} --interval {INTERVAL}{}",
            pair.a_if,
            records.args()
        ),
    );

    let (udp_a, udp_b) = udp_exchange(&pair);
    let (tcp_client, tcp_server) = tcp_transfer(&pair, TCP_TRANSFER);
    pair.wait_quiet();
    let finished = flowmeter.stop();
    let counted = whole_frames(hook, pair.a_counters().since(&before));

    assert_clean_exit(&finished);
    assert!(
        finished
            .stderr
            .contains(&format!("flowmeter: {}: ingress {hook} (", pair.a_if)),
        "start-up line names the hook: {}",
        finished.stderr
    );
    let log = finished.log();
    records.assert_lines(&log);
    let start = log.of_type("start");
    assert_eq!(start.len(), 1, "one start record");
    assert_eq!(start[0]["interfaces"][0]["ingress"], hook);
    log.assert_exact(&pair.a_if, counted);

    let ip_header = family.ip_header();
    let udp = log
        .flow(&pair.a_if, "udp", udp_a, udp_b)
        .unwrap_or_else(|| panic!("no UDP flow {udp_a} <-> {udp_b}: {:?}", log.flows()));
    let frame = |payload: usize| ETHERNET_HEADER + ip_header + UDP_HEADER + payload as u64;
    assert_eq!(
        (udp.tx_packets, udp.tx_bytes, udp.rx_packets, udp.rx_bytes),
        (
            UDP_A_TO_B as u64,
            UDP_A_TO_B as u64 * frame(UDP_A_TO_B_PAYLOAD),
            UDP_B_TO_A as u64,
            UDP_B_TO_A as u64 * frame(UDP_B_TO_A_PAYLOAD),
        ),
        "UDP flow (tx packets, tx bytes, rx packets, rx bytes)"
    );
    assert_eq!(udp.tcp_flags, None, "tcp_flags only on TCP flows");

    let tcp = log
        .flow(&pair.a_if, "tcp", tcp_client, tcp_server)
        .unwrap_or_else(|| {
            panic!(
                "no TCP flow {tcp_client} <-> {tcp_server}: {:?}",
                log.flows()
            )
        });
    // Every packet counted carries at least the minimal headers on top of its payload.
    let least_headers = ETHERNET_HEADER + ip_header + TCP_MIN_HEADER;
    assert!(
        tcp.tx_bytes >= TCP_TRANSFER as u64 + tcp.tx_packets * least_headers,
        "TCP flow sent fewer bytes than the transfer: {tcp:?}"
    );
    assert!(tcp.rx_packets > 0, "TCP flow saw no ACKs: {tcp:?}");
    let flags = tcp.tcp_flags.expect("a TCP flow carries tcp_flags");
    assert_eq!(
        flags & (TCP_SYN | TCP_ACK | TCP_FIN),
        TCP_SYN | TCP_ACK | TCP_FIN,
        "TCP flags {flags:#04x} lack SYN, ACK or FIN"
    );
}

/// The interface's counters with every frame counted whole, as flowmeter counts them.
/// veth counts a frame received through native XDP after taking off its Ethernet
/// header (`eth_type_trans` runs before its XDP receive path counts `skb->len`); its
/// other receive path and every transmit path count the whole frame.
fn whole_frames(hook: &str, mut counted: Counters) -> Counters {
    if hook == "xdp" {
        counted.rx_bytes += ETHERNET_HEADER * counted.rx_packets;
    }
    counted
}

/// Sends UDP datagrams a -> b and b -> a between two sockets and waits until every one
/// arrived; returns the sockets' addresses (a's, b's).
fn udp_exchange(pair: &VethPair) -> (SocketAddr, SocketAddr) {
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let a = pair
        .a
        .run(move || UdpSocket::bind((a_ip, 0)))
        .expect("UDP socket in a");
    let b = pair
        .b
        .run(move || UdpSocket::bind((b_ip, 0)))
        .expect("UDP socket in b");
    send_datagrams(&a, &b, UDP_A_TO_B, UDP_A_TO_B_PAYLOAD);
    send_datagrams(&b, &a, UDP_B_TO_A, UDP_B_TO_A_PAYLOAD);
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

fn assert_clean_exit(finished: &Finished) {
    assert!(
        finished.status.success(),
        "flowmeter failed: {}: {}",
        finished.status,
        finished.stderr
    );
}

// ---------------------------------------------------------------------------------
// 2. Many flows: a flow table far too small, and reads racing the traffic. Totals stay
// exact, and every packet lands once, in a flow or as unattributed.

const OVERFLOW_FLOWS: u16 = 5_000;
const FIRST_SOURCE_PORT: u16 = 20_000;

#[test]
fn flow_table_overflow_keeps_totals_exact() {
    let pair = VethPair::new(Family::V4);
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    // Bound, so `a` answers no datagram with an ICMP error; never read.
    let sink = pair
        .a
        .run(move || UdpSocket::bind((a_ip, 9)))
        .expect("UDP socket in a");
    let sink_addr = sink.local_addr().unwrap();
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --flows 1024 --interval {INTERVAL}", pair.a_if),
    );

    // One datagram from each of 5,000 source ports: 5,000 flows for a 1,024-flow table.
    pair.b.run(move || {
        for port in FIRST_SOURCE_PORT..FIRST_SOURCE_PORT + OVERFLOW_FLOWS {
            let socket = UdpSocket::bind((b_ip, port)).expect("UDP socket in b");
            socket.send_to(b"flow", sink_addr).expect("sending");
        }
    });
    pair.wait_quiet();
    let finished = flowmeter.stop();
    let counted = pair.a_counters().since(&before);
    drop(sink);

    assert_clean_exit(&finished);
    assert_eq!(
        counted.rx_packets,
        u64::from(OVERFLOW_FLOWS),
        "every datagram reached a"
    );
    let log = finished.log();
    let totals = log.assert_exact(&pair.a_if, counted);
    assert!(
        totals.rx_unattributed_packets > 0,
        "5,000 flows in a 1,024-flow table leave some traffic unattributed: {totals:?}"
    );
}

/// Traffic that keeps flowing while flowmeter reads its maps, many times over: every
/// packet must land exactly once, in a flow or as unattributed, never in both.
#[test]
fn reads_during_traffic_count_every_packet_once() {
    reads_during_traffic(Records::Timeouts);
}

/// The same with v1's line per flow per interval.
#[test]
fn reads_during_traffic_count_every_packet_once_in_v1_lines() {
    reads_during_traffic(Records::Interval);
}

fn reads_during_traffic(records: Records) {
    const DATAGRAMS: u16 = 2_000;
    const SOURCE_PORTS: u16 = 500;
    const GAP: Duration = Duration::from_micros(400);

    let pair = VethPair::new(Family::V4);
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let sink = pair
        .a
        .run(move || UdpSocket::bind((a_ip, 9)))
        .expect("UDP socket in a");
    let sink_addr = sink.local_addr().unwrap();
    let sources: Vec<UdpSocket> = pair.b.run(move || {
        (0..SOURCE_PORTS)
            .map(|n| UdpSocket::bind((b_ip, FIRST_SOURCE_PORT + n)).expect("UDP socket in b"))
            .collect()
    });
    let before = pair.wait_quiet();
    // A 20 ms interval: about 50 reads while the datagrams flow.
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --interval 0.02{}", pair.a_if, records.args()),
    );
    for n in 0..DATAGRAMS {
        let source = &sources[usize::from(n % SOURCE_PORTS)];
        source.send_to(b"flow", sink_addr).expect("sending");
        thread::sleep(GAP);
    }
    pair.wait_quiet();
    let finished = flowmeter.stop();
    let counted = pair.a_counters().since(&before);
    drop(sink);

    assert_clean_exit(&finished);
    assert_eq!(counted.rx_packets, u64::from(DATAGRAMS));
    let log = finished.log();
    assert!(log.totals().len() > 10, "many reads during the traffic");
    records.assert_lines(&log);
    log.assert_exact(&pair.a_if, counted);
}

// ---------------------------------------------------------------------------------
// 3. Nothing stays attached, however flowmeter ends.

#[derive(Clone, Copy, Debug)]
enum End {
    /// `--duration` runs out.
    Duration,
    Sigterm,
    Sigkill,
}

#[test]
fn detaches_after_duration_ends() {
    detaches(End::Duration, "xdp-generic");
}

#[test]
fn detaches_after_sigterm() {
    detaches(End::Sigterm, "tc");
}

#[test]
fn detaches_after_sigkill() {
    detaches(End::Sigkill, "xdp");
}

/// Datagrams b -> a sent just before SIGTERM, to be found in the last interval.
const LAST_INTERVAL_DATAGRAMS: usize = 5;

fn detaches(end: End, hook: &str) {
    let pair = VethPair::new(Family::V4);
    let before = pair.wait_quiet();
    let timing = match end {
        End::Duration => "--interval 0.2 --duration 1",
        // One long interval: whatever is written comes from the read after the signal.
        End::Sigterm | End::Sigkill => "--interval 60",
    };
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --hook {hook} {timing}", pair.a_if),
    );
    let xdp = hook != "tc";
    assert_eq!(
        attached(&pair),
        Attached {
            xdp,
            tc_ingress: usize::from(!xdp),
            tc_egress: 1,
        },
        "while flowmeter runs with --hook {hook}"
    );

    match end {
        End::Duration => {
            let finished = flowmeter.wait(Duration::from_secs(10));
            assert_clean_exit(&finished);
            assert_last_is_totals(&finished.log(), &pair.a_if);
        }
        End::Sigterm => {
            let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
            let a = pair.a.run(move || UdpSocket::bind((a_ip, 0))).unwrap();
            let b = pair.b.run(move || UdpSocket::bind((b_ip, 0))).unwrap();
            send_datagrams(&b, &a, LAST_INTERVAL_DATAGRAMS, 100);
            pair.wait_quiet();
            let signalled = Instant::now();
            // `wait` fails the test if flowmeter takes longer than 2 s.
            flowmeter.signal(libc::SIGTERM);
            let finished = flowmeter.wait(Duration::from_secs(2));
            let took = signalled.elapsed();
            let counted = pair.a_counters().since(&before);
            assert_clean_exit(&finished);
            let log = finished.log();
            assert_last_is_totals(&log, &pair.a_if);
            assert_eq!(log.totals().len(), 1, "exactly the interval read on stop");
            let totals = log.assert_exact(&pair.a_if, counted);
            assert_eq!(
                totals.rx_packets, LAST_INTERVAL_DATAGRAMS as u64,
                "the datagrams sent before SIGTERM are in the last interval"
            );
            eprintln!("flowmeter exited {took:?} after SIGTERM");
        }
        End::Sigkill => {
            flowmeter.signal(libc::SIGKILL);
            let finished = flowmeter.wait(Duration::from_secs(5));
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&finished.status),
                Some(libc::SIGKILL)
            );
        }
    }
    wait_detached(&pair);
}

/// The run ends with its last interval (closed by a `totals` line), then the final
/// summaries.
fn assert_last_is_totals(log: &Log, iface: &str) {
    let last = log.records.last().expect("flowmeter wrote something");
    assert_eq!(last["type"], "summary", "the final summary comes last");
    let last_interval = log
        .records
        .iter()
        .rev()
        .find(|record| record["type"] != "summary")
        .expect("an interval before the summaries");
    assert_eq!(
        last_interval["type"], "totals",
        "the last interval is closed"
    );
    assert_eq!(last_interval["iface"], iface);
}

// ---------------------------------------------------------------------------------
// 4. An interface that already carries an XDP program is refused.

#[test]
fn refuses_an_interface_that_already_has_xdp() {
    let pair = VethPair::new(Family::V4);
    let before = pair.wait_quiet();
    let mut first = Flowmeter::start_log(
        &pair.a,
        &format!(
            "--iface {} --hook xdp-generic --interval {INTERVAL}",
            pair.a_if
        ),
    );

    // Auto hook: TC ingress on veth, but XDP is refused all the same.
    let second = run_flowmeter(
        &pair.a,
        &format!("log --iface {} --duration 5", pair.a_if),
        Duration::from_secs(20),
    );
    assert_eq!(
        second.status.code(),
        Some(1),
        "second flowmeter: {second:?}"
    );
    let stderr = second.stderr_lines();
    assert_eq!(stderr.len(), 1, "one line on stderr: {stderr:?}");
    assert!(
        stderr[0].contains("already has an XDP program"),
        "stderr: {}",
        stderr[0]
    );
    assert!(
        second.stdout.is_empty(),
        "nothing logged: {:?}",
        second.stdout
    );

    // The first one is untouched: still running, still attached, still counting.
    assert!(first.is_running(), "the first flowmeter kept running");
    assert!(
        attached(&pair).xdp,
        "the first flowmeter's XDP program stayed"
    );
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let a = pair.a.run(move || UdpSocket::bind((a_ip, 0))).unwrap();
    let b = pair.b.run(move || UdpSocket::bind((b_ip, 0))).unwrap();
    send_datagrams(&b, &a, 10, 100);
    pair.wait_quiet();
    let finished = first.stop();
    let counted = pair.a_counters().since(&before);
    assert_clean_exit(&finished);
    let totals = finished.log().assert_exact(&pair.a_if, counted);
    assert_eq!(totals.rx_packets, 10);
}
