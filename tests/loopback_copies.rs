//! A broadcast the host sends is also looped back by the kernel onto the interface's
//! receive path (`PACKET_LOOPBACK`, without its Ethernet header): that copy never
//! crossed the link and must not be counted as received. Five UDP broadcasts from the
//! metered namespace: the totals equal the interface's own counters, both ways.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::Duration,
};

use common::{
    Flowmeter,
    netns::{Family, VethPair},
};

const BROADCASTS: u64 = 5;
/// A subnet of a's own on the veth, so that it has a broadcast address.
const SUBNET_HOST: Ipv4Addr = Ipv4Addr::new(10, 98, 7, 1);
const SUBNET_BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 98, 7, 255);

#[test]
fn looped_back_broadcast_copies_are_not_counted_as_received() {
    let pair = VethPair::new(Family::V4);
    pair.a.ip(&format!(
        "addr add {SUBNET_HOST}/24 brd + dev {}",
        pair.a_if
    ));
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    pair.a.run(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(SUBNET_HOST, 0)).expect("bind in a");
        socket.set_broadcast(true).expect("SO_BROADCAST");
        for _ in 0..BROADCASTS {
            socket
                .send_to(&[7; 64], SocketAddrV4::new(SUBNET_BROADCAST, 9))
                .expect("broadcast");
        }
    });
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
