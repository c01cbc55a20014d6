//! Frame parsing: Ethernet with up to two VLAN tags (or no link header at all on raw-IP
//! links), IPv4 (with options), IPv6 (with extension headers), then TCP/UDP ports. Every
//! read is bounds-checked against the end of the directly readable data, in the form the
//! verifier can follow.
//!
//! The flow key (IPv4 or IPv6, each its own map's) is written in place, once, field by
//! field, straight from the packet: no zero-filled temporaries, which would become
//! `memset` calls (see `write_zero` in main.rs).

use core::{mem::MaybeUninit, mem::offset_of, ptr::copy_nonoverlapping};

use flowmeter_common::{
    DIR_TX, FAMILY_IPV6, FlowKey, FlowKeyV4, LINK_RAW_IP, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP,
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

/// The addresses of a network header, where they lie in the packet.
enum Addresses<'a> {
    V4 {
        src: &'a [u8; 4],
        dst: &'a [u8; 4],
    },
    V6 {
        src: &'a [u8; 16],
        dst: &'a [u8; 16],
    },
}

/// The network layer found after the link layer.
struct Network<'a> {
    addresses: Addresses<'a>,
    proto: u8,
    /// Offset of the transport header, or `None` for a non-first fragment.
    transport: Option<usize>,
}

/// A parsed packet's flow key, written in place into the caller's place for its family.
pub enum Key<'k> {
    V4(&'k FlowKeyV4),
    V6(&'k FlowKey),
}

/// What the log line of a new flow says about it, whatever its family.
#[derive(Clone, Copy)]
pub struct Summary {
    pub proto: u8,
    pub local_port: u16,
    pub remote_port: u16,
    pub tcp_flags: u8,
    /// Bytes before the payload: link, network and transport header (TCP's options
    /// included), what each segment of a GSO packet repeats; 0 without a transport
    /// header (a later fragment).
    pub headers: u32,
}

/// Parses a frame that begins as `link` says (`LINK_ETHERNET` or `LINK_RAW_IP`): writes
/// the key of its flow on interface `ifindex` into `v4` or `v6`, by its address family,
/// and returns that key with a summary of the packet (ports, TCP flags).
#[inline(always)]
pub fn parse<'k>(
    packet: &Packet,
    link: u32,
    ifindex: u32,
    direction: u32,
    v4: &'k mut MaybeUninit<FlowKeyV4>,
    v6: &'k mut MaybeUninit<FlowKey>,
) -> Result<(Key<'k>, Summary), Unparsed> {
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
    let (src_port, dst_port, tcp_flags, headers) = match network.transport {
        Some(transport) => {
            let (src, dst, flags, header_len) = ports(packet, network.proto, transport)?;
            (src, dst, flags, (transport + header_len) as u32)
        }
        None => (0, 0, 0, 0),
    };
    let tx = direction == DIR_TX;
    let (local_port, remote_port) = if tx {
        (src_port, dst_port)
    } else {
        (dst_port, src_port)
    };
    let summary = Summary {
        proto: network.proto,
        local_port,
        remote_port,
        tcp_flags,
        headers,
    };
    // Written in place, field by field: a key built as a value would be assembled in
    // registers and spills before the copy.
    let key = match network.addresses {
        Addresses::V4 { src, dst } => {
            let (local, remote) = if tx { (src, dst) } else { (dst, src) };
            let key = v4.as_mut_ptr();
            // SAFETY: `key` points to a FlowKeyV4-sized, FlowKeyV4-aligned place; every
            // one of its fields is written below before it is handed out as initialised.
            unsafe {
                (&raw mut (*key).ifindex).write(ifindex);
                // Whole words from the packet (4-aligned in the key, maybe not in the packet).
                (&raw mut (*key).local_addr)
                    .cast::<u32>()
                    .write(u32::from_ne_bytes(*local));
                (&raw mut (*key).remote_addr)
                    .cast::<u32>()
                    .write(u32::from_ne_bytes(*remote));
                (&raw mut (*key).local_port).write(local_port);
                (&raw mut (*key).remote_port).write(remote_port);
                // The protocol and the 3 padding bytes after it as one aligned word.
                (&raw mut (*key).proto)
                    .cast::<u32>()
                    .write(u32::from_ne_bytes([network.proto, 0, 0, 0]));
                Key::V4(&*key)
            }
        }
        Addresses::V6 { src, dst } => {
            let (local, remote) = if tx { (src, dst) } else { (dst, src) };
            let key = v6.as_mut_ptr();
            // SAFETY: `key` points to a FlowKey-sized, FlowKey-aligned place; every one
            // of its fields is written below before it is handed out as initialised.
            unsafe {
                (&raw mut (*key).ifindex).write(ifindex);
                (&raw mut (*key).family).write(FAMILY_IPV6);
                (&raw mut (*key).proto).write(network.proto);
                (&raw mut (*key).local_port).write(local_port);
                (&raw mut (*key).remote_port).write(remote_port);
                (&raw mut (*key).pad).write(0);
                // Byte copies from the packet (its words may be unaligned).
                copy_nonoverlapping(local, &raw mut (*key).local_addr, 1);
                copy_nonoverlapping(remote, &raw mut (*key).remote_addr, 1);
                Key::V6(&*key)
            }
        }
    };
    Ok((key, summary))
}

// The in-place writes above rely on this layout.
const _: () = assert!(
    align_of::<FlowKeyV4>() >= 4
        && offset_of!(FlowKeyV4, local_addr).is_multiple_of(4)
        && offset_of!(FlowKeyV4, remote_addr).is_multiple_of(4)
        && offset_of!(FlowKeyV4, proto).is_multiple_of(4)
        && offset_of!(FlowKeyV4, pad) == offset_of!(FlowKeyV4, proto) + 1
        && size_of::<FlowKeyV4>() == offset_of!(FlowKeyV4, proto) + 4
);

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
fn ipv4(packet: &Packet, offset: usize) -> Result<Network<'_>, Unparsed> {
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
    // The header as 32-bit words: the source address is word 3, the destination word 4.
    let (words, _) = ip.as_chunks::<4>();
    Ok(Network {
        addresses: Addresses::V4 {
            src: &words[3],
            dst: &words[4],
        },
        proto: ip[9],
        transport: (fragment_offset == 0).then_some(offset + header_len),
    })
}

#[inline(always)]
fn ipv6(packet: &Packet, offset: usize) -> Result<Network<'_>, Unparsed> {
    let ip = packet.bytes::<IPV6_HEADER>(offset)?;
    if ip[0] >> 4 != 6 {
        return Err(Unparsed::Malformed);
    }
    // Source and destination address follow the first 8 bytes.
    let (addresses, _) = ip[8..].as_chunks::<16>();
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
        addresses: Addresses::V6 {
            src: &addresses[0],
            dst: &addresses[1],
        },
        proto: next,
        transport: (!later_fragment).then_some(offset),
    })
}

/// Source port, destination port, TCP flags and the transport header's length as GSO
/// repeats it (TCP's data offset, UDP's 8 bytes, 0 for others); zeros for protocols
/// without ports.
#[inline(always)]
fn ports(packet: &Packet, proto: u8, offset: usize) -> Result<(u16, u16, u8, usize), Unparsed> {
    match proto {
        PROTO_TCP => {
            let tcp = packet.bytes::<20>(offset)?;
            let data_offset = (tcp[12] >> 4) as usize * 4;
            Ok((
                be16([tcp[0], tcp[1]]),
                be16([tcp[2], tcp[3]]),
                tcp[13],
                data_offset,
            ))
        }
        PROTO_UDP => {
            let udp = packet.bytes::<8>(offset)?;
            Ok((be16([udp[0], udp[1]]), be16([udp[2], udp[3]]), 0, 8))
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            // Type and code must be there for the packet to be well formed.
            packet.bytes::<4>(offset)?;
            Ok((0, 0, 0, 0))
        }
        _ => Ok((0, 0, 0, 0)),
    }
}
