//! A broadcast the host sends is also looped back by the kernel onto the interface's
//! receive path (`PACKET_LOOPBACK`, without its Ethernet header): that copy never
//! crossed the link and must not be counted as received. Five UDP broadcasts and five
//! broadcast pings (`ping -b`) from the metered namespace: the totals equal the
//! interface's own counters, both ways. And the same in the middle of a spoofed flood
//! through the default table (sources of 198.51.100.0/24 and a's own subnet, its
//! broadcast address among them): the totals still equal what crossed the link.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
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

/// Sends [`BROADCASTS`] UDP broadcasts and as many ICMP echo requests (`ping -b`) to
/// a's subnet's broadcast address: 2 x [`BROADCASTS`] packets out.
fn broadcast(pair: &VethPair) {
    pair.a.run(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(SUBNET_HOST, 0)).expect("bind in a");
        socket.set_broadcast(true).expect("SO_BROADCAST");
        for _ in 0..BROADCASTS {
            socket
                .send_to(&[7; 64], SocketAddrV4::new(SUBNET_BROADCAST, 9))
                .expect("broadcast");
        }
        ping_broadcast();
    });
}

/// [`BROADCASTS`] ICMP echo requests to [`SUBNET_BROADCAST`] through a raw socket, as
/// `ping -b` sends them (ping itself is not on a fresh machine).
fn ping_broadcast() {
    // SAFETY: plain arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    assert!(
        fd >= 0,
        "raw ICMP socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    // SAFETY: a valid int option and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BROADCAST,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    assert_eq!(rc, 0, "SO_BROADCAST: {}", std::io::Error::last_os_error());
    // SAFETY: sockaddr_in is plain data; all zero is a valid start.
    let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    to.sin_family = libc::AF_INET as u16;
    to.sin_addr.s_addr = u32::from_ne_bytes(SUBNET_BROADCAST.octets());
    for sequence in 0..BROADCASTS as u16 {
        // Echo request: type 8, code 0, checksum, identifier, sequence, 56 bytes of data.
        let mut echo = [0u8; 64];
        echo[0] = 8;
        echo[4..6].copy_from_slice(&0x4d46_u16.to_be_bytes());
        echo[6..8].copy_from_slice(&sequence.to_be_bytes());
        let checksum = packets::ipv4_checksum(&echo);
        echo[2..4].copy_from_slice(&checksum.to_be_bytes());
        // SAFETY: a valid buffer, address and their sizes.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                echo.as_ptr().cast(),
                echo.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        assert_eq!(
            sent,
            echo.len() as isize,
            "broadcast ping: {}",
            std::io::Error::last_os_error()
        );
    }
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
        counted.tx_packets,
        2 * BROADCASTS,
        "the broadcasts and pings crossed the link once each"
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
                    // Every 16th source is a broadcast address: 198.51.100.255, or
                    // a's own subnet's.
                    let src = match n % 32 {
                        0 => Ipv4Addr::new(198, 51, 100, 255),
                        16 => SUBNET_BROADCAST,
                        _ => Ipv4Addr::new(198, 51, 100, bits as u8),
                    };
                    UdpHeaders {
                        dst_mac: packets::mac(MAC_A),
                        src_mac: packets::mac(MAC_B),
                        src,
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
        counted.rx_packets >= FLOOD_FRAMES && counted.tx_packets >= 2 * BROADCASTS,
        "the flood and the broadcasts crossed the link: {counted:?}"
    );
    finished.log().assert_exact(&pair.a_if, counted);
}
