//! The oracle of the parser tests: what a frame must be counted as, derived by a
//! well-kept userspace parser (`etherparse`) rather than by flowmeter's own code.
//!
//! etherparse decodes each header (where its fields lie, which versions and lengths are
//! valid); the small rules below say where flowmeter's documented semantics
//! (`docs/architecture.md`, `flowmeter_common`, `docs/log-schema.md`) part from
//! etherparse's own whole-packet policy, one rule a function or constant. The answer, an
//! [`Expect`], goes to the table test (`datapath_test_run.rs`) and the fuzzer
//! (`fuzz_parser.rs`), which compare it with what the kernel counted.

#![allow(dead_code)] // each test file uses its own part of the oracle

use etherparse::{
    EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice,
    Ipv6HeaderSlice, Ipv6RawExtHeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};
use flowmeter_common::{DIR_TX, FAMILY_IPV4, FAMILY_IPV6, FlowKey, LINK_RAW_IP};

/// A flow as the frame carries it: source and destination, before orientation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub family: u8,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
}

impl Seen {
    /// The key from the host's side on interface `ifindex`: received, the remote end is
    /// the source; sent, it is the destination.
    pub fn key(&self, ifindex: u32, direction: u32) -> FlowKey {
        let (local_addr, remote_addr, local_port, remote_port) = if direction == DIR_TX {
            (self.src, self.dst, self.src_port, self.dst_port)
        } else {
            (self.dst, self.src, self.dst_port, self.src_port)
        };
        FlowKey {
            ifindex,
            family: self.family,
            proto: self.proto,
            local_port,
            remote_port,
            pad: 0,
            local_addr,
            remote_addr,
        }
    }
}

/// How a frame must be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Flow(Seen),
    NonIp,
    Malformed,
}

/// Why a frame makes no flow, for `?` inside the oracle.
type Verdict<T> = Result<T, Expect>;

/// Any length error of etherparse's is a header cut short: flowmeter's "malformed".
fn cut_short<T, E>(parsed: Result<T, E>) -> Verdict<T> {
    parsed.map_err(|_| Expect::Malformed)
}

/// What a frame on a link of kind `link` (`LINK_ETHERNET` or `LINK_RAW_IP`) must be
/// counted as.
pub fn expect(frame: &[u8], link: u32) -> Expect {
    let parsed = if link == LINK_RAW_IP {
        raw_ip(frame)
    } else {
        ethernet(frame)
    };
    parsed.unwrap_or_else(|reason| reason)
}

/// Rule: on raw-IP links the first 20 bytes (the smallest IP header) must be there
/// before the version nibble is trusted; a version other than 4 or 6 is not IP.
fn raw_ip(frame: &[u8]) -> Verdict<Expect> {
    const SMALLEST_IP_HEADER: usize = 20;
    if frame.len() < SMALLEST_IP_HEADER {
        return Err(Expect::Malformed);
    }
    match frame[0] >> 4 {
        4 => ipv4(frame),
        6 => ipv6(frame),
        _ => Err(Expect::NonIp),
    }
}

/// Rule: flowmeter follows two VLAN tags at most; a third is not IP to it.
const VLAN_TAGS_FOLLOWED: usize = 2;

/// Rule: only 802.1Q and 802.1ad TPIDs are tags (etherparse also takes the old QinQ
/// 0x9100 for one: to flowmeter that is just a non-IP ethertype).
fn is_vlan_tag(ether_type: EtherType) -> bool {
    ether_type == EtherType::VLAN_TAGGED_FRAME || ether_type == EtherType::PROVIDER_BRIDGING
}

fn ethernet(frame: &[u8]) -> Verdict<Expect> {
    let eth = cut_short(Ethernet2HeaderSlice::from_slice(frame))?;
    let mut ether_type = eth.ether_type();
    let mut rest = &frame[eth.slice().len()..];
    for _ in 0..VLAN_TAGS_FOLLOWED {
        if !is_vlan_tag(ether_type) {
            break;
        }
        let tag = cut_short(SingleVlanHeaderSlice::from_slice(rest))?;
        ether_type = tag.ether_type();
        rest = &rest[tag.slice().len()..];
    }
    // Rule: the ethertype picks the parser; a version field that disagrees with it is
    // malformed (etherparse's header parsers check the version themselves).
    match ether_type {
        EtherType::IPV4 => ipv4(rest),
        EtherType::IPV6 => ipv6(rest),
        _ => Err(Expect::NonIp),
    }
}

/// Rule: flowmeter reads every header from the frame as captured and never consults
/// the IP length fields (total length, payload length): a header that is there counts,
/// Ethernet padding included, and one the frame cuts short is malformed whatever the
/// length fields claim. So only header slices are used here, never etherparse's
/// total-length checks.
fn ipv4(data: &[u8]) -> Verdict<Expect> {
    let ip = cut_short(Ipv4HeaderSlice::from_slice(data))?;
    // Rule: a non-first fragment carries no transport header: no ports are read.
    let transport = (ip.fragments_offset().value() == 0).then(|| &data[ip.slice().len()..]);
    let (src_port, dst_port, tcp_flags) = ports(ip.protocol(), transport)?;
    Ok(Expect::Flow(Seen {
        family: FAMILY_IPV4,
        proto: ip.protocol().0,
        src: in_16(ip.source()),
        dst: in_16(ip.destination()),
        src_port,
        dst_port,
        tcp_flags,
    }))
}

/// Rule: flowmeter follows at most six extension headers; after the sixth, whatever
/// comes next (even another extension header) is taken as the protocol.
const IPV6_EXTENSIONS_FOLLOWED: usize = 6;

/// Rule: the extension headers flowmeter skips, in any order and any number of times
/// (etherparse's own chain wants hop-by-hop first and each header once, and also
/// follows the authentication header, which to flowmeter is a protocol without ports).
fn is_followed_extension(next: IpNumber) -> bool {
    next == IpNumber::IPV6_HEADER_HOP_BY_HOP
        || next == IpNumber::IPV6_ROUTE_HEADER
        || next == IpNumber::IPV6_DESTINATION_OPTIONS
        || next == IpNumber::IPV6_FRAGMENTATION_HEADER
}

fn ipv6(data: &[u8]) -> Verdict<Expect> {
    let ip = cut_short(Ipv6HeaderSlice::from_slice(data))?;
    let mut next = ip.next_header();
    let mut rest = &data[ip.slice().len()..];
    let mut later_fragment = false;
    for _ in 0..IPV6_EXTENSIONS_FOLLOWED {
        if !is_followed_extension(next) {
            break;
        }
        let len = if next == IpNumber::IPV6_FRAGMENTATION_HEADER {
            let fragment = cut_short(Ipv6FragmentHeaderSlice::from_slice(rest))?;
            // Rule: any fragment header with a non-zero offset makes it a later fragment.
            later_fragment |= fragment.fragment_offset().value() != 0;
            next = fragment.next_header();
            fragment.slice().len()
        } else {
            // The whole extension header must be there, even when no port follows it.
            let extension = cut_short(Ipv6RawExtHeaderSlice::from_slice(rest))?;
            next = extension.next_header();
            extension.slice().len()
        };
        rest = &rest[len..];
    }
    let (src_port, dst_port, tcp_flags) = ports(next, (!later_fragment).then_some(rest))?;
    Ok(Expect::Flow(Seen {
        family: FAMILY_IPV6,
        proto: next.0,
        src: ip.source(),
        dst: ip.destination(),
        src_port,
        dst_port,
        tcp_flags,
    }))
}

/// Rule: TCP's ports and flags come from its fixed 20 bytes; the data offset is not
/// checked and options need not be there (etherparse's TCP parser wants both).
const TCP_FIXED_HEADER: usize = 20;
/// Rule: ICMP and ICMPv6 (in either IP version) must have type, code and checksum, the
/// 4 bytes flowmeter checks for (etherparse's ICMP parsers also want the next 4).
const ICMP_BYTES_CHECKED: usize = 4;

/// Source port, destination port and TCP flags of the transport header at `transport`
/// (`None`: a later fragment, nothing read). Rule: only TCP and UDP have ports.
fn ports(proto: IpNumber, transport: Option<&[u8]>) -> Verdict<(u16, u16, u8)> {
    let Some(data) = transport else {
        return Ok((0, 0, 0));
    };
    match proto {
        IpNumber::TCP => {
            let mut fixed: [u8; TCP_FIXED_HEADER] = data
                .get(..TCP_FIXED_HEADER)
                .ok_or(Expect::Malformed)?
                .try_into()
                .expect("20 bytes");
            // A data offset of 5 words: these 20 bytes are all etherparse is to read.
            fixed[12] = (5 << 4) | (fixed[12] & 0x0f);
            let tcp = TcpHeaderSlice::from_slice(&fixed).expect("a 20-byte TCP header");
            Ok((tcp.source_port(), tcp.destination_port(), tcp_flags(&tcp)))
        }
        IpNumber::UDP => {
            let udp = cut_short(UdpHeaderSlice::from_slice(data))?;
            Ok((udp.source_port(), udp.destination_port(), 0))
        }
        IpNumber::ICMP | IpNumber::IPV6_ICMP if data.len() < ICMP_BYTES_CHECKED => {
            Err(Expect::Malformed)
        }
        _ => Ok((0, 0, 0)),
    }
}

/// The TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN, high bit first), as the flow
/// counters keep it.
fn tcp_flags(tcp: &TcpHeaderSlice) -> u8 {
    [
        tcp.fin(),
        tcp.syn(),
        tcp.rst(),
        tcp.psh(),
        tcp.ack(),
        tcp.urg(),
        tcp.ece(),
        tcp.cwr(),
    ]
    .iter()
    .enumerate()
    .fold(0, |flags, (bit, set)| flags | (u8::from(*set) << bit))
}

/// An IPv4 address in the 16-byte form of flow keys (first 4 bytes, rest zero).
fn in_16(addr: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&addr);
    out
}
