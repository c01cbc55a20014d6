//! Frame parsing: Ethernet with up to two VLAN tags (or no link header at all on raw-IP
//! links), IPv4 (with options), IPv6 (with extension headers), then TCP/UDP ports. Every
//! read is bounds-checked against the end of the directly readable data, in the form the
//! verifier can follow.

use flowmeter_common::{
    DIR_TX, FAMILY_IPV4, FAMILY_IPV6, FlowKey, LINK_RAW_IP, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP,
    PROTO_UDP,
};

const ETH_HEADER: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_TAG: usize = 4;
const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
/// Extension headers skipped before giving up on finding the transport header.
const IPV6_MAX_EXTENSIONS: usize = 6;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTIONS: u8 = 60;

/// Why a packet has no flow key.
pub enum Unparsed {
    /// Not IPv4 or IPv6 (ARP, LLDP, a third VLAN tag, ...).
    NonIp,
    /// A header is cut short or inconsistent.
    Malformed,
}

pub struct Parsed {
    pub key: FlowKey,
    pub tcp_flags: u8,
}

/// The directly readable bytes of a packet: `data..end`, as addresses.
pub struct Packet {
    data: usize,
    end: usize,
}

impl Packet {
    #[inline(always)]
    pub fn new(data: usize, end: usize) -> Self {
        Self { data, end }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.end - self.data
    }

    /// The `N` bytes at `offset`, or `Malformed` if the packet ends before them.
    #[inline(always)]
    fn bytes<const N: usize>(&self, offset: usize) -> Result<&[u8; N], Unparsed> {
        let start = self.data + offset;
        if start + N > self.end {
            return Err(Unparsed::Malformed);
        }
        // SAFETY: start..start+N lies inside the packet, checked just above; [u8; N]
        // has alignment 1.
        Ok(unsafe { &*(start as *const [u8; N]) })
    }
}

#[inline(always)]
fn be16(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}

/// The network layer found after the link layer.
struct Network {
    family: u8,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    /// Offset of the transport header, or `None` for a non-first fragment.
    transport: Option<usize>,
}

/// Parses a frame that begins as `link` says (`LINK_ETHERNET` or `LINK_RAW_IP`).
#[inline(always)]
pub fn parse(packet: &Packet, link: u32, direction: u32) -> Result<Parsed, Unparsed> {
    let (ethertype, offset) = if link == LINK_RAW_IP {
        // No link header: the IP version says what follows. (Any IP header is at least
        // 20 bytes; a 1-byte check would also be optimised into a form the verifier
        // does not follow.)
        let first = packet.bytes::<IPV4_MIN_HEADER>(0)?;
        match first[0] >> 4 {
            4 => (ETH_P_IPV4, 0),
            6 => (ETH_P_IPV6, 0),
            _ => return Err(Unparsed::NonIp),
        }
    } else {
        ethernet(packet)?
    };
    let network = match ethertype {
        ETH_P_IPV4 => ipv4(packet, offset)?,
        ETH_P_IPV6 => ipv6(packet, offset)?,
        _ => return Err(Unparsed::NonIp),
    };
    let (src_port, dst_port, tcp_flags) = match network.transport {
        Some(transport) => ports(packet, network.proto, transport)?,
        None => (0, 0, 0),
    };
    let (local_addr, remote_addr, local_port, remote_port) = if direction == DIR_TX {
        (network.src, network.dst, src_port, dst_port)
    } else {
        (network.dst, network.src, dst_port, src_port)
    };
    Ok(Parsed {
        key: FlowKey {
            ifindex: 0,
            family: network.family,
            proto: network.proto,
            local_port,
            remote_port,
            pad: 0,
            local_addr,
            remote_addr,
        },
        tcp_flags,
    })
}

/// The ethertype after the Ethernet header and up to two VLAN tags (802.1Q, 802.1ad),
/// and the offset where the network header begins.
#[inline(always)]
fn ethernet(packet: &Packet) -> Result<(u16, usize), Unparsed> {
    let eth = packet.bytes::<ETH_HEADER>(0)?;
    let mut ethertype = be16([eth[12], eth[13]]);
    let mut offset = ETH_HEADER;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let tag = packet.bytes::<VLAN_TAG>(offset)?;
        ethertype = be16([tag[2], tag[3]]);
        offset += VLAN_TAG;
    }
    Ok((ethertype, offset))
}

#[inline(always)]
fn ipv4(packet: &Packet, offset: usize) -> Result<Network, Unparsed> {
    let ip = packet.bytes::<IPV4_MIN_HEADER>(offset)?;
    if ip[0] >> 4 != 4 {
        return Err(Unparsed::Malformed);
    }
    let header_len = ((ip[0] & 0x0f) as usize) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(Unparsed::Malformed);
    }
    // Options must be present in full, too.
    if offset + header_len > packet.len() {
        return Err(Unparsed::Malformed);
    }
    let fragment_offset = be16([ip[6], ip[7]]) & 0x1fff;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&ip[12..16]);
    dst[..4].copy_from_slice(&ip[16..20]);
    Ok(Network {
        family: FAMILY_IPV4,
        proto: ip[9],
        src,
        dst,
        transport: (fragment_offset == 0).then_some(offset + header_len),
    })
}

#[inline(always)]
fn ipv6(packet: &Packet, offset: usize) -> Result<Network, Unparsed> {
    let ip = packet.bytes::<IPV6_HEADER>(offset)?;
    if ip[0] >> 4 != 6 {
        return Err(Unparsed::Malformed);
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let mut next = ip[6];
    let mut offset = offset + IPV6_HEADER;
    let mut later_fragment = false;
    for _ in 0..IPV6_MAX_EXTENSIONS {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTIONS => {
                let ext = packet.bytes::<2>(offset)?;
                next = ext[0];
                offset += (ext[1] as usize + 1) * 8;
                // The whole header must be there, even when no port follows it.
                if offset > packet.len() {
                    return Err(Unparsed::Malformed);
                }
            }
            IPV6_FRAGMENT => {
                let ext = packet.bytes::<8>(offset)?;
                next = ext[0];
                later_fragment |= be16([ext[2], ext[3]]) >> 3 != 0;
                offset += 8;
            }
            _ => break,
        }
    }
    Ok(Network {
        family: FAMILY_IPV6,
        proto: next,
        src,
        dst,
        transport: (!later_fragment).then_some(offset),
    })
}

/// Source port, destination port and TCP flags; zeros for protocols without ports.
#[inline(always)]
fn ports(packet: &Packet, proto: u8, offset: usize) -> Result<(u16, u16, u8), Unparsed> {
    match proto {
        PROTO_TCP => {
            let tcp = packet.bytes::<20>(offset)?;
            Ok((be16([tcp[0], tcp[1]]), be16([tcp[2], tcp[3]]), tcp[13]))
        }
        PROTO_UDP => {
            let udp = packet.bytes::<8>(offset)?;
            Ok((be16([udp[0], udp[1]]), be16([udp[2], udp[3]]), 0))
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            // Type and code must be there for the packet to be well formed.
            packet.bytes::<4>(offset)?;
            Ok((0, 0, 0))
        }
        _ => Ok((0, 0, 0)),
    }
}
