//! TCP over a veth pair with its segmentation offloads on (TSO, GSO, GRO): the TC
//! programs see super-packets of up to 64 KB, sent (egress) and received (ingress), and
//! must count the segments they stand for, with each segment's headers, as a NIC would
//! put them on the wire.
//!
//! The interface's own counters count the super-packets here, so the test holds
//! flowmeter to the segments' arithmetic instead, and shows that the super-packets
//! were there (else it could not fail): fewer packets on the counters than in the totals,
//! and the bytes apart by exactly one copy of the headers per extra segment.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use common::{
    FlowRecord, Flowmeter,
    netns::{Counters, Family, VethPair},
    traffic::{tcp_transfer, tcp_transfer_to_a},
};

/// Payload of each transfer: small enough for CI, large enough for many super-packets.
const TRANSFER: u64 = 4 << 20;
/// Ethernet, IPv4 and TCP with the timestamp option (12 bytes): the headers of every
/// segment after the handshake.
const SEGMENT_HEADERS: u64 = 14 + 20 + 20 + 12;
/// Payload of a full segment: MTU 1500 less the IPv4 and TCP headers.
const MSS: u64 = 1500 - 20 - 20 - 12;
/// The longest frame of the link: MTU 1500 and the Ethernet header.
const LONGEST_FRAME: u64 = 1514;
/// The SYN and SYN-ACK carry 8 option bytes more than the later segments' timestamps.
const HANDSHAKE_OPTIONS: u64 = 8;

/// A transfer whose segments TCP sent again carries bytes the exact count below cannot
/// know: such a run is told and made again, at most this many times in all.
const ATTEMPTS: usize = 3;

#[test]
fn tcp_with_offloads_on_counts_the_segments_on_the_wire_both_ways() {
    for attempt in 1..=ATTEMPTS {
        let pair = VethPair::new(Family::V4);
        pair.set_offloads(true);
        let before = pair.wait_quiet();
        let retransmitted = || retransmitted_segments(&pair.a) + retransmitted_segments(&pair.b);
        let retransmitted_before = retransmitted();
        let flowmeter =
            Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
        let (a_client, b_server) = tcp_transfer(&pair, TRANSFER as usize);
        let (b_client, a_server) = tcp_transfer_to_a(&pair, TRANSFER as usize);
        let (finished, counted) = flowmeter.stop_when_quiet(&pair, &before);
        let again = retransmitted() - retransmitted_before;
        if again > 0 {
            eprintln!("attempt {attempt}: TCP sent {again} segments again; made again");
            continue;
        }
        check(
            &pair,
            finished,
            counted,
            (a_client, b_server),
            (b_client, a_server),
        );
        return;
    }
    panic!("every one of {ATTEMPTS} attempts had TCP retransmissions: no exact count to check");
}

/// `RetransSegs` of the namespace's TCP (`/proc/thread-self/net/snmp` on a thread in it).
fn retransmitted_segments(netns: &common::netns::Netns) -> u64 {
    netns.run(|| {
        let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp");
        let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
        let (names, values) = (tcp.next().expect("Tcp names"), tcp.next().expect("values"));
        let index = names
            .split_whitespace()
            .position(|name| name == "RetransSegs")
            .expect("RetransSegs");
        values
            .split_whitespace()
            .nth(index)
            .expect("a value")
            .parse()
            .expect("a number")
    })
}

fn check(
    pair: &VethPair,
    finished: common::Finished,
    counted: Counters,
    (a_client, b_server): (std::net::SocketAddr, std::net::SocketAddr),
    (b_client, a_server): (std::net::SocketAddr, std::net::SocketAddr),
) {
    let log = finished.log();
    let totals = log.totals_sum(&pair.a_if);
    eprintln!(
        "flowmeter counted {:?}; the interface counted {counted:?}",
        totals.counters()
    );
    let flows = log.flows_sum(&pair.a_if);
    assert_eq!(
        flows.plus(&totals.unattributed()),
        totals.counters(),
        "flows + unattributed (left) equal the totals (right)"
    );
    let sent = log
        .flow(&pair.a_if, "tcp", a_client, b_server)
        .unwrap_or_else(|| panic!("no flow {a_client} -> {b_server}: {:?}", log.flows()));
    let received = log
        .flow(&pair.a_if, "tcp", a_server, b_client)
        .unwrap_or_else(|| panic!("no flow {b_client} -> {a_server}: {:?}", log.flows()));
    assert_segments("sent (TC egress)", sent.tx_packets, sent.tx_bytes);
    assert_segments(
        "received (TC ingress)",
        received.rx_packets,
        received.rx_bytes,
    );
    assert_only_the_transfers(&sent, &received, &totals.counters());
    assert_super_packets_were_counted_as_segments(&totals.counters(), &counted);
}

/// The data direction of one transfer counts as its segments on the wire.
fn assert_segments(what: &str, packets: u64, bytes: u64) {
    assert!(
        packets >= TRANSFER.div_ceil(MSS),
        "{what}: {packets} packets, fewer than the {} full segments {TRANSFER} bytes need",
        TRANSFER.div_ceil(MSS)
    );
    assert!(
        bytes <= packets * LONGEST_FRAME,
        "{what}: {bytes} bytes in {packets} packets, more than {LONGEST_FRAME} a packet"
    );
    assert_eq!(
        bytes,
        TRANSFER + packets * SEGMENT_HEADERS + HANDSHAKE_OPTIONS,
        "{what}: bytes are the payload, each packet's headers and the handshake's options"
    );
}

/// Nothing but the two transfers crossed the link (the pair is quiet), so the totals
/// are the two flows.
fn assert_only_the_transfers(sent: &FlowRecord, received: &FlowRecord, totals: &Counters) {
    let both = Counters {
        rx_packets: sent.rx_packets + received.rx_packets,
        rx_bytes: sent.rx_bytes + received.rx_bytes,
        tx_packets: sent.tx_packets + received.tx_packets,
        tx_bytes: sent.tx_bytes + received.tx_bytes,
    };
    assert_eq!(&both, totals, "the two flows (left) are the totals (right)");
}

/// The interface counted super-packets: fewer packets than flowmeter, and each extra
/// segment flowmeter counted adds exactly one copy of the headers (every GSO packet here
/// is a data segment with the timestamp option).
fn assert_super_packets_were_counted_as_segments(totals: &Counters, interface: &Counters) {
    for (what, ours, theirs, our_bytes, their_bytes) in [
        (
            "tx",
            totals.tx_packets,
            interface.tx_packets,
            totals.tx_bytes,
            interface.tx_bytes,
        ),
        (
            "rx",
            totals.rx_packets,
            interface.rx_packets,
            totals.rx_bytes,
            interface.rx_bytes,
        ),
    ] {
        assert!(
            theirs * 2 < ours,
            "{what}: the interface counted {theirs} packets against flowmeter's {ours}: \
             were the super-packets there?"
        );
        assert_eq!(
            our_bytes - their_bytes,
            (ours - theirs) * SEGMENT_HEADERS,
            "{what}: flowmeter's bytes exceed the interface's by one copy of the headers \
             for each extra segment"
        );
    }
}
