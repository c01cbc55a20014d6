//! The new-flow budget: how many flows received packets may create per second on each
//! CPU, and where the packets beyond it are counted instead.
//!
//! A spoofed-source flood makes every packet a new flow: without a budget each one pays
//! an insert and evicts one of the host's real flows. Within the budget a received
//! packet creates its flow as usual; beyond it the packet is counted in its interface's
//! totals (`over_budget_*`, by the caller) and, here, per source prefix in `OVERFLOW`,
//! which userspace reads each interval. Flows the host sends on are always created.

use core::mem::MaybeUninit;

use aya_ebpf::{
    Global,
    bindings::BPF_NOEXIST,
    macros::map,
    maps::{LruPerCpuHashMap, PerCpuArray},
};
use flowmeter_common::{
    FAMILY_IPV4, FlowKey, FlowKeyV4, NEW_FLOW_WINDOW_NS, NewFlowWindow, OVERFLOW_CAPACITY,
    PrefixCounters, PrefixKey,
};

use crate::{Wire, write_zero};

/// New flows per window per CPU that received packets may create; 0 = unlimited.
/// Userspace sets it at load time (`--new-flow-budget`); unset, nothing is held back.
#[unsafe(no_mangle)]
static NEW_FLOW_BUDGET: Global<u64> = Global::new(0);

#[map(name = "NEW_FLOW_WINDOW")]
static NEW_FLOW_WINDOW: PerCpuArray<NewFlowWindow> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "OVERFLOW")]
static OVERFLOW: LruPerCpuHashMap<PrefixKey, PrefixCounters> =
    LruPerCpuHashMap::with_max_entries(OVERFLOW_CAPACITY, 0);

/// Whether a received packet may create a flow at `now` (coarse ns); spends one unit of
/// this CPU's budget if so.
#[inline(always)]
pub fn may_create(now: u64) -> bool {
    let budget = NEW_FLOW_BUDGET.load();
    if budget == 0 {
        return true;
    }
    let Some(window) = NEW_FLOW_WINDOW.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: a per-CPU array slot belongs to this CPU for the program's run.
    let window = unsafe { &mut *window };
    if now.wrapping_sub(window.window_start_ns) >= NEW_FLOW_WINDOW_NS {
        window.window_start_ns = now;
        window.created = 0;
    }
    if window.created >= budget {
        return false;
    }
    window.created += 1;
    true
}

/// Adds an over-budget packet to its prefix's counters. When the map has no room the
/// packet stays in the interface's totals only.
#[inline(always)]
pub fn count_over_budget<K: Prefixed>(key: &K, wire: Wire) {
    let mut place = MaybeUninit::uninit();
    let prefix = key.prefix_key(&mut place);
    if let Some(counters) = OVERFLOW.get_ptr_mut(prefix) {
        // SAFETY: a per-CPU hash value belongs to this CPU for the program's run.
        bump(unsafe { &mut *counters }, wire);
        return;
    }
    let first = PrefixCounters {
        packets: wire.packets,
        bytes: wire.bytes,
    };
    if OVERFLOW.insert(prefix, &first, BPF_NOEXIST as u64).is_err() {
        // Another CPU created the entry in between: add to this CPU's slot of it.
        if let Some(counters) = OVERFLOW.get_ptr_mut(prefix) {
            // SAFETY: as above.
            bump(unsafe { &mut *counters }, wire);
        }
    }
}

#[inline(always)]
fn bump(counters: &mut PrefixCounters, wire: Wire) {
    counters.packets += wire.packets;
    counters.bytes += wire.bytes;
}

/// A flow key that names the prefix its remote end belongs to.
pub trait Prefixed {
    /// Writes the [`PrefixKey`] of the flow into `place`, field by field (no `memset`:
    /// see `write_zero`), and returns it.
    fn prefix_key<'k>(&self, place: &'k mut MaybeUninit<PrefixKey>) -> &'k PrefixKey;
}

impl Prefixed for FlowKeyV4 {
    #[inline(always)]
    fn prefix_key<'k>(&self, place: &'k mut MaybeUninit<PrefixKey>) -> &'k PrefixKey {
        let [a, b, c, _] = self.remote_addr;
        let p = place.as_mut_ptr();
        // SAFETY: `p` points to a PrefixKey-sized, aligned place; every field is written
        // before it is handed out as initialised. The prefix is written as two aligned
        // words: the verifier refuses unaligned stack accesses.
        unsafe {
            (&raw mut (*p).ifindex).write(self.ifindex);
            (&raw mut (*p).family).write(FAMILY_IPV4);
            (&raw mut (*p).proto).write(self.proto);
            (&raw mut (*p).local_port).write(self.local_port);
            let words = (&raw mut (*p).prefix).cast::<u32>();
            words.write(u32::from_ne_bytes([a, b, c, 0]));
            write_zero(words.add(1));
            place.assume_init_ref()
        }
    }
}

impl Prefixed for FlowKey {
    #[inline(always)]
    fn prefix_key<'k>(&self, place: &'k mut MaybeUninit<PrefixKey>) -> &'k PrefixKey {
        let r = &self.remote_addr;
        let p = place.as_mut_ptr();
        // SAFETY: as for FlowKeyV4.
        unsafe {
            (&raw mut (*p).ifindex).write(self.ifindex);
            (&raw mut (*p).family).write(self.family);
            (&raw mut (*p).proto).write(self.proto);
            (&raw mut (*p).local_port).write(self.local_port);
            let words = (&raw mut (*p).prefix).cast::<u32>();
            words.write(u32::from_ne_bytes([r[0], r[1], r[2], r[3]]));
            words
                .add(1)
                .write(u32::from_ne_bytes([r[4], r[5], r[6], r[7]]));
            place.assume_init_ref()
        }
    }
}
