//! Reading the kernel's per-CPU maps, behind a trait that tests replace with a fake.
//!
//! The kernel keeps IPv4 and IPv6 flows in two maps (a small key for IPv4); here both
//! become one table of dual-family [`FlowKey`]s, which the reader diffs.

use std::{borrow::Borrow, collections::HashMap, mem::size_of, os::fd::AsFd};

use rustc_hash::FxHashMap;

use aya::maps::{IterableMap, MapData, MapError, PerCpuArray, PerCpuHashMap};
use flowmeter_common::{
    FlowCounters, FlowKey, FlowKeyV4, PrefixCounters, PrefixKey, Totals, totals_index,
};

use super::{
    Error,
    batch::BatchLookup,
    overflow::{self, PrefixTable},
};

/// Every flow's counters, summed over CPUs. Fx hashing: the reader probes it for every
/// flow of every interval, and the keys come from the kernel, not from an attacker who
/// could choose them to collide (they are the host's own flows).
pub type FlowTable = FxHashMap<FlowKey, FlowCounters>;

/// Where the reader gets cumulative counters from: the kernel maps, or a fake.
pub trait FlowSource {
    /// Hands `visit` every flow in the table with its counters summed over CPUs, as
    /// they are read: no table is built in between. A key may come twice (a walk the
    /// kernel restarted); the later counters are the newer.
    fn flows(&mut self, visit: &mut dyn FnMut(FlowKey, FlowCounters)) -> Result<(), Error>;
    /// An interface's totals in one direction (`DIR_RX`/`DIR_TX`), summed over CPUs.
    fn totals(&mut self, ifindex: u32, direction: u32) -> Result<Totals, Error>;
    /// Forgets a flow, so the table keeps room for new ones.
    fn remove(&mut self, key: &FlowKey) -> Result<(), Error>;
    /// Now, on the clock the programs stamp flows with (CLOCK_MONOTONIC_COARSE).
    fn now_ns(&self) -> u64;
    /// Received traffic over the new-flow budget, per source prefix, summed over CPUs.
    /// Sources without a budget have none.
    fn overflow(&mut self) -> Result<PrefixTable, Error> {
        Ok(PrefixTable::default())
    }
}

/// The maps of the loaded object that hold counters.
pub struct KernelMaps {
    pub(super) flows_v4: PerCpuHashMap<MapData, FlowKeyV4, FlowCounters>,
    pub(super) flows_v6: PerCpuHashMap<MapData, FlowKey, FlowCounters>,
    pub(super) totals: PerCpuArray<MapData, Totals>,
    /// Over-budget traffic per source prefix.
    pub(super) overflow: PerCpuHashMap<MapData, PrefixKey, PrefixCounters>,
    /// ifindex → the interface's slot in `totals`.
    pub(super) slots: HashMap<u32, u32>,
    /// Flows each of the two maps holds.
    pub(super) flow_capacity: u32,
    /// Batch readers of the two flow maps; `None` once the kernel has refused batch
    /// lookups (before 5.6), when the maps are walked key by key instead.
    pub(super) batches: Option<FlowBatches>,
}

/// Reusable buffers for reading the two flow maps in batches.
pub(super) struct FlowBatches {
    v4: BatchLookup,
    v6: BatchLookup,
    overflow: BatchLookup,
    /// Possible CPUs: a per-CPU value holds one slot each.
    cpus: usize,
}

/// One CPU's slot in a per-CPU value: the counters, rounded up to 8 bytes.
const COUNTERS_SLOT: usize = size_of::<FlowCounters>().div_ceil(8) * 8;
/// How much value buffer one batch call may fill (plus its keys).
const BATCH_BYTES: usize = 1 << 20;

impl FlowBatches {
    pub(super) fn new(cpus: usize) -> Self {
        let value = COUNTERS_SLOT * cpus;
        let chunk = (BATCH_BYTES / value).max(64);
        Self {
            v4: BatchLookup::new(size_of::<FlowKeyV4>(), value, chunk),
            v6: BatchLookup::new(size_of::<FlowKey>(), value, chunk),
            overflow: overflow::batch_lookup(cpus),
            cpus,
        }
    }
}

fn map_error(what: &str, error: MapError) -> Error {
    Error::Kernel(format!("reading {what}"), error.to_string())
}

impl FlowSource for KernelMaps {
    fn flows(&mut self, visit: &mut dyn FnMut(FlowKey, FlowCounters)) -> Result<(), Error> {
        if let Some(batches) = &mut self.batches {
            match read_batches(&self.flows_v4, &self.flows_v6, batches, visit) {
                Ok(()) => return Ok(()),
                // The kernel refuses the first batch call: nothing was visited yet (and
                // a flow visited twice reads as no new traffic).
                Err(error) if batch_unsupported(&error) => {
                    log::debug!("no batch lookups ({error}): reading the flow maps key by key");
                    self.batches = None;
                }
                Err(error) => {
                    return Err(Error::Kernel(
                        "reading the flow table".into(),
                        error.to_string(),
                    ));
                }
            }
        }
        read_flows(&self.flows_v4, self.flow_capacity, visit, |key| key.widen())?;
        read_flows(&self.flows_v6, self.flow_capacity, visit, |key| *key)
    }

    fn totals(&mut self, ifindex: u32, direction: u32) -> Result<Totals, Error> {
        let slot = self.slots.get(&ifindex).ok_or_else(|| {
            Error::Kernel(
                "reading the totals".into(),
                format!("ifindex {ifindex} is not metered"),
            )
        })?;
        let per_cpu = self
            .totals
            .get(&totals_index(*slot, direction), 0)
            .map_err(|e| map_error("the totals", e))?;
        Ok(sum_totals(per_cpu.iter()))
    }

    fn remove(&mut self, key: &FlowKey) -> Result<(), Error> {
        let removed = match key.narrow() {
            Some(v4) => self.flows_v4.remove(&v4),
            None => self.flows_v6.remove(key),
        };
        match removed {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(error) => Err(map_error("the flow table", error)),
        }
    }

    fn overflow(&mut self) -> Result<PrefixTable, Error> {
        let read = match &mut self.batches {
            Some(batches) => {
                match overflow::read_batches(&self.overflow, &mut batches.overflow, batches.cpus) {
                    Err(error) if batch_unsupported(&error) => {
                        overflow::read_key_by_key(&self.overflow)
                    }
                    read => read,
                }
            }
            None => overflow::read_key_by_key(&self.overflow),
        };
        read.map_err(|e| Error::Kernel("reading the over-budget prefixes".into(), e.to_string()))
    }

    fn now_ns(&self) -> u64 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write into.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
        now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
    }
}

/// Visits every flow of both kernel maps with `BPF_MAP_LOOKUP_BATCH`: a few syscalls
/// per thousand flows, where the key-by-key walk makes two per flow.
fn read_batches(
    v4: &PerCpuHashMap<MapData, FlowKeyV4, FlowCounters>,
    v6: &PerCpuHashMap<MapData, FlowKey, FlowCounters>,
    batches: &mut FlowBatches,
    visit: &mut dyn FnMut(FlowKey, FlowCounters),
) -> std::io::Result<()> {
    let cpus = batches.cpus;
    batches.v4.for_each(v4.map().fd().as_fd(), |key, value| {
        let key: FlowKeyV4 = pod_from_bytes(key);
        visit(key.widen(), sum_cpu_slots(value, cpus));
    })?;
    batches.v6.for_each(v6.map().fd().as_fd(), |key, value| {
        visit(pod_from_bytes(key), sum_cpu_slots(value, cpus));
    })
}

/// Whether a batch lookup failed because this kernel has none (it came in 5.6).
fn batch_unsupported(error: &std::io::Error) -> bool {
    /// The kernel's ENOTSUPP, which it returns for an operation a map type lacks.
    const ENOTSUPP: i32 = 524;
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
    )
}

/// A per-CPU value as the kernel copies it, one [`COUNTERS_SLOT`] per CPU, summed.
fn sum_cpu_slots(value: &[u8], cpus: usize) -> FlowCounters {
    sum_flow_counters((0..cpus).map(|cpu| {
        pod_from_bytes::<FlowCounters>(&value[cpu * COUNTERS_SLOT..][..size_of::<FlowCounters>()])
    }))
}

/// A map key or value from the bytes the kernel copied.
pub(super) fn pod_from_bytes<T: aya::Pod>(bytes: &[u8]) -> T {
    assert_eq!(bytes.len(), size_of::<T>(), "a map element's size");
    // SAFETY: `T: Pod` is plain data (any bit pattern is a valid value), and `bytes`
    // holds exactly `size_of::<T>()` of them; they need not be aligned.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

/// Visits every flow of one kernel map, its key made dual-family by `widen`.
fn read_flows<K: aya::Pod>(
    map: &PerCpuHashMap<MapData, K, FlowCounters>,
    capacity: u32,
    visit: &mut dyn FnMut(FlowKey, FlowCounters),
    widen: impl Fn(&K) -> FlowKey,
) -> Result<(), Error> {
    // aya 0.14 has no batch lookups. A key evicted while we walk makes the kernel
    // restart the walk, so bound it; a key read again carries newer counters.
    let bound = 2 * capacity as usize;
    for entry in map.iter().take(bound) {
        match entry {
            Ok((key, per_cpu)) => {
                visit(widen(&key), sum_flow_counters(per_cpu.iter()));
            }
            Err(MapError::KeyNotFound) => continue,
            Err(error) => return Err(map_error("the flow table", error)),
        }
    }
    Ok(())
}

/// One flow's counters over all CPUs: sums, and the first packet's time as the CPU that
/// created the flow stamped it (the others hold zero there).
pub fn sum_flow_counters<C: Borrow<FlowCounters>>(
    per_cpu: impl IntoIterator<Item = C>,
) -> FlowCounters {
    per_cpu
        .into_iter()
        .fold(FlowCounters::default(), |mut sum, cpu| {
            let cpu = cpu.borrow();
            let stamped = cpu.first_seen_ns != 0;
            if stamped && (sum.first_seen_ns == 0 || cpu.first_seen_ns < sum.first_seen_ns) {
                sum.first_seen_ns = cpu.first_seen_ns;
            }
            sum.rx_packets += cpu.rx_packets;
            sum.rx_bytes += cpu.rx_bytes;
            sum.tx_packets += cpu.tx_packets;
            sum.tx_bytes += cpu.tx_bytes;
            sum.tcp_flags |= cpu.tcp_flags;
            sum
        })
}

/// One interface direction's totals over all CPUs.
pub fn sum_totals<'a>(per_cpu: impl IntoIterator<Item = &'a Totals>) -> Totals {
    per_cpu
        .into_iter()
        .fold(Totals::default(), |sum, cpu| Totals {
            packets: sum.packets + cpu.packets,
            bytes: sum.bytes + cpu.bytes,
            non_ip_packets: sum.non_ip_packets + cpu.non_ip_packets,
            non_ip_bytes: sum.non_ip_bytes + cpu.non_ip_bytes,
            malformed_packets: sum.malformed_packets + cpu.malformed_packets,
            malformed_bytes: sum.malformed_bytes + cpu.malformed_bytes,
            insert_failed_packets: sum.insert_failed_packets + cpu.insert_failed_packets,
            insert_failed_bytes: sum.insert_failed_bytes + cpu.insert_failed_bytes,
            over_budget_packets: sum.over_budget_packets + cpu.over_budget_packets,
            over_budget_bytes: sum.over_budget_bytes + cpu.over_budget_bytes,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_counters_sum_over_cpus() {
        let cpus = [
            // A CPU that joined an existing flow: it never stamps the first packet.
            FlowCounters {
                rx_packets: 2,
                rx_bytes: 200,
                tcp_flags: 0x02,
                ..Default::default()
            },
            // A CPU that never saw the flow keeps zeros.
            FlowCounters::default(),
            // The CPU that created it.
            FlowCounters {
                tx_packets: 1,
                tx_bytes: 60,
                first_seen_ns: 40,
                tcp_flags: 0x10,
                ..Default::default()
            },
        ];
        let sum = sum_flow_counters(cpus.iter());
        assert_eq!((sum.rx_packets, sum.rx_bytes), (2, 200));
        assert_eq!((sum.tx_packets, sum.tx_bytes), (1, 60));
        assert_eq!(sum.first_seen_ns, 40);
        assert_eq!(sum.tcp_flags, 0x12);
    }
}
