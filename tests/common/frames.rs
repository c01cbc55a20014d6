//! A small builder of Ethernet frames to feed the eBPF programs through
//! BPF_PROG_TEST_RUN: Ethernet, VLAN tags, IPv4 (options, fragments) or IPv6
//! (extension headers), then TCP, UDP, ICMP, ICMPv6 or any other protocol.
//!
//! Length fields (IPv4 total length, IPv6 payload length, UDP length) describe the
//! whole frame as built, also when [`Frame::cut_in`] then cuts it short, like a
//! truncated capture. Checksums stay zero: nothing on this path checks them.
//!
//! ```ignore
//! let syn = Frame::ipv4([192, 0, 2, 1], [198, 51, 100, 2])
//!     .dot1q(10)
//!     .tcp(40000, 443, TCP_SYN)
//!     .build();
//! let cut = Frame::ipv6(a, b).udp(5353, 53).cut_in(Header::Transport, 5).build();
//! ```
// Each test and bench that includes this file uses its own part of it.
#![allow(dead_code)]

pub const ETH_HEADER: usize = 14;
pub const VLAN_TAG: usize = 4;
pub const IPV4_HEADER: usize = 20;
pub const IPV6_HEADER: usize = 40;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_LLDP: u16 = 0x88cc;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_NONE: u8 = 59;
pub const IPPROTO_SCTP: u8 = 132;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// IPv4 option "Router Alert" (RFC 2113): a common 4-byte option.
pub const IPV4_ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0x00, 0x00];

/// One frame to build. Start from [`Frame::ipv4`], [`Frame::ipv6`] or
/// [`Frame::ethertype`], add tags and layers, then [`Frame::build`].
#[derive(Clone, Debug)]
pub struct Frame {
    /// (TPID, VLAN id), outermost first.
    tags: Vec<(u16, u16)>,
    network: Network,
    transport: Transport,
    payload: usize,
    cut: Option<(Header, usize)>,
}

#[derive(Clone, Debug)]
enum Network {
    Ipv4(Ipv4),
    Ipv6(Ipv6),
    /// Any other ethertype: its body follows the link header as given.
    Other {
        ethertype: u16,
        body: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
struct Ipv4 {
    src: [u8; 4],
    dst: [u8; 4],
    version: u8,
    /// Header length in 32-bit words; `None`: 5 plus the options.
    ihl: Option<u8>,
    options: Vec<u8>,
    more_fragments: bool,
    /// In 8-byte units.
    fragment_offset: u16,
}

#[derive(Clone, Debug)]
struct Ipv6 {
    src: [u8; 16],
    dst: [u8; 16],
    version: u8,
    extensions: Vec<Extension>,
}

/// An IPv6 extension header.
#[derive(Clone, Copy, Debug)]
pub enum Extension {
    /// Hop-by-hop options, `(len8 + 1) * 8` bytes long (padding only).
    HopByHop { len8: u8 },
    /// Routing header, `(len8 + 1) * 8` bytes, segments left 0.
    Routing { len8: u8 },
    /// Destination options, `(len8 + 1) * 8` bytes long (padding only).
    DestOptions { len8: u8 },
    /// Fragment header; `offset` in 8-byte units.
    Fragment { offset: u16, more: bool },
}

impl Extension {
    fn next_header_value(self) -> u8 {
        match self {
            Extension::HopByHop { .. } => 0,
            Extension::Routing { .. } => 43,
            Extension::Fragment { .. } => 44,
            Extension::DestOptions { .. } => 60,
        }
    }

    fn encode(self, next: u8, out: &mut Vec<u8>) {
        match self {
            Extension::HopByHop { len8 } | Extension::DestOptions { len8 } => {
                let len = (len8 as usize + 1) * 8;
                out.extend([next, len8]);
                // One PadN option fills the rest (its own 2 bytes included).
                out.extend([1, (len - 4) as u8]);
                out.resize(out.len() + len - 4, 0);
            }
            Extension::Routing { len8 } => {
                let len = (len8 as usize + 1) * 8;
                // Routing type 253 (experimental), segments left 0: nothing to route.
                out.extend([next, len8, 253, 0]);
                out.resize(out.len() + len - 4, 0);
            }
            Extension::Fragment { offset, more } => {
                let field = (offset << 3) | u16::from(more);
                out.extend([next, 0]);
                out.extend(field.to_be_bytes());
                out.extend(0x0bad_cafe_u32.to_be_bytes());
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp {
        src: u16,
        dst: u16,
        flags: u8,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    /// Echo request: type, code, checksum, identifier, sequence.
    Icmp {
        proto: u8,
        kind: u8,
    },
    /// A protocol without a header this builder knows: the payload follows directly.
    Other {
        proto: u8,
    },
}

impl Transport {
    fn proto(self) -> u8 {
        match self {
            Transport::Tcp { .. } => IPPROTO_TCP,
            Transport::Udp { .. } => IPPROTO_UDP,
            Transport::Icmp { proto, .. } | Transport::Other { proto } => proto,
        }
    }

    fn header_len(self) -> usize {
        match self {
            Transport::Tcp { .. } => 20,
            Transport::Udp { .. } | Transport::Icmp { .. } => 8,
            Transport::Other { .. } => 0,
        }
    }

    fn encode(self, payload: usize, out: &mut Vec<u8>) {
        match self {
            Transport::Tcp { src, dst, flags } => {
                out.extend(src.to_be_bytes());
                out.extend(dst.to_be_bytes());
                out.extend(1_000_u32.to_be_bytes()); // sequence
                out.extend(2_000_u32.to_be_bytes()); // acknowledgement
                out.extend([5 << 4, flags]); // data offset 5 words
                out.extend(65_535_u16.to_be_bytes()); // window
                out.extend([0; 4]); // checksum, urgent pointer
            }
            Transport::Udp { src, dst } => {
                out.extend(src.to_be_bytes());
                out.extend(dst.to_be_bytes());
                out.extend(((8 + payload) as u16).to_be_bytes());
                out.extend([0; 2]);
            }
            Transport::Icmp { kind, .. } => out.extend([kind, 0, 0, 0, 0x12, 0x34, 0, 1]),
            Transport::Other { .. } => {}
        }
    }
}

/// A header of the frame, to cut the frame inside it ([`Frame::cut_in`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    Ethernet,
    /// The n-th VLAN tag, outermost first, as a parser reads it: the TCI and the next
    /// ethertype (the tag's TPID sits where the ethertype would be).
    Vlan(usize),
    /// The IPv4 or IPv6 header (or the body of another ethertype).
    Network,
    /// The IPv4 options (right after the 20 fixed bytes).
    Ipv4Options,
    /// The n-th IPv6 extension header.
    Extension(usize),
    Transport,
    Payload,
}

/// Where each header starts in the built frame.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub vlans: Vec<usize>,
    pub network: usize,
    pub extensions: Vec<usize>,
    pub transport: usize,
    pub payload: usize,
    pub len: usize,
}

impl Layout {
    pub fn start(&self, header: Header) -> usize {
        match header {
            Header::Ethernet => 0,
            Header::Vlan(n) => self.vlans[n],
            Header::Network => self.network,
            Header::Ipv4Options => self.network + IPV4_HEADER,
            Header::Extension(n) => self.extensions[n],
            Header::Transport => self.transport,
            Header::Payload => self.payload,
        }
    }
}

impl Frame {
    fn new(network: Network) -> Self {
        Self {
            tags: Vec::new(),
            network,
            // Until a transport is chosen: IANA's reserved protocol 255, no header.
            transport: Transport::Other { proto: 255 },
            payload: 0,
            cut: None,
        }
    }

    pub fn ipv4(src: [u8; 4], dst: [u8; 4]) -> Self {
        Self::new(Network::Ipv4(Ipv4 {
            src,
            dst,
            version: 4,
            ihl: None,
            options: Vec::new(),
            more_fragments: false,
            fragment_offset: 0,
        }))
    }

    pub fn ipv6(src: [u8; 16], dst: [u8; 16]) -> Self {
        Self::new(Network::Ipv6(Ipv6 {
            src,
            dst,
            version: 6,
            extensions: Vec::new(),
        }))
    }

    /// A frame of any other ethertype with the given body.
    pub fn ethertype(ethertype: u16, body: &[u8]) -> Self {
        Self::new(Network::Other {
            ethertype,
            body: body.to_vec(),
        })
    }

    /// An ARP who-has request from `sender` for `target`.
    pub fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Self {
        let mut body = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1]; // Ethernet/IPv4, request
        body.extend(SRC_MAC);
        body.extend(sender);
        body.extend([0; 6]);
        body.extend(target);
        Self::ethertype(ETHERTYPE_ARP, &body)
    }

    /// Adds a VLAN tag inside the ones already there.
    pub fn vlan(mut self, tpid: u16, vid: u16) -> Self {
        self.tags.push((tpid, vid));
        self
    }

    /// An 802.1Q (C-)tag.
    pub fn dot1q(self, vid: u16) -> Self {
        self.vlan(TPID_8021Q, vid)
    }

    /// An 802.1ad (S-)tag, the outer tag of QinQ.
    pub fn dot1ad(self, vid: u16) -> Self {
        self.vlan(TPID_8021AD, vid)
    }

    pub fn tcp(self, src: u16, dst: u16, flags: u8) -> Self {
        self.transport(Transport::Tcp { src, dst, flags })
    }

    pub fn udp(self, src: u16, dst: u16) -> Self {
        self.transport(Transport::Udp { src, dst })
    }

    /// ICMP echo request.
    pub fn icmp(self) -> Self {
        self.transport(Transport::Icmp {
            proto: IPPROTO_ICMP,
            kind: 8,
        })
    }

    /// ICMPv6 echo request.
    pub fn icmpv6(self) -> Self {
        self.transport(Transport::Icmp {
            proto: IPPROTO_ICMPV6,
            kind: 128,
        })
    }

    /// Another IP protocol: no header, just the payload.
    pub fn protocol(self, proto: u8) -> Self {
        self.transport(Transport::Other { proto })
    }

    fn transport(mut self, transport: Transport) -> Self {
        assert!(
            !matches!(self.network, Network::Other { .. }),
            "a transport needs IPv4 or IPv6"
        );
        self.transport = transport;
        self
    }

    /// Bytes after the transport header.
    pub fn payload(mut self, len: usize) -> Self {
        self.payload = len;
        self
    }

    /// Grows the payload so that the whole frame is `len` bytes (e.g. 60 or 64).
    pub fn frame_len(mut self, len: usize) -> Self {
        let without_payload = self.layout().payload;
        assert!(
            len >= without_payload,
            "headers alone take {without_payload} bytes"
        );
        self.payload = len - without_payload;
        self
    }

    /// IPv4 options (a multiple of 4 bytes); IHL follows unless set by [`Frame::ihl`].
    pub fn ipv4_options(mut self, options: &[u8]) -> Self {
        assert!(options.len().is_multiple_of(4) && options.len() <= 40);
        self.ipv4_mut().options = options.to_vec();
        self
    }

    /// IPv4 fragment fields: offset in 8-byte units, and the More Fragments flag.
    pub fn ipv4_fragment(mut self, offset: u16, more: bool) -> Self {
        let ip = self.ipv4_mut();
        ip.fragment_offset = offset;
        ip.more_fragments = more;
        self
    }

    /// Forces the IPv4 header length field (in 32-bit words), e.g. to an invalid value.
    pub fn ihl(mut self, words: u8) -> Self {
        self.ipv4_mut().ihl = Some(words);
        self
    }

    /// Forces the IP version field, e.g. to the wrong one for the ethertype.
    pub fn ip_version(mut self, version: u8) -> Self {
        match &mut self.network {
            Network::Ipv4(ip) => ip.version = version,
            Network::Ipv6(ip) => ip.version = version,
            Network::Other { .. } => panic!("not an IP frame"),
        }
        self
    }

    /// Adds an IPv6 extension header after the ones already there.
    pub fn extension(mut self, extension: Extension) -> Self {
        match &mut self.network {
            Network::Ipv6(ip) => ip.extensions.push(extension),
            _ => panic!("extension headers need IPv6"),
        }
        self
    }

    /// Ends the frame `bytes` bytes after the start of `header`.
    pub fn cut_in(mut self, header: Header, bytes: usize) -> Self {
        self.cut = Some((header, bytes));
        self
    }

    fn ipv4_mut(&mut self) -> &mut Ipv4 {
        match &mut self.network {
            Network::Ipv4(ip) => ip,
            _ => panic!("not an IPv4 frame"),
        }
    }

    /// Where each header starts, before any cut.
    pub fn layout(&self) -> Layout {
        self.encode().1
    }

    pub fn build(&self) -> Vec<u8> {
        let (mut bytes, layout) = self.encode();
        if let Some((header, len)) = self.cut {
            let end = layout.start(header) + len;
            assert!(
                end <= bytes.len(),
                "cut at {end} beyond the frame's {} bytes",
                bytes.len()
            );
            bytes.truncate(end);
        }
        bytes
    }

    fn encode(&self) -> (Vec<u8>, Layout) {
        let mut out = Vec::with_capacity(128);
        let mut layout = Layout::default();
        out.extend(DST_MAC);
        out.extend(SRC_MAC);
        let ethertype = match &self.network {
            Network::Ipv4(_) => ETHERTYPE_IPV4,
            Network::Ipv6(_) => ETHERTYPE_IPV6,
            Network::Other { ethertype, .. } => *ethertype,
        };
        // Each tag's TPID sits where the ethertype would; the real ethertype comes last.
        for &(tpid, vid) in &self.tags {
            out.extend(tpid.to_be_bytes());
            layout.vlans.push(out.len());
            out.extend((vid & 0x0fff).to_be_bytes());
        }
        out.extend(ethertype.to_be_bytes());
        layout.network = out.len();

        let transport_len = self.transport.header_len() + self.payload;
        match &self.network {
            Network::Ipv4(ip) => {
                let ihl = ip.ihl.unwrap_or(5 + (ip.options.len() / 4) as u8);
                let total = IPV4_HEADER + ip.options.len() + transport_len;
                let fragment = (u16::from(ip.more_fragments) << 13) | ip.fragment_offset;
                out.push((ip.version << 4) | (ihl & 0x0f));
                out.push(0); // DSCP/ECN
                out.extend((total as u16).to_be_bytes());
                out.extend(0x4242_u16.to_be_bytes()); // identification
                out.extend(fragment.to_be_bytes());
                out.extend([64, self.transport.proto(), 0, 0]); // TTL, protocol, checksum
                out.extend(ip.src);
                out.extend(ip.dst);
                out.extend(&ip.options);
            }
            Network::Ipv6(ip) => {
                let proto = self.transport.proto();
                let mut ext = Vec::new();
                let mut starts = Vec::new();
                for (n, extension) in ip.extensions.iter().enumerate() {
                    let next = ip
                        .extensions
                        .get(n + 1)
                        .map_or(proto, |e| e.next_header_value());
                    starts.push(ext.len());
                    extension.encode(next, &mut ext);
                }
                let first = ip
                    .extensions
                    .first()
                    .map_or(proto, |e| e.next_header_value());
                out.extend([ip.version << 4, 0, 0, 0]); // version, traffic class, flow label
                out.extend(((ext.len() + transport_len) as u16).to_be_bytes());
                out.extend([first, 64]); // next header, hop limit
                out.extend(ip.src);
                out.extend(ip.dst);
                let base = out.len();
                layout.extensions = starts.into_iter().map(|s| base + s).collect();
                out.extend(ext);
            }
            Network::Other { body, .. } => out.extend(body),
        }
        layout.transport = out.len();
        self.transport.encode(self.payload, &mut out);
        layout.payload = out.len();
        // A recognisable, non-zero payload.
        out.extend((0..self.payload).map(|n| n as u8 | 0x80));
        layout.len = out.len();
        (out, layout)
    }
}

pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An IPv4 address in the 16-byte form of flow keys (first 4 bytes, rest zero).
pub fn v4_in_16(addr: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&addr);
    out
}
