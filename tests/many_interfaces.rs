//! Twenty interfaces metered at once, each carrying jumbo frames: every interface's
//! totals equal its own counters, and each one's flow has exactly the datagrams sent
//! over it. (Tried by hand before: kept as a test, so it stays true.)
//!
//! Two namespaces joined by twenty veth pairs with a 9,000-byte MTU, IPv4 only, with
//! permanent neighbour entries so that nothing but the test's datagrams moves. Needs
//! root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use common::{
    Flowmeter,
    netns::{Counters, Netns, unique_name},
};

const LINKS: u8 = 20;
const MTU: u64 = 9000;
const DATAGRAMS: u64 = 25;
/// The largest UDP payload an IPv4 packet of the MTU carries: a jumbo frame.
const PAYLOAD: usize = (MTU - 20 - 8) as usize;
/// The frame on the wire, Ethernet header included (as flowmeter and the counters count).
const FRAME: u64 = 14 + MTU;
const PORT: u16 = 9000;

/// One of the twenty veth links: its name in `a`, and both ends' addresses.
struct Link {
    a_if: String,
    a_ip: Ipv4Addr,
    b_ip: Ipv4Addr,
}

fn mac(link: u8, side: u8) -> String {
    format!("02:fe:00:00:{link:02x}:{side:02x}")
}

/// Makes the links between `a` and `b`; they go with the namespaces.
fn links(a: &Netns, b: &Netns, name: &str) -> Vec<Link> {
    (0..LINKS)
        .map(|i| {
            let (a_if, b_if) = (format!("{name}a{i}"), format!("{name}b{i}"));
            let (a_ip, b_ip) = (Ipv4Addr::new(10, 97, i, 1), Ipv4Addr::new(10, 97, i, 2));
            let (a_mac, b_mac) = (mac(i, 1), mac(i, 2));
            a.ip(&format!(
                "link add {a_if} address {a_mac} mtu {MTU} type veth peer name {b_if} \
                 address {b_mac} mtu {MTU} netns {}",
                b.name()
            ));
            for (netns, iface, ip, peer, peer_mac) in [
                (a, &a_if, a_ip, b_ip, &b_mac),
                (b, &b_if, b_ip, a_ip, &a_mac),
            ] {
                netns.sysctl(&[&format!("net.ipv6.conf.{iface}.disable_ipv6=1")]);
                netns.ip(&format!("addr add {ip} peer {peer} dev {iface}"));
                netns.ip(&format!("link set {iface} up"));
                netns.ip(&format!(
                    "neigh add {peer} lladdr {peer_mac} dev {iface} nud permanent"
                ));
            }
            a.wait_operstate_up(&a_if);
            Link { a_if, a_ip, b_ip }
        })
        .collect()
}

fn quiet(a: &Netns, links: &[Link]) -> Vec<Counters> {
    links.iter().map(|link| a.wait_quiet(&link.a_if)).collect()
}

#[test]
fn twenty_interfaces_of_jumbo_frames_are_each_counted_exactly() {
    let name = unique_name();
    let a = Netns::new(format!("{name}-a"));
    let b = Netns::new(format!("{name}-b"));
    let links = links(&a, &b, &name);
    let before = quiet(&a, &links);
    let receivers: Vec<UdpSocket> = a.run(|| {
        links
            .iter()
            .map(|link| UdpSocket::bind((link.a_ip, PORT)).expect("bind in a"))
            .collect()
    });
    let ifaces: String = links
        .iter()
        .map(|link| format!(" --iface {}", link.a_if))
        .collect();
    let flowmeter = Flowmeter::start_log(&a, &format!("--interval 0.5{ifaces}"));
    b.run(|| {
        for link in &links {
            let sender = UdpSocket::bind((link.b_ip, PORT)).expect("bind in b");
            for _ in 0..DATAGRAMS {
                sender
                    .send_to(&[7; PAYLOAD], (link.a_ip, PORT))
                    .expect("send a jumbo datagram");
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let after = quiet(&a, &links);
    let finished = flowmeter.stop();
    assert!(
        finished.status.success(),
        "flowmeter failed: {}",
        finished.stderr
    );
    drop(receivers);

    let log = finished.log();
    for (link, (before, after)) in links.iter().zip(before.iter().zip(&after)) {
        let counted = after.since(before);
        assert_eq!(
            (counted.rx_packets, counted.rx_bytes),
            (DATAGRAMS, DATAGRAMS * FRAME),
            "{}: the interface itself saw other traffic than the test's",
            link.a_if
        );
        log.assert_exact(&link.a_if, counted);
        let flow = log
            .flow(
                &link.a_if,
                "udp",
                SocketAddr::from((link.a_ip, PORT)),
                SocketAddr::from((link.b_ip, PORT)),
            )
            .unwrap_or_else(|| panic!("{}: no flow record of the datagrams", link.a_if));
        assert_eq!(
            (flow.rx_packets, flow.rx_bytes),
            (DATAGRAMS, DATAGRAMS * FRAME),
            "{}",
            link.a_if
        );
    }
}
