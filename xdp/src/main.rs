//! flowmeter's kernel side: count every packet per flow, in both directions.
//!
//! Three entry points share one parser and one accounting function:
//! - `flowmeter_xdp_ingress`: XDP (native on physical NICs, generic when asked for);
//! - `flowmeter_tc_ingress`: TC ingress (veth and other virtual devices);
//! - `flowmeter_tc_egress`: TC egress, always.
//!
//! Every program passes every packet on, whatever happens. The per-packet path never
//! allocates, locks or sends events: it bumps per-CPU counters that userspace reads
//! once per interval.
#![no_std]
#![no_main]

mod parse;

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_NOEXIST, TC_ACT_UNSPEC, xdp_action},
    helpers::generated::bpf_ktime_get_coarse_ns,
    macros::{classifier, map, xdp},
    maps::{Array, LruPerCpuHashMap, PerCpuArray},
    programs::{TcContext, XdpContext},
};
use aya_log_ebpf::debug;
use flowmeter_common::{
    DEFAULT_FLOW_CAPACITY, DEFAULT_IFACES, DEFAULT_TOTALS_SLOTS, DIR_RX, DIR_TX, FlowCounters,
    FlowKey, IfaceConfig, LINK_UNMETERED, Totals, totals_index,
};
use parse::{Packet, Parsed, Unparsed, parse};

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
        let parsed = parse(&packet, iface.link, DIR_RX);
        account(&ctx, ifindex, iface, DIR_RX, packet.len() as u64, parsed);
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

#[inline(always)]
fn account_skb(ctx: &TcContext, direction: u32) {
    // SAFETY: ctx.skb.skb is the kernel's __sk_buff, valid for the program's run.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
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
    let parsed = parse(&packet, iface.link, direction);
    account(ctx, ifindex, iface, direction, len as u64, parsed);
}

/// Counts one packet: always in the interface's totals, and in its flow when it parsed.
#[inline(always)]
fn account<C: EbpfContext>(
    ctx: &C,
    ifindex: u32,
    iface: IfaceConfig,
    direction: u32,
    len: u64,
    parsed: Result<Parsed, Unparsed>,
) {
    let Some(totals) = TOTALS.get_ptr_mut(totals_index(iface.slot, direction)) else {
        return;
    };
    // SAFETY: a per-CPU array slot belongs to this CPU for the program's run.
    let totals = unsafe { &mut *totals };
    totals.packets += 1;
    totals.bytes += len;
    match parsed {
        Err(Unparsed::NonIp) => {
            totals.non_ip_packets += 1;
            totals.non_ip_bytes += len;
        }
        Err(Unparsed::Malformed) => {
            totals.malformed_packets += 1;
            totals.malformed_bytes += len;
        }
        Ok(mut parsed) => {
            parsed.key.ifindex = ifindex;
            if !count_flow(ctx, &parsed, direction, len) {
                totals.insert_failed_packets += 1;
                totals.insert_failed_bytes += len;
            }
        }
    }
}

/// Adds the packet to its flow, creating the flow if needed. False if there was no room.
#[inline(always)]
fn count_flow<C: EbpfContext>(ctx: &C, parsed: &Parsed, direction: u32, len: u64) -> bool {
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(counters) = FLOWS.get_ptr_mut(&parsed.key) {
        // SAFETY: a per-CPU hash value belongs to this CPU for the program's run.
        bump(unsafe { &mut *counters }, parsed, direction, len, now);
        return true;
    }
    let mut fresh = FlowCounters::default();
    bump(&mut fresh, parsed, direction, len, now);
    if FLOWS
        .insert(&parsed.key, &fresh, BPF_NOEXIST as u64)
        .is_ok()
    {
        // Off unless userspace runs with -v (AYA_LOG_LEVEL); once per flow, never per packet.
        let key = &parsed.key;
        debug!(
            ctx,
            "new flow: ifindex {} proto {} local port {} remote port {}",
            key.ifindex,
            key.proto,
            key.local_port,
            key.remote_port
        );
        return true;
    }
    // Another CPU created the flow in between: add to this CPU's slot of it.
    match FLOWS.get_ptr_mut(&parsed.key) {
        Some(counters) => {
            // SAFETY: as above.
            bump(unsafe { &mut *counters }, parsed, direction, len, now);
            true
        }
        None => false,
    }
}

#[inline(always)]
fn bump(counters: &mut FlowCounters, parsed: &Parsed, direction: u32, len: u64, now: u64) {
    if direction == DIR_TX {
        counters.tx_packets += 1;
        counters.tx_bytes += len;
    } else {
        counters.rx_packets += 1;
        counters.rx_bytes += len;
    }
    // Each CPU stamps its own first packet; userspace takes the earliest.
    if counters.first_seen_ns == 0 {
        counters.first_seen_ns = now;
    }
    counters.last_seen_ns = now;
    counters.tcp_flags |= parsed.tcp_flags;
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
