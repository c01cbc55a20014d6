//! The map ABI shared by the eBPF programs (`xdp/`) and userspace.
//!
//! Every type is `#[repr(C)]` with explicit padding fields, so that the kernel and
//! userspace agree byte for byte and no padding byte is ever left uninitialised in a
//! hash key.
#![no_std]

/// Name of the IPv6 flow map (`LRU_PERCPU_HASH`, key [`FlowKey`], value [`FlowCounters`]).
pub const FLOWS_MAP: &str = "FLOWS";
/// Name of the IPv4 flow map (`LRU_PERCPU_HASH`, key [`FlowKeyV4`], value [`FlowCounters`]):
/// a 20-byte key hashes in one round of the kernel's jhash where the 44-byte one takes
/// three, which is most of what a known flow's packet costs.
pub const FLOWS_V4_MAP: &str = "FLOWS_V4";
/// Name of the per-interface totals map (`PERCPU_ARRAY`, index [`totals_index`], value [`Totals`]).
pub const TOTALS_MAP: &str = "TOTALS";
/// Name of the interface map (`ARRAY`, index ifindex, value [`IfaceConfig`]): where each
/// metered interface's totals live and how its frames begin.
pub const IFACES_MAP: &str = "IFACES";
/// Name of the map of received traffic over the new-flow budget (`LRU_PERCPU_HASH`, key
/// [`PrefixKey`], value [`PrefixCounters`]): a flood's packets that made no flow, summed
/// per source prefix and local port.
pub const OVERFLOW_MAP: &str = "OVERFLOW";
/// Name of the per-CPU state of the new-flow budget (`PERCPU_ARRAY` of one
/// [`NewFlowWindow`]).
pub const NEW_FLOW_WINDOW_MAP: &str = "NEW_FLOW_WINDOW";
/// Name of the global (a `u64`, set at load time) holding the budget: new flows per
/// second per CPU that received packets may create; 0 = unlimited.
pub const NEW_FLOW_BUDGET_GLOBAL: &str = "NEW_FLOW_BUDGET";
/// The budget's window: a CPU may create [`NEW_FLOW_BUDGET_GLOBAL`] flows per window.
pub const NEW_FLOW_WINDOW_NS: u64 = 1_000_000_000;
/// Default number of source prefixes the overflow map holds.
pub const OVERFLOW_CAPACITY: u32 = 4_096;

/// Program names in the object file.
pub const XDP_INGRESS_PROG: &str = "flowmeter_xdp_ingress";
pub const TC_INGRESS_PROG: &str = "flowmeter_tc_ingress";
pub const TC_EGRESS_PROG: &str = "flowmeter_tc_egress";
/// The socket-owner programs (`xdp/src/owners.rs`), attached to the cgroup v2 root.
pub const SOCK_CREATE_PROG: &str = "flowmeter_sock_create";
pub const SOCK_OPS_PROG: &str = "flowmeter_sock_ops";
pub const SENDMSG4_PROG: &str = "flowmeter_sendmsg4";
pub const SENDMSG6_PROG: &str = "flowmeter_sendmsg6";

/// Name of the map of socket owners by socket cookie (`LRU_HASH`, key `u64` cookie,
/// value [`SockOwner`]): written when a socket is made, in its process's context.
pub const SOCK_OWNERS_MAP: &str = "SOCK_OWNERS";
/// Name of the map of socket owners by tuple (`LRU_HASH`, key [`FlowKey`] with ifindex 0,
/// oriented as the socket sees it: local = the socket's end; value [`SockOwner`]):
/// written when a socket connects, sends unconnected, or sends its flow's first packet.
/// An unconnected UDP socket bound to no address is keyed with its local address zero.
pub const TUPLE_OWNERS_MAP: &str = "TUPLE_OWNERS";
/// Default entries of each owner map; userspace may change them at load time.
pub const DEFAULT_OWNER_CAPACITY: u32 = 65_536;

/// Default number of flows the kernel tracks per address family; userspace may change it
/// at load time.
pub const DEFAULT_FLOW_CAPACITY: u32 = 65_536;
/// Default sizes of the interface and totals maps; userspace sizes both at load time:
/// IFACES to the highest ifindex metered + 1, TOTALS to two slots per interface.
pub const DEFAULT_IFACES: u32 = 256;
pub const DEFAULT_TOTALS_SLOTS: u32 = 2 * DEFAULT_IFACES;

/// Address family as stored in [`FlowKey::family`].
pub const FAMILY_IPV4: u8 = 4;
pub const FAMILY_IPV6: u8 = 6;

/// IP protocol numbers the parser knows.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// Direction of a packet from the host's point of view.
pub const DIR_RX: u32 = 0;
pub const DIR_TX: u32 = 1;

/// Index into the totals array for an interface's slot and a direction.
#[inline(always)]
pub const fn totals_index(slot: u32, direction: u32) -> u32 {
    slot * 2 + direction
}

/// How frames begin on an interface, as stored in [`IfaceConfig::link`].
pub const LINK_UNMETERED: u32 = 0;
/// An Ethernet header (Ethernet, Wi-Fi, bridges, bonds, VLAN devices, veth, loopback).
pub const LINK_ETHERNET: u32 = 1;
/// No link-layer header: the IP header comes first (tun, WireGuard, PPP, IP tunnels).
pub const LINK_RAW_IP: u32 = 2;

/// One metered interface, at index ifindex of the interface map. The zero value (never
/// written by userspace) means "not metered": the programs then count nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceConfig {
    /// Its slot in the totals array (see [`totals_index`]).
    pub slot: u32,
    /// [`LINK_ETHERNET`] or [`LINK_RAW_IP`].
    pub link: u32,
}

/// One flow, oriented from the host's point of view: on ingress the remote end is the
/// packet's source, on egress its destination, so both directions share one key.
///
/// The kernel keys IPv6 flows with it; userspace reads IPv4 flows as it too, widened
/// from [`FlowKeyV4`] (see [`FlowKeyV4::widen`]): IPv4 addresses then sit in the first
/// 4 bytes of the 16-byte fields, the rest zero.
/// Ports are in host byte order; they are zero for ICMP, ICMPv6, other protocols and
/// non-first IP fragments (which carry no transport header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub local_port: u16,
    pub remote_port: u16,
    /// Always zero: makes the key's padding explicit.
    pub pad: u16,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

/// One IPv4 flow, oriented as [`FlowKey`] is: the key of the IPv4 flow map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKeyV4 {
    pub ifindex: u32,
    pub local_addr: [u8; 4],
    pub remote_addr: [u8; 4],
    pub local_port: u16,
    pub remote_port: u16,
    pub proto: u8,
    /// Always zero: makes the key's padding explicit.
    pub pad: [u8; 3],
}

impl FlowKeyV4 {
    /// The same flow as a dual-family key, as userspace handles every flow.
    pub fn widen(&self) -> FlowKey {
        let in_16 = |addr: [u8; 4]| {
            let mut wide = [0; 16];
            wide[..4].copy_from_slice(&addr);
            wide
        };
        FlowKey {
            ifindex: self.ifindex,
            family: FAMILY_IPV4,
            proto: self.proto,
            local_port: self.local_port,
            remote_port: self.remote_port,
            pad: 0,
            local_addr: in_16(self.local_addr),
            remote_addr: in_16(self.remote_addr),
        }
    }
}

impl FlowKey {
    /// The key of an IPv4 flow in the IPv4 flow map; `None` for an IPv6 flow.
    pub fn narrow(&self) -> Option<FlowKeyV4> {
        let first_4 = |addr: &[u8; 16]| [addr[0], addr[1], addr[2], addr[3]];
        (self.family == FAMILY_IPV4).then(|| FlowKeyV4 {
            ifindex: self.ifindex,
            local_addr: first_4(&self.local_addr),
            remote_addr: first_4(&self.remote_addr),
            local_port: self.local_port,
            remote_port: self.remote_port,
            proto: self.proto,
            pad: [0; 3],
        })
    }
}

/// Counters of one flow on one CPU. Userspace sums the CPUs.
///
/// No packet reads a clock but a flow's first: userspace knows when a flow last moved
/// from the interval in which its counters changed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// `bpf_ktime_get_coarse_ns()` (CLOCK_MONOTONIC_COARSE) of the flow's first packet,
    /// on the CPU that created the flow; zero on the other CPUs. A flow evicted and
    /// created again under the same key has a later one: that is how userspace tells a
    /// reincarnation from more traffic.
    pub first_seen_ns: u64,
    /// TCP flags seen (OR of every segment's flag byte: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 ...).
    pub tcp_flags: u8,
    pub pad: [u8; 7],
}

/// Counters of one interface in one direction on one CPU. Userspace sums the CPUs.
///
/// `packets`/`bytes` count every frame the program saw, parsed or not, so they stay
/// exact whatever happens to the flow table. The other fields say why some frames have
/// no flow: not IP, truncated or malformed headers, or no room in the flow table.
///
/// Packets and bytes are as on the wire, here and in [`FlowCounters`] and
/// [`PrefixCounters`]: a GSO/GRO skb seen by TC counts `gso_segs` packets and its length
/// plus `gso_segs - 1` more copies of its link, network and transport headers; one that
/// did not parse (non-IP, malformed) counts `gso_segs` packets and only its length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    pub non_ip_packets: u64,
    pub non_ip_bytes: u64,
    pub malformed_packets: u64,
    pub malformed_bytes: u64,
    pub insert_failed_packets: u64,
    pub insert_failed_bytes: u64,
    /// Received frames of new flows that the CPU's new-flow budget did not let in (a
    /// flood): counted here always, and per source prefix in the overflow map when it
    /// had room.
    pub over_budget_packets: u64,
    pub over_budget_bytes: u64,
}

/// One CPU's use of its new-flow budget in the current window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewFlowWindow {
    /// `bpf_ktime_get_coarse_ns()` when the window began.
    pub window_start_ns: u64,
    /// New flows received packets created in it.
    pub created: u64,
}

/// Where over-budget traffic came from: the interface, the local port it went to and
/// the remote's prefix, /24 for IPv4 and /64 for IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrefixKey {
    pub ifindex: u32,
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    pub proto: u8,
    /// Host byte order; zero where the packet has no ports.
    pub local_port: u16,
    /// The first 3 bytes of an IPv4 address (then zeros), or the first 8 of an IPv6 one.
    pub prefix: [u8; 8],
}

/// Over-budget traffic of one [`PrefixKey`] on one CPU. Userspace sums the CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// The process that made a socket, as the kernel saw it then.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOwner {
    /// Thread group id (the pid, in the root pid namespace).
    pub tgid: u32,
    pub uid: u32,
    /// The cgroup v2 id of the process (`bpf_get_current_cgroup_id`).
    pub cgroup_id: u64,
    /// `bpf_ktime_get_boot_ns()` (CLOCK_BOOTTIME) when the socket was made.
    pub made_boot_ns: u64,
    /// The process's comm, NUL-padded.
    pub comm: [u8; 16],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain #[repr(C)] integers and byte arrays with explicit padding fields:
    // every bit pattern is valid and there are no implicit padding bytes.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowKeyV4 {}
    unsafe impl aya::Pod for super::FlowCounters {}
    unsafe impl aya::Pod for super::Totals {}
    unsafe impl aya::Pod for super::IfaceConfig {}
    unsafe impl aya::Pod for super::NewFlowWindow {}
    unsafe impl aya::Pod for super::PrefixKey {}
    unsafe impl aya::Pod for super::PrefixCounters {}
    unsafe impl aya::Pod for super::SockOwner {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layout_has_no_implicit_padding() {
        assert_eq!(size_of::<FlowKey>(), 4 + 1 + 1 + 2 + 2 + 2 + 16 + 16);
        assert_eq!(size_of::<FlowKeyV4>(), 4 + 4 + 4 + 2 + 2 + 1 + 3);
        assert_eq!(size_of::<FlowCounters>(), 5 * 8 + 8);
        assert_eq!(size_of::<Totals>(), 10 * 8);
        assert_eq!(size_of::<IfaceConfig>(), 8);
        assert_eq!(size_of::<NewFlowWindow>(), 2 * 8);
        assert_eq!(size_of::<PrefixKey>(), 4 + 1 + 1 + 2 + 8);
        assert_eq!(size_of::<PrefixCounters>(), 2 * 8);
        assert_eq!(size_of::<SockOwner>(), 4 + 4 + 8 + 8 + 16);
    }

    #[test]
    fn an_ipv4_key_widens_and_narrows_back() {
        let v4 = FlowKeyV4 {
            ifindex: 3,
            local_addr: [10, 0, 0, 1],
            remote_addr: [198, 51, 100, 7],
            local_port: 443,
            remote_port: 50_000,
            proto: PROTO_TCP,
            pad: [0; 3],
        };
        let wide = v4.widen();
        assert_eq!(wide.family, FAMILY_IPV4);
        assert_eq!(wide.remote_addr[..4], [198, 51, 100, 7]);
        assert_eq!(wide.remote_addr[4..], [0; 12]);
        assert_eq!(wide.narrow(), Some(v4));
        let v6 = FlowKey {
            family: FAMILY_IPV6,
            ..wide
        };
        assert_eq!(v6.narrow(), None);
    }
}
