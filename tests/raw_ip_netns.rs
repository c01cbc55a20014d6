//! A link without an Ethernet header (tun here; WireGuard and PPP alike): the programs
//! must parse from the IP header and count exactly, in both directions.
//!
//! The test owns the tun device's file descriptor: what it writes there arrives on the
//! interface (rx), what the host sends through the interface can be read back (tx).

mod common;

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    thread,
    time::Duration,
};

use common::{
    Flowmeter,
    netns::{Counters, Netns, unique_name},
};

const TUN: &str = "fmtun0";
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const LOCAL_PORT: u16 = 7000;
const REMOTE_PORT: u16 = 7001;
const PAYLOAD: usize = 100;
const INBOUND: u64 = 20;
const OUTBOUND: u64 = 15;
/// IPv4 header + UDP header + payload: no link header on a tun device.
const PACKET_BYTES: u64 = 20 + 8 + PAYLOAD as u64;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Attaches to the (persistent) tun device `name` of the calling thread's namespace.
fn open_tun(name: &str) -> File {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("open /dev/net/tun");
    let mut request = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a valid tun fd and a properly sized, initialised ifreq.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) };
    assert_eq!(
        rc,
        0,
        "TUNSETIFF {name}: {}",
        std::io::Error::last_os_error()
    );
    tun
}

/// Whether `file` has something to read within `timeout_ms`.
fn readable(file: &File, timeout_ms: i32) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, timeout_ms) == 1 }
}

/// An IPv4/UDP packet from REMOTE to LOCAL with a valid header checksum (the kernel
/// checks it) and no UDP checksum (allowed in IPv4).
fn inbound_packet() -> Vec<u8> {
    let total = PACKET_BYTES as u16;
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet.extend(REMOTE.octets());
    packet.extend(LOCAL.octets());
    let checksum = !packet
        .chunks(2)
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .fold(0u32, |sum, word| {
            let sum = sum + word;
            (sum & 0xffff) + (sum >> 16)
        }) as u16;
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend(REMOTE_PORT.to_be_bytes());
    packet.extend(LOCAL_PORT.to_be_bytes());
    packet.extend((8 + PAYLOAD as u16).to_be_bytes());
    packet.extend([0, 0]);
    packet.extend([0x5a; PAYLOAD]);
    packet
}

#[test]
fn a_tun_link_is_parsed_from_the_ip_header_and_counted_exactly() {
    let netns = Netns::new(unique_name());
    netns.ip(&format!("tuntap add dev {TUN} mode tun"));
    netns.sysctl(&[&format!("net.ipv6.conf.{TUN}.disable_ipv6=1")]);
    netns.ip(&format!("addr add {LOCAL} peer {REMOTE} dev {TUN}"));
    let (mut tun, socket) = netns.run(|| {
        let tun = open_tun(TUN);
        let socket = UdpSocket::bind((LOCAL, LOCAL_PORT)).expect("bind the local UDP socket");
        (tun, socket)
    });
    netns.ip(&format!("link set {TUN} up"));
    netns.wait_operstate_up(TUN);
    let before = netns.wait_quiet(TUN);

    let flowmeter = Flowmeter::start_log(&netns, &format!("--iface {TUN} --interval 0.2"));
    let packet = inbound_packet();
    for _ in 0..INBOUND {
        tun.write_all(&packet)
            .expect("write a packet into the tun device");
    }
    let remote = SocketAddr::from((REMOTE, REMOTE_PORT));
    for _ in 0..OUTBOUND {
        socket
            .send_to(&[0xa5; PAYLOAD], remote)
            .expect("send through the tun device");
    }
    // tun counts a packet as sent when the reader takes it.
    for n in 0..OUTBOUND {
        let mut buffer = [0u8; 2048];
        assert!(
            readable(&tun, 2000),
            "outbound packet {n} never reached the tun fd"
        );
        let len = tun.read(&mut buffer).expect("read from the tun device");
        assert_eq!(len as u64, PACKET_BYTES, "outbound packet {n}");
    }
    thread::sleep(Duration::from_millis(300));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");
    let after = netns.counters(TUN);

    let log = finished.log();
    let start = &log.of_type("start")[0];
    assert_eq!(start["interfaces"][0]["ingress"], "tc", "{start}");
    let flow = log
        .flow(TUN, "udp", SocketAddr::from((LOCAL, LOCAL_PORT)), remote)
        .unwrap_or_else(|| panic!("no UDP flow on {TUN}: {:?}", log.flows()));
    assert_eq!(
        (flow.rx_packets, flow.rx_bytes),
        (INBOUND, INBOUND * PACKET_BYTES),
        "inbound"
    );
    assert_eq!(
        (flow.tx_packets, flow.tx_bytes),
        (OUTBOUND, OUTBOUND * PACKET_BYTES),
        "outbound"
    );
    let counted: Counters = after.since(&before);
    log.assert_exact(TUN, counted);
}
