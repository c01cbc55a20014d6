//! The kernel's over-budget traffic per source prefix (the `OVERFLOW` map), read each
//! interval and turned into per-interval deltas for [`Snapshot::overflow`].
//!
//! The map holds cumulative per-CPU counters, like the flow maps, and is an LRU: a prefix
//! may be evicted and come back with smaller counters. As for flows, counters that shrank
//! are a new entry, all of them new traffic, never a negative delta. What an evicted
//! entry counted after its last read is in no prefix, but always in the interface's
//! totals (`over_budget_*`), which the kernel bumps first.
//!
//! [`Snapshot::overflow`]: super::Snapshot::overflow

use std::{
    io,
    mem::size_of,
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsFd,
    sync::Arc,
};

use aya::maps::{IterableMap, MapData, PerCpuHashMap};
use flowmeter_common::{FAMILY_IPV4, PrefixCounters, PrefixKey};
use rustc_hash::FxHashMap;

use super::{PrefixDelta, Protocol, SourcePrefix, batch::BatchLookup, maps::pod_from_bytes};

/// Every prefix's counters, summed over CPUs.
pub type PrefixTable = FxHashMap<PrefixKey, PrefixCounters>;

/// One CPU's slot in a per-CPU value: the counters, rounded up to 8 bytes.
const COUNTERS_SLOT: usize = size_of::<PrefixCounters>().div_ceil(8) * 8;

/// Buffers for reading the overflow map in batches: the whole map in one call or two.
pub(super) fn batch_lookup(cpus: usize) -> BatchLookup {
    BatchLookup::new(size_of::<PrefixKey>(), COUNTERS_SLOT * cpus, 1024)
}

/// The whole map through `BPF_MAP_LOOKUP_BATCH`.
pub(super) fn read_batches(
    map: &PerCpuHashMap<MapData, PrefixKey, PrefixCounters>,
    batch: &mut BatchLookup,
    cpus: usize,
) -> io::Result<PrefixTable> {
    let mut table = PrefixTable::default();
    batch.for_each(map.map().fd().as_fd(), |key, value| {
        let per_cpu = (0..cpus).map(|cpu| {
            pod_from_bytes::<PrefixCounters>(
                &value[cpu * COUNTERS_SLOT..][..size_of::<PrefixCounters>()],
            )
        });
        table.insert(pod_from_bytes(key), sum(per_cpu));
    })?;
    Ok(table)
}

/// The whole map, key by key (kernels without batch lookups).
pub(super) fn read_key_by_key(
    map: &PerCpuHashMap<MapData, PrefixKey, PrefixCounters>,
) -> io::Result<PrefixTable> {
    let mut table = PrefixTable::default();
    // An entry evicted during the walk restarts it: bound it, later reads win.
    for entry in map
        .iter()
        .take(2 * flowmeter_common::OVERFLOW_CAPACITY as usize)
    {
        match entry {
            Ok((key, per_cpu)) => {
                table.insert(key, sum(per_cpu.iter().copied()));
            }
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(error) => return Err(io::Error::other(error)),
        }
    }
    Ok(table)
}

fn sum(per_cpu: impl Iterator<Item = PrefixCounters>) -> PrefixCounters {
    per_cpu.fold(PrefixCounters::default(), |sum, cpu| PrefixCounters {
        packets: sum.packets + cpu.packets,
        bytes: sum.bytes + cpu.bytes,
    })
}

/// Remembers the previous read, to hand out what each prefix moved since.
#[derive(Default)]
pub struct OverflowDeltas {
    previous: PrefixTable,
}

impl OverflowDeltas {
    /// What moved between the previous read and `current`, sorted by interface, prefix,
    /// protocol and port; `iface_name` names an ifindex.
    pub fn advance(
        &mut self,
        current: PrefixTable,
        iface_name: impl Fn(u32) -> Arc<str>,
    ) -> Vec<PrefixDelta> {
        let mut deltas: Vec<PrefixDelta> = current
            .iter()
            .filter_map(|(key, now)| {
                let (packets, bytes) = match self.previous.get(key) {
                    // Shrunk: evicted and counted anew since.
                    Some(before) if now.packets < before.packets || now.bytes < before.bytes => {
                        (now.packets, now.bytes)
                    }
                    Some(before) => (now.packets - before.packets, now.bytes - before.bytes),
                    None => (now.packets, now.bytes),
                };
                (packets != 0).then(|| PrefixDelta {
                    iface: iface_name(key.ifindex),
                    proto: Protocol(key.proto),
                    prefix: source_prefix(key),
                    local_port: key.local_port,
                    packets,
                    bytes,
                })
            })
            .collect();
        deltas.sort_by(|a, b| {
            (&a.iface, a.prefix, a.proto, a.local_port).cmp(&(
                &b.iface,
                b.prefix,
                b.proto,
                b.local_port,
            ))
        });
        self.previous = current;
        deltas
    }
}

/// The prefix a key names: a /24 or a /64.
fn source_prefix(key: &PrefixKey) -> SourcePrefix {
    let p = key.prefix;
    if key.family == FAMILY_IPV4 {
        SourcePrefix::V4(Ipv4Addr::new(p[0], p[1], p[2], 0))
    } else {
        let mut octets = [0; 16];
        octets[..8].copy_from_slice(&p);
        SourcePrefix::V6(Ipv6Addr::from(octets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmeter_common::{FAMILY_IPV6, PROTO_UDP};

    fn key(prefix: [u8; 8], family: u8) -> PrefixKey {
        PrefixKey {
            ifindex: 3,
            family,
            proto: PROTO_UDP,
            local_port: 53,
            prefix,
        }
    }

    const V4: [u8; 8] = [198, 51, 100, 0, 0, 0, 0, 0];

    fn table(entries: &[(PrefixKey, u64)]) -> PrefixTable {
        entries
            .iter()
            .map(|&(key, packets)| {
                (
                    key,
                    PrefixCounters {
                        packets,
                        bytes: packets * 60,
                    },
                )
            })
            .collect()
    }

    fn advance(
        deltas: &mut OverflowDeltas,
        entries: &[(PrefixKey, u64)],
    ) -> Vec<(String, u64, u64)> {
        deltas
            .advance(table(entries), |ifindex| Arc::from(format!("if{ifindex}")))
            .into_iter()
            .map(|d| {
                (
                    format!("{} {} {}", d.iface, d.prefix, d.local_port),
                    d.packets,
                    d.bytes,
                )
            })
            .collect()
    }

    #[test]
    fn first_read_is_all_new_then_only_what_moved() {
        let mut deltas = OverflowDeltas::default();
        let v4 = key(V4, FAMILY_IPV4);
        assert_eq!(
            advance(&mut deltas, &[(v4, 10)]),
            [("if3 198.51.100.0/24 53".to_string(), 10, 600)]
        );
        assert_eq!(advance(&mut deltas, &[(v4, 10)]), []);
        assert_eq!(
            advance(&mut deltas, &[(v4, 14)]),
            [("if3 198.51.100.0/24 53".to_string(), 4, 240)]
        );
    }

    #[test]
    fn an_evicted_prefix_that_reappears_counts_from_zero_never_negative() {
        let mut deltas = OverflowDeltas::default();
        let v4 = key(V4, FAMILY_IPV4);
        advance(&mut deltas, &[(v4, 100)]);
        // Evicted: gone from the map, nothing to report.
        assert_eq!(advance(&mut deltas, &[]), []);
        // Back, counted from zero.
        assert_eq!(
            advance(&mut deltas, &[(v4, 3)]),
            [("if3 198.51.100.0/24 53".to_string(), 3, 180)]
        );
        // Evicted and back between two reads, with fewer packets than before: all new.
        assert_eq!(
            advance(&mut deltas, &[(v4, 2)]),
            [("if3 198.51.100.0/24 53".to_string(), 2, 120)]
        );
    }

    #[test]
    fn ipv6_prefixes_are_slash_64_and_deltas_are_sorted() {
        let mut deltas = OverflowDeltas::default();
        let v6 = key([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2], FAMILY_IPV6);
        let v4 = key(V4, FAMILY_IPV4);
        assert_eq!(
            advance(&mut deltas, &[(v6, 1), (v4, 2)]),
            [
                ("if3 198.51.100.0/24 53".to_string(), 2, 120),
                ("if3 2001:db8:1:2::/64 53".to_string(), 1, 60),
            ]
        );
    }
}
