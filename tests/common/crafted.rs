//! The crafted-frame table: every kind of frame the parser meets (each network and
//! transport pairing, VLAN tags, IPv4 options and fragments, IPv6 extension chains,
//! non-IP ethertypes, inconsistent headers, cuts inside every header), each with how
//! flowmeter documents it must be counted. Run on the three programs by
//! `datapath_test_run.rs`, which also holds the oracle to every case.

#![allow(dead_code)]

use std::net::Ipv6Addr;

use flowmeter_common::{FAMILY_IPV4, FAMILY_IPV6};

use super::{
    frames::{
        ETH_HEADER, ETHERTYPE_LLDP, Extension, Frame, Header, IPPROTO_GRE, IPPROTO_ICMP,
        IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPV4_ROUTER_ALERT,
        TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, v4_in_16,
    },
    oracle::{Expect, Seen},
};

// Sender and receiver of every frame; the programs orient them by direction.
pub const SRC4: [u8; 4] = [192, 0, 2, 10];
pub const DST4: [u8; 4] = [198, 51, 100, 20];
pub const SRC6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x0a).octets();
pub const DST6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x14).octets();

/// The table's flows, from its sender to its receiver.
impl Seen {
    pub fn v4(proto: u8, src_port: u16, dst_port: u16) -> Self {
        Self {
            family: FAMILY_IPV4,
            proto,
            src: v4_in_16(SRC4),
            dst: v4_in_16(DST4),
            src_port,
            dst_port,
            tcp_flags: 0,
        }
    }

    pub fn v6(proto: u8, src_port: u16, dst_port: u16) -> Self {
        Self {
            family: FAMILY_IPV6,
            src: SRC6,
            dst: DST6,
            ..Self::v4(proto, src_port, dst_port)
        }
    }

    pub fn tcp_flags(self, tcp_flags: u8) -> Self {
        Self { tcp_flags, ..self }
    }
}

pub struct Case {
    pub name: &'static str,
    pub frame: Vec<u8>,
    pub expect: Expect,
}

pub fn case(name: &'static str, frame: Frame, expect: Expect) -> Case {
    Case {
        name,
        frame: frame.build(),
        expect,
    }
}

pub fn v4() -> Frame {
    Frame::ipv4(SRC4, DST4)
}

pub fn v6() -> Frame {
    Frame::ipv6(SRC6, DST6)
}

pub fn hop_by_hop() -> Extension {
    Extension::HopByHop { len8: 0 }
}

pub fn fragment(offset: u16, more: bool) -> Extension {
    Extension::Fragment { offset, more }
}

pub fn cases() -> Vec<Case> {
    use Expect::{Flow, Malformed, NonIp};
    let tcp4 = |flags| Seen::v4(IPPROTO_TCP, 40000, 443).tcp_flags(flags);
    let udp4 = Seen::v4(IPPROTO_UDP, 5353, 53);
    let tcp6 = |flags| Seen::v6(IPPROTO_TCP, 40000, 443).tcp_flags(flags);
    let udp6 = Seen::v6(IPPROTO_UDP, 5353, 53);
    vec![
        // Every network × transport pairing.
        case(
            "ipv4 tcp syn",
            v4().tcp(40000, 443, TCP_SYN),
            Flow(tcp4(TCP_SYN)),
        ),
        case(
            "ipv4 tcp psh-ack with payload",
            v4().tcp(40000, 443, TCP_PSH | TCP_ACK).payload(100),
            Flow(tcp4(TCP_PSH | TCP_ACK)),
        ),
        case("ipv4 udp", v4().udp(5353, 53).payload(30), Flow(udp4)),
        case(
            "ipv4 udp padded to 60 bytes",
            v4().udp(5353, 53).frame_len(60),
            Flow(udp4),
        ),
        case(
            "ipv4 icmp echo",
            v4().icmp(),
            Flow(Seen::v4(IPPROTO_ICMP, 0, 0)),
        ),
        case(
            "ipv4 carrying icmpv6",
            v4().icmpv6(),
            Flow(Seen::v4(IPPROTO_ICMPV6, 0, 0)),
        ),
        case(
            "ipv4 gre",
            v4().protocol(IPPROTO_GRE).payload(24),
            Flow(Seen::v4(IPPROTO_GRE, 0, 0)),
        ),
        case(
            "ipv4 sctp (ports not read)",
            v4().protocol(IPPROTO_SCTP).payload(28),
            Flow(Seen::v4(IPPROTO_SCTP, 0, 0)),
        ),
        case(
            "ipv6 tcp fin-ack",
            v6().tcp(40000, 443, TCP_FIN | TCP_ACK),
            Flow(tcp6(TCP_FIN | TCP_ACK)),
        ),
        case("ipv6 udp", v6().udp(5353, 53).payload(12), Flow(udp6)),
        case(
            "ipv6 icmpv6 echo",
            v6().icmpv6(),
            Flow(Seen::v6(IPPROTO_ICMPV6, 0, 0)),
        ),
        case(
            "ipv6 carrying icmp",
            v6().icmp(),
            Flow(Seen::v6(IPPROTO_ICMP, 0, 0)),
        ),
        case(
            "ipv6 sctp (ports not read)",
            v6().protocol(IPPROTO_SCTP).payload(28),
            Flow(Seen::v6(IPPROTO_SCTP, 0, 0)),
        ),
        case(
            "ipv6 no next header",
            v6().protocol(IPPROTO_NONE),
            Flow(Seen::v6(IPPROTO_NONE, 0, 0)),
        ),
        // VLAN tags: one, two (QinQ), three (not parsed).
        case("802.1q ipv4 udp", v4().dot1q(10).udp(5353, 53), Flow(udp4)),
        case(
            "802.1q ipv6 tcp",
            v6().dot1q(10).tcp(40000, 443, TCP_ACK),
            Flow(tcp6(TCP_ACK)),
        ),
        case(
            "qinq 802.1ad+802.1q ipv4 tcp",
            v4().dot1ad(100).dot1q(10).tcp(40000, 443, TCP_SYN),
            Flow(tcp4(TCP_SYN)),
        ),
        case(
            "qinq 802.1q+802.1q ipv6 udp",
            v6().dot1q(100).dot1q(10).udp(5353, 53),
            Flow(udp6),
        ),
        case(
            "three vlan tags",
            v4().dot1ad(100).dot1q(10).dot1q(20).udp(5353, 53),
            NonIp,
        ),
        // Not IP at all.
        case("arp", Frame::arp_request(SRC4, DST4), NonIp),
        case(
            "802.1q arp",
            Frame::arp_request(SRC4, DST4).dot1q(10),
            NonIp,
        ),
        case(
            "lldp",
            Frame::ethertype(ETHERTYPE_LLDP, &[0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]),
            NonIp,
        ),
        case(
            "ethertype only, no body",
            Frame::ethertype(ETHERTYPE_LLDP, &[]),
            NonIp,
        ),
        // IPv4 options and fragments.
        case(
            "ipv4 router-alert option udp",
            v4().ipv4_options(&IPV4_ROUTER_ALERT).udp(5353, 53),
            Flow(udp4),
        ),
        case(
            "ipv4 40 bytes of options tcp",
            v4().ipv4_options(&[1; 40]).tcp(40000, 443, TCP_SYN),
            Flow(tcp4(TCP_SYN)),
        ),
        case(
            "ipv4 first fragment udp",
            v4().ipv4_fragment(0, true).udp(5353, 53).payload(64),
            Flow(udp4),
        ),
        // Later fragments carry no transport header: what sits there is data.
        case(
            "ipv4 middle fragment",
            v4().ipv4_fragment(185, true).udp(5353, 53),
            Flow(Seen::v4(IPPROTO_UDP, 0, 0)),
        ),
        case(
            "ipv4 last fragment",
            v4().ipv4_fragment(370, false).tcp(40000, 443, TCP_SYN),
            Flow(Seen::v4(IPPROTO_TCP, 0, 0)),
        ),
        case(
            "ipv4 later fragment shorter than a tcp header",
            v4().ipv4_fragment(2, false)
                .protocol(IPPROTO_TCP)
                .payload(4),
            Flow(Seen::v4(IPPROTO_TCP, 0, 0)),
        ),
        // IPv6 extension headers.
        case(
            "ipv6 hop-by-hop udp",
            v6().extension(hop_by_hop()).udp(5353, 53),
            Flow(udp6),
        ),
        case(
            "ipv6 24-byte hop-by-hop tcp",
            v6().extension(Extension::HopByHop { len8: 2 })
                .tcp(40000, 443, TCP_SYN),
            Flow(tcp6(TCP_SYN)),
        ),
        case(
            "ipv6 routing tcp",
            v6().extension(Extension::Routing { len8: 2 })
                .tcp(40000, 443, TCP_ACK),
            Flow(tcp6(TCP_ACK)),
        ),
        case(
            "ipv6 destination options udp",
            v6().extension(Extension::DestOptions { len8: 1 })
                .udp(5353, 53),
            Flow(udp6),
        ),
        case(
            "ipv6 hop-by-hop icmpv6",
            v6().extension(hop_by_hop()).icmpv6(),
            Flow(Seen::v6(IPPROTO_ICMPV6, 0, 0)),
        ),
        case(
            "ipv6 first fragment udp",
            v6().extension(fragment(0, true)).udp(5353, 53).payload(64),
            Flow(udp6),
        ),
        case(
            "ipv6 later fragment",
            v6().extension(fragment(181, true)).udp(5353, 53),
            Flow(Seen::v6(IPPROTO_UDP, 0, 0)),
        ),
        case(
            "ipv6 last fragment",
            v6().extension(fragment(362, false))
                .tcp(40000, 443, TCP_SYN),
            Flow(Seen::v6(IPPROTO_TCP, 0, 0)),
        ),
        case(
            "ipv6 five chained extensions, first fragment, tcp",
            v6().extension(hop_by_hop())
                .extension(Extension::DestOptions { len8: 0 })
                .extension(Extension::Routing { len8: 0 })
                .extension(fragment(0, true))
                .extension(Extension::DestOptions { len8: 1 })
                .tcp(40000, 443, TCP_SYN),
            Flow(tcp6(TCP_SYN)),
        ),
        case(
            "ipv6 chained extensions, later fragment",
            v6().extension(hop_by_hop())
                .extension(Extension::Routing { len8: 0 })
                .extension(fragment(7, true))
                .udp(5353, 53),
            Flow(Seen::v6(IPPROTO_UDP, 0, 0)),
        ),
        // Inconsistent headers.
        case(
            "ipv4 ethertype, version 6",
            v4().ip_version(6).udp(5353, 53),
            Malformed,
        ),
        case(
            "ipv6 ethertype, version 4",
            v6().ip_version(4).udp(5353, 53),
            Malformed,
        ),
        case("ipv4 ihl 4", v4().ihl(4).udp(5353, 53), Malformed),
        case("ipv4 ihl 0", v4().ihl(0).udp(5353, 53), Malformed),
        case(
            "ipv4 ihl 15 beyond the frame",
            v4().ihl(15).udp(5353, 53),
            Malformed,
        ),
        // Cut short inside every header.
        case(
            "cut inside ethernet (10 bytes)",
            v4().udp(5353, 53).cut_in(Header::Ethernet, 10),
            Malformed,
        ),
        case(
            "cut inside ethernet (13 bytes)",
            v4().udp(5353, 53).cut_in(Header::Ethernet, 13),
            Malformed,
        ),
        case(
            "cut after ethernet, ipv4 ethertype",
            v4().udp(5353, 53).cut_in(Header::Network, 0),
            Malformed,
        ),
        case(
            "cut after ethernet, 802.1q ethertype",
            v4().dot1q(10).udp(5353, 53).cut_in(Header::Vlan(0), 0),
            Malformed,
        ),
        case(
            "cut inside 802.1q tag",
            v4().dot1q(10).udp(5353, 53).cut_in(Header::Vlan(0), 2),
            Malformed,
        ),
        case(
            "cut inside inner qinq tag",
            v6().dot1ad(100)
                .dot1q(10)
                .udp(5353, 53)
                .cut_in(Header::Vlan(1), 3),
            Malformed,
        ),
        case(
            "cut inside ipv4 header",
            v4().tcp(40000, 443, TCP_SYN).cut_in(Header::Network, 10),
            Malformed,
        ),
        case(
            "cut inside ipv4 header (19 bytes)",
            v4().udp(5353, 53).cut_in(Header::Network, 19),
            Malformed,
        ),
        case(
            "cut inside ipv4 options",
            v4().ipv4_options(&[1; 8])
                .udp(5353, 53)
                .cut_in(Header::Ipv4Options, 6),
            Malformed,
        ),
        case(
            "cut before ipv4 options",
            v4().ipv4_options(&IPV4_ROUTER_ALERT)
                .udp(5353, 53)
                .cut_in(Header::Ipv4Options, 0),
            Malformed,
        ),
        case(
            "cut inside ipv6 header",
            v6().tcp(40000, 443, TCP_SYN).cut_in(Header::Network, 30),
            Malformed,
        ),
        case(
            "cut inside ipv6 header (39 bytes)",
            v6().udp(5353, 53).cut_in(Header::Network, 39),
            Malformed,
        ),
        // The same with a tag: TC's test runs refuse the untagged ones above.
        case(
            "802.1q, cut after the tag, ipv4 ethertype",
            v4().dot1q(10).udp(5353, 53).cut_in(Header::Network, 0),
            Malformed,
        ),
        case(
            "802.1q, cut inside ipv4 header",
            v4().dot1q(10)
                .tcp(40000, 443, TCP_SYN)
                .cut_in(Header::Network, 19),
            Malformed,
        ),
        case(
            "802.1q, cut inside ipv6 header",
            v6().dot1q(10)
                .tcp(40000, 443, TCP_SYN)
                .cut_in(Header::Network, 30),
            Malformed,
        ),
        case(
            "cut after ipv6 header, hop-by-hop next",
            v6().extension(hop_by_hop())
                .udp(5353, 53)
                .cut_in(Header::Extension(0), 0),
            Malformed,
        ),
        case(
            "cut inside hop-by-hop (1 byte)",
            v6().extension(hop_by_hop())
                .udp(5353, 53)
                .cut_in(Header::Extension(0), 1),
            Malformed,
        ),
        case(
            "cut inside hop-by-hop, tcp next",
            v6().extension(hop_by_hop())
                .tcp(40000, 443, TCP_SYN)
                .cut_in(Header::Extension(0), 4),
            Malformed,
        ),
        case(
            "cut inside hop-by-hop, no next header",
            v6().extension(hop_by_hop())
                .protocol(IPPROTO_NONE)
                .cut_in(Header::Extension(0), 4),
            Malformed,
        ),
        case(
            "cut inside 16-byte destination options, sctp next",
            v6().extension(Extension::DestOptions { len8: 1 })
                .protocol(IPPROTO_SCTP)
                .payload(28)
                .cut_in(Header::Extension(0), 12),
            Malformed,
        ),
        case(
            "cut inside routing header, second of two",
            v6().extension(hop_by_hop())
                .extension(Extension::Routing { len8: 0 })
                .udp(5353, 53)
                .cut_in(Header::Extension(1), 6),
            Malformed,
        ),
        case(
            "cut inside fragment header",
            v6().extension(fragment(0, true))
                .udp(5353, 53)
                .cut_in(Header::Extension(0), 5),
            Malformed,
        ),
        case(
            "cut inside ipv4 tcp header",
            v4().tcp(40000, 443, TCP_SYN).cut_in(Header::Transport, 19),
            Malformed,
        ),
        case(
            "cut inside ipv6 tcp header",
            v6().tcp(40000, 443, TCP_SYN).cut_in(Header::Transport, 10),
            Malformed,
        ),
        case(
            "cut after ipv4 header, tcp next",
            v4().tcp(40000, 443, TCP_SYN).cut_in(Header::Transport, 0),
            Malformed,
        ),
        case(
            "cut inside ipv4 udp header",
            v4().udp(5353, 53).cut_in(Header::Transport, 7),
            Malformed,
        ),
        case(
            "cut inside ipv6 udp header",
            v6().udp(5353, 53).cut_in(Header::Transport, 4),
            Malformed,
        ),
        case(
            "cut inside icmp header",
            v4().icmp().cut_in(Header::Transport, 3),
            Malformed,
        ),
        case(
            "cut inside icmpv6 header",
            v6().icmpv6().cut_in(Header::Transport, 2),
            Malformed,
        ),
        case(
            "cut inside tcp after ipv4 options",
            v4().ipv4_options(&IPV4_ROUTER_ALERT)
                .tcp(40000, 443, TCP_SYN)
                .cut_in(Header::Transport, 12),
            Malformed,
        ),
        case(
            "cut inside tcp after ipv6 extensions",
            v6().extension(hop_by_hop())
                .extension(fragment(0, true))
                .tcp(40000, 443, TCP_SYN)
                .cut_in(Header::Transport, 12),
            Malformed,
        ),
    ]
}

/// Frames of raw-IP links (tun, WireGuard, PPP): no Ethernet header, the IP header
/// comes first. The kernel's test run still wants 14 bytes, which every frame here has.
pub fn raw_ip_cases() -> Vec<Case> {
    let strip = |frame: Frame| frame.build()[ETH_HEADER..].to_vec();
    vec![
        Case {
            name: "raw IPv4/UDP",
            frame: strip(v4().udp(5353, 53)),
            expect: Expect::Flow(Seen::v4(IPPROTO_UDP, 5353, 53)),
        },
        Case {
            name: "raw IPv6/TCP",
            frame: strip(v6().tcp(40000, 443, TCP_SYN)),
            expect: Expect::Flow(Seen {
                tcp_flags: TCP_SYN,
                ..Seen::v6(IPPROTO_TCP, 40000, 443)
            }),
        },
        Case {
            name: "raw, neither IPv4 nor IPv6",
            frame: vec![0x50; 40],
            expect: Expect::NonIp,
        },
    ]
}
