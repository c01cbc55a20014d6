//! flowmeter's kernel side: count every packet per flow, in both directions.
//!
//! Three entry points share one parser and one accounting function:
//! - `flowmeter_xdp_ingress`: XDP (native on physical NICs, generic when asked for);
//! - `flowmeter_tc_ingress`: TC ingress (veth and other virtual devices);
//! - `flowmeter_tc_egress`: TC egress, always.
//!
//! Every program passes every packet on, whatever happens. The per-packet path never
//! allocates, locks or sends events: it bumps per-CPU counters that userspace reads
//! once per interval. IPv4 and IPv6 flows live in separate maps, so that the frequent
//! IPv4 key stays small; only a new flow reads the clock. New flows of received packets
//! spend a per-CPU budget (`budget.rs`): beyond it, a flood's packets are counted per
//! source prefix instead of each making a flow.
//!
//! Counts are as on the wire: a GSO or GRO skb that TC sees counts as the segments it
//! stands for, each with its own copy of the headers (see [`Wire`]).
#![no_std]
#![no_main]

mod budget;
mod owners;
mod parse;

use core::mem::{MaybeUninit, offset_of};

use aya_ebpf::{
    bindings::{BPF_NOEXIST, TC_ACT_UNSPEC, xdp_action},
    helpers::generated::bpf_ktime_get_coarse_ns,
    macros::{classifier, map, xdp},
    maps::{Array, LruPerCpuHashMap, PerCpuArray},
    programs::{TcContext, XdpContext},
};
use aya_log_ebpf::debug;
use budget::Prefixed;
use owners::{SocketCookie, Tuple};
use flowmeter_common::{
    DEFAULT_FLOW_CAPACITY, DEFAULT_IFACES, DEFAULT_TOTALS_SLOTS, DIR_RX, DIR_TX, FlowCounters,
    FlowKey, FlowKeyV4, IfaceConfig, LINK_UNMETERED, Totals, totals_index,
};
use parse::{Key, Packet, Summary, Unparsed, parse};

#[map(name = "FLOWS_V4")]
static FLOWS_V4: LruPerCpuHashMap<FlowKeyV4, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(DEFAULT_FLOW_CAPACITY, 0);

#[map(name = "FLOWS")]
static FLOWS: LruPerCpuHashMap<FlowKey, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(DEFAULT_FLOW_CAPACITY, 0);

#[map(name = "IFACES")]
static IFACES: Array<IfaceConfig> = Array::with_max_entries(DEFAULT_IFACES, 0);

#[map(name = "TOTALS")]
static TOTALS: PerCpuArray<Totals> = PerCpuArray::with_max_entries(DEFAULT_TOTALS_SLOTS, 0);

/// Bytes of headers TC wants in the linear part of an skb before parsing.
const TC_HEADER_BYTES: u32 = 128;

#[xdp]
pub fn flowmeter_xdp_ingress(ctx: XdpContext) -> u32 {
    // SAFETY: ctx.ctx is the kernel's xdp_md, valid for the program's run.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    if let Some(iface) = metered(ifindex) {
        let packet = Packet::new(ctx.data(), ctx.data_end());
        let len = packet.len() as u64;
        // A native XDP frame is one packet: a NIC's frames are, and native XDP on veth
        // turns the peer's segmentation offloads off. Generic XDP also sees received
        // GRO/GSO super-packets, as one frame: xdp_md has no gso_segs (`auto` never
        // picks generic XDP).
        account(&ctx, ifindex, iface, DIR_RX, len, 1, &packet);
    }
    xdp_action::XDP_PASS
}

#[classifier]
pub fn flowmeter_tc_ingress(ctx: TcContext) -> i32 {
    account_skb(&ctx, DIR_RX);
    // TCX_NEXT: pass the packet on and let any later program in the chain run.
    TC_ACT_UNSPEC
}

#[classifier]
pub fn flowmeter_tc_egress(ctx: TcContext) -> i32 {
    account_skb(&ctx, DIR_TX);
    TC_ACT_UNSPEC
}

/// The interface's configuration, if userspace meters it.
#[inline(always)]
fn metered(ifindex: u32) -> Option<IfaceConfig> {
    let iface = *IFACES.get(ifindex)?;
    (iface.link != LINK_UNMETERED).then_some(iface)
}

/// `skb->pkt_type` of a copy the host looped back to itself (a broadcast or multicast it
/// sent, `dev_loopback_xmit`): it arrives on the receive path without its link header
/// and never crossed the link.
const PACKET_LOOPBACK: u32 = 5;

#[inline(always)]
fn account_skb(ctx: &TcContext, direction: u32) {
    let skb = ctx.skb.skb;
    // SAFETY: ctx.skb.skb is the kernel's __sk_buff, valid for the program's run.
    let (ifindex, pkt_type) = unsafe { ((*skb).ifindex, (*skb).pkt_type) };
    if direction == DIR_RX && pkt_type == PACKET_LOOPBACK {
        return;
    }
    // SAFETY: as above. gso_segs means something only when gso_size is set (skb_is_gso).
    let segments = unsafe {
        if (*skb).gso_size == 0 {
            1
        } else {
            (*skb).gso_segs
        }
    };
    let Some(iface) = metered(ifindex) else {
        return;
    };
    let len = ctx.len();
    // Headers of a non-linear skb may lie outside the directly readable part.
    let wanted = if len < TC_HEADER_BYTES {
        len
    } else {
        TC_HEADER_BYTES
    };
    if ((ctx.data_end() - ctx.data()) as u32) < wanted {
        let _ = ctx.pull_data(wanted);
    }
    let packet = Packet::new(ctx.data(), ctx.data_end());
    account(
        ctx, ifindex, iface, direction, len as u64, segments, &packet,
    );
}

/// What one frame the program saw stands for on the link.
///
/// A GSO skb (sent, before segmentation) or a GRO one (received, after merging) carries
/// `segments` packets' payload behind one copy of the headers; on the link each segment
/// has its own. So it counts `segments` packets and `len + (segments - 1) x headers`
/// bytes, as the kernel's qdisc counts a GSO skb (`qdisc_pkt_len_init`). A frame that did
/// not parse has no header length to repeat: its segments count, its bytes are `len`.
#[derive(Clone, Copy)]
pub(crate) struct Wire {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
}

impl Wire {
    /// A frame of `len` bytes standing for `segments` packets (0 or 1: a single one), each
    /// repeating the first `headers` bytes.
    #[inline(always)]
    fn of(len: u64, segments: u32, headers: u32) -> Self {
        if segments <= 1 {
            return Self {
                packets: 1,
                bytes: len,
            };
        }
        // A hostile frame's TCP data offset may point beyond its end.
        let headers = if (headers as u64) < len {
            headers as u64
        } else {
            len
        };
        Self {
            packets: segments as u64,
            bytes: len + (segments as u64 - 1) * headers,
        }
    }
}

/// Counts one frame as the packets it stands for: always in the interface's totals, and
/// in its flow when it parsed.
#[inline(always)]
fn account<C: SocketCookie>(
    ctx: &C,
    ifindex: u32,
    iface: IfaceConfig,
    direction: u32,
    len: u64,
    segments: u32,
    packet: &Packet,
) {
    let Some(totals) = TOTALS.get_ptr_mut(totals_index(iface.slot, direction)) else {
        return;
    };
    // SAFETY: a per-CPU array slot belongs to this CPU for the program's run.
    let totals = unsafe { &mut *totals };
    let (mut v4, mut v6) = (MaybeUninit::uninit(), MaybeUninit::uninit());
    let parsed = parse(packet, iface.link, ifindex, direction, &mut v4, &mut v6);
    let headers = match &parsed {
        Ok((_, summary)) => summary.headers,
        Err(_) => 0,
    };
    let wire = Wire::of(len, segments, headers);
    totals.packets += wire.packets;
    totals.bytes += wire.bytes;
    match parsed {
        Err(Unparsed::NonIp) => {
            totals.non_ip_packets += wire.packets;
            totals.non_ip_bytes += wire.bytes;
        }
        Err(Unparsed::Malformed) => {
            totals.malformed_packets += wire.packets;
            totals.malformed_bytes += wire.bytes;
        }
        Ok((key, summary)) => {
            let counted = match key {
                Key::V4(key) => count_flow(ctx, &FLOWS_V4, key, ifindex, summary, direction, wire),
                Key::V6(key) => count_flow(ctx, &FLOWS, key, ifindex, summary, direction, wire),
            };
            match counted {
                Counted::InFlow => {}
                Counted::OverBudget => {
                    totals.over_budget_packets += wire.packets;
                    totals.over_budget_bytes += wire.bytes;
                }
                Counted::NoRoom => {
                    totals.insert_failed_packets += wire.packets;
                    totals.insert_failed_bytes += wire.bytes;
                }
            }
        }
    }
}

/// Where [`count_flow`] counted a packet.
enum Counted {
    InFlow,
    /// A received packet of a new flow beyond this CPU's new-flow budget: in its prefix's
    /// counters (see `budget.rs`), in no flow.
    OverBudget,
    /// No room in the flow table.
    NoRoom,
}

/// Adds the packet to its flow in `flows`, creating the flow if needed and allowed.
#[inline(always)]
fn count_flow<C: SocketCookie, K: Prefixed + Tuple>(
    ctx: &C,
    flows: &LruPerCpuHashMap<K, FlowCounters>,
    key: &K,
    ifindex: u32,
    summary: Summary,
    direction: u32,
    wire: Wire,
) -> Counted {
    let tcp_flags = summary.tcp_flags;
    if let Some(counters) = flows.get_ptr_mut(key) {
        // SAFETY: a per-CPU hash value belongs to this CPU for the program's run.
        let counters = unsafe { &mut *counters };
        // The flow's first packet sent on this CPU: one compare for every later one.
        if direction == DIR_TX && counters.tx_packets == 0 {
            owners::join(ctx, key);
        }
        bump(counters, tcp_flags, direction, wire);
        return Counted::InFlow;
    }
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // Only received packets spend the budget: the host's own flows, and its replies to
    // inbound ones, always get their flow.
    if direction == DIR_RX && !budget::may_create(now) {
        budget::count_over_budget(key, wire);
        return Counted::OverBudget;
    }
    let mut fresh = MaybeUninit::uninit();
    let fresh = first_packet(&mut fresh, tcp_flags, direction, wire, now);
    if flows.insert(key, fresh, BPF_NOEXIST as u64).is_ok() {
        if direction == DIR_TX {
            owners::join(ctx, key);
        }
        // Off unless userspace runs with -v (AYA_LOG_LEVEL); once per flow, never per packet.
        debug!(
            ctx,
            "new flow: ifindex {} proto {} local port {} remote port {}",
            ifindex,
            summary.proto,
            summary.local_port,
            summary.remote_port
        );
        return Counted::InFlow;
    }
    // Another CPU created the flow in between: add to this CPU's slot of it (whose
    // first_seen_ns stays zero: the creating CPU's stamp is the flow's).
    match flows.get_ptr_mut(key) {
        Some(counters) => {
            // SAFETY: as above.
            let counters = unsafe { &mut *counters };
            if direction == DIR_TX && counters.tx_packets == 0 {
                owners::join(ctx, key);
            }
            bump(counters, tcp_flags, direction, wire);
            Counted::InFlow
        }
        None => Counted::NoRoom,
    }
}

/// The counters of a new flow after its first frame, written in place into `counters`
/// (as the key is: see `parse`).
#[inline(always)]
fn first_packet(
    counters: &mut MaybeUninit<FlowCounters>,
    tcp_flags: u8,
    direction: u32,
    wire: Wire,
    now: u64,
) -> &FlowCounters {
    // The flags byte and the 7 bytes of padding after it are written as one aligned word.
    const FLAGS: usize = offset_of!(FlowCounters, tcp_flags);
    const _: () = assert!(FLAGS.is_multiple_of(8) && offset_of!(FlowCounters, pad) == FLAGS + 1);
    let c = counters.as_mut_ptr();
    // SAFETY: `c` points to a FlowCounters-sized, FlowCounters-aligned place; every one of
    // its fields is written below before it is handed out as initialised.
    unsafe {
        let rx = (&raw mut (*c).rx_packets, &raw mut (*c).rx_bytes);
        let tx = (&raw mut (*c).tx_packets, &raw mut (*c).tx_bytes);
        let (this, other) = if direction == DIR_TX {
            (tx, rx)
        } else {
            (rx, tx)
        };
        this.0.write(wire.packets);
        this.1.write(wire.bytes);
        write_zero(other.0);
        write_zero(other.1);
        (&raw mut (*c).first_seen_ns).write(now);
        c.byte_add(FLAGS)
            .cast::<u64>()
            .write(u64::from_ne_bytes([tcp_flags, 0, 0, 0, 0, 0, 0, 0]));
        counters.assume_init_ref()
    }
}

/// Writes a zero (`T::default()` of an integer) as a store of its own.
///
/// LLVM merges runs of zero stores (4 stores or more, or 16 bytes or more) into one
/// `memset`, and bpf-linker, which expands `memcpy` inline, leaves every `memset` a call
/// to a byte-by-byte loop: on the per-packet path that loop cost more than parsing the
/// headers. A volatile store is never merged.
///
/// # Safety
/// `place` is valid for writes and aligned.
#[inline(always)]
pub(crate) unsafe fn write_zero<T: Default>(place: *mut T) {
    // SAFETY: see the function's contract.
    unsafe { place.write_volatile(T::default()) }
}

#[inline(always)]
fn bump(counters: &mut FlowCounters, tcp_flags: u8, direction: u32, wire: Wire) {
    if direction == DIR_TX {
        counters.tx_packets += wire.packets;
        counters.tx_bytes += wire.bytes;
    } else {
        counters.rx_packets += wire.packets;
        counters.rx_bytes += wire.bytes;
    }
    counters.tcp_flags |= tcp_flags;
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
