//! What the reader hands downstream each interval: immutable, decoded from the map ABI.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::{Duration, SystemTime},
};

use flowmeter_common::{FAMILY_IPV4, FlowKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// One interval's worth of traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Wall-clock time at the end of the interval.
    pub at: SystemTime,
    /// The interval's real length (the time between the two reads).
    pub interval: Duration,
    /// Flows that moved at least one packet during the interval.
    pub flows: Vec<FlowDelta>,
    /// One entry per metered interface, also when idle.
    pub interfaces: Vec<InterfaceTotals>,
    /// Received traffic that the kernel kept in no flow because its budget of new flows
    /// was spent (a flood), summed per source prefix and local port; empty otherwise.
    pub overflow: Vec<PrefixDelta>,
}

/// What new inbound flows over the kernel's new-flow budget carried during one interval,
/// from one source prefix to one local port: the part of a flood that has no flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixDelta {
    pub iface: Arc<str>,
    pub proto: Protocol,
    pub prefix: SourcePrefix,
    pub local_port: u16,
    pub packets: u64,
    pub bytes: u64,
}

/// A transport protocol, as the wire schema names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            PROTO_TCP => f.write_str("tcp"),
            PROTO_UDP => f.write_str("udp"),
            PROTO_ICMP => f.write_str("icmp"),
            PROTO_ICMPV6 => f.write_str("icmpv6"),
            other => write!(f, "{other}"),
        }
    }
}

/// A flow from the host's point of view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    pub iface: Arc<str>,
    pub proto: Protocol,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
}

impl FlowId {
    /// Decodes a kernel flow key; `iface` is the name of `key.ifindex`.
    pub fn from_key(key: &FlowKey, iface: Arc<str>) -> Self {
        let ip = |bytes: &[u8; 16]| -> IpAddr {
            if key.family == FAMILY_IPV4 {
                IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(*bytes))
            }
        };
        Self {
            iface,
            proto: Protocol(key.proto),
            local_ip: ip(&key.local_addr),
            local_port: key.local_port,
            remote_ip: ip(&key.remote_addr),
            remote_port: key.remote_port,
        }
    }
}

/// A flow's traffic during one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowDelta {
    pub id: FlowId,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// TCP flags seen since the flow started (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ...).
    pub tcp_flags: u8,
}

/// An interface's traffic during one interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceTotals {
    pub iface: Arc<str>,
    pub rx: DirectionTotals,
    pub tx: DirectionTotals,
}

/// One direction of an interface during one interval. `packets`/`bytes` are exact:
/// every frame the kernel program saw. Over a run, the flows' packets plus
/// `unattributed_packets` equal `packets` (likewise bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionTotals {
    pub packets: u64,
    pub bytes: u64,
    /// Traffic in no flow: not IP, malformed, no room in the flow table, or counted in a
    /// flow that was evicted from the table before it was read.
    pub unattributed_packets: u64,
    pub unattributed_bytes: u64,
    pub non_ip_packets: u64,
    pub non_ip_bytes: u64,
    pub malformed_packets: u64,
    pub malformed_bytes: u64,
    pub table_full_packets: u64,
    pub table_full_bytes: u64,
    /// Received IP traffic of new flows over the kernel's new-flow budget (a flood): in no
    /// flow, summed per source prefix in [`Snapshot::overflow`].
    pub over_budget_packets: u64,
    pub over_budget_bytes: u64,
    /// Traffic counted in a flow that the kernel's table let go (LRU eviction) before
    /// the reader saw it: the part of the unattributed traffic that none of the kernel's
    /// own reasons explains. Over a run, the reasons add up to the unattributed traffic.
    pub evicted_packets: u64,
    pub evicted_bytes: u64,
}

/// A source prefix: the /24 of an IPv4 address, the /64 of an IPv6 one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourcePrefix {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl SourcePrefix {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(ip) => SourcePrefix::V4(Ipv4Addr::from_bits(ip.to_bits() & !0xff)),
            IpAddr::V6(ip) => {
                SourcePrefix::V6(Ipv6Addr::from_bits(ip.to_bits() & !(u128::MAX >> 64)))
            }
        }
    }
}

impl fmt::Display for SourcePrefix {
    /// `198.51.100.0/24`, `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcePrefix::V4(net) => write!(f, "{net}/24"),
            SourcePrefix::V6(net) => write!(f, "{net}/64"),
        }
    }
}
