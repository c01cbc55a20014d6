//! A broadcast the host sends is also looped back by the kernel onto the interface's
//! receive path (`PACKET_LOOPBACK`, without its Ethernet header): that copy never
//! crossed the link and must not be counted as received. Five UDP broadcasts from the
//! metered namespace: the totals equal the interface's own counters, both ways. And the
//! same broadcasts in the middle of a spoofed flood through the default table (sources
//! of 198.51.100.0/24, broadcast-looking .255 ones among them): the totals still equal
//! what crossed the link.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::Duration,
};

use common::{
    Flowmeter,
    netns::{Family, MAC_A, MAC_B, VethPair},
    packets::{self, Random, RawSender, UdpHeaders},
};

const BROADCASTS: u64 = 5;
/// A subnet of a's own on the veth, so that it has a broadcast address.
const SUBNET_HOST: Ipv4Addr = Ipv4Addr::new(10, 98, 7, 1);
const SUBNET_BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 98, 7, 255);
const FLOOD_FRAMES: u64 = 20_000;

/// Gives `pair`'s end a a /24 of its own, so that it has a broadcast address.
fn add_subnet(pair: &VethPair) {
    pair.a.ip(&format!(
        "addr add {SUBNET_HOST}/24 brd + dev {}",
        pair.a_if
    ));
}

/// Sends [`BROADCASTS`] UDP broadcasts from a's subnet.
fn broadcast(pair: &VethPair) {
    pair.a.run(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(SUBNET_HOST, 0)).expect("bind in a");
        socket.set_broadcast(true).expect("SO_BROADCAST");
        for _ in 0..BROADCASTS {
            socket
                .send_to(&[7; 64], SocketAddrV4::new(SUBNET_BROADCAST, 9))
                .expect("broadcast");
        }
    });
}

#[test]
fn looped_back_broadcast_copies_are_not_counted_as_received() {
    let pair = VethPair::new(Family::V4);
    add_subnet(&pair);
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    broadcast(&pair);
    std::thread::sleep(Duration::from_millis(300));
    let (finished, counted) = flowmeter.stop_when_quiet(&pair, &before);
    assert_eq!(
        counted.tx_packets, BROADCASTS,
        "the broadcasts crossed the link once each"
    );
    // Equal to the interface's counters: the looped-back copies are not among the
    // received packets.
    let totals = finished.log().assert_exact(&pair.a_if, counted);
    assert_eq!(
        totals.counters().rx_packets,
        counted.rx_packets,
        "{totals:?}"
    );
}

#[test]
fn a_spoofed_flood_and_broadcasts_leave_the_totals_equal_to_the_link() {
    let pair = VethPair::new(Family::V4);
    add_subnet(&pair);
    let std::net::IpAddr::V4(a_ip) = pair.a_ip else {
        panic!("an IPv4 pair")
    };
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pair.b.run(|| {
                let mut random = Random::new(12);
                let sender = RawSender::bind(&pair.b_if);
                sender.send_udp(FLOOD_FRAMES, 18, |n| {
                    let bits = random.next();
                    // Every 16th source is the subnet's broadcast-looking .255.
                    let host = if n % 16 == 0 { 255 } else { bits as u8 };
                    UdpHeaders {
                        dst_mac: packets::mac(MAC_A),
                        src_mac: packets::mac(MAC_B),
                        src: Ipv4Addr::new(198, 51, 100, host),
                        dst: a_ip,
                        src_port: (bits >> 16) as u16,
                        dst_port: 53,
                    }
                })
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        broadcast(&pair);
    });
    std::thread::sleep(Duration::from_millis(300));
    let (finished, counted) = flowmeter.stop_when_quiet(&pair, &before);
    assert!(
        counted.rx_packets >= FLOOD_FRAMES && counted.tx_packets >= BROADCASTS,
        "the flood and the broadcasts crossed the link: {counted:?}"
    );
    finished.log().assert_exact(&pair.a_if, counted);
}
