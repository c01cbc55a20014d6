//! Reading the whole kernel flow table, as the reader does every interval: aya 0.14's
//! iterator (two syscalls per key) next to `datapath::batch` (`BPF_MAP_LOOKUP_BATCH`, a
//! few syscalls per thousand keys), over an LRU per-CPU hash map shaped like the flow
//! table (its key and counter sizes), holding 10k, 100k and 1M flows.
//!
//! Run as root: `cargo bench --bench flow_table_read`.

#[path = "../tests/common/bpf.rs"]
mod bpf;

use std::{
    mem::size_of,
    os::fd::{AsFd, OwnedFd},
    time::Duration,
};

use aya::maps::{Map, MapData, PerCpuHashMap};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flowmeter::datapath::batch::BatchLookup;
use flowmeter_common::{FlowCounters, FlowKey};

const KEY: usize = size_of::<FlowKey>();
const VALUE: usize = size_of::<FlowCounters>();

/// A table of `flows` distinct keys, each with counters on every CPU.
fn table(flows: u32, cpus: usize) -> OwnedFd {
    let map = bpf::create_map(bpf::BPF_MAP_TYPE_LRU_PERCPU_HASH, KEY, VALUE, flows * 2);
    let slot = VALUE.div_ceil(8) * 8;
    let value = vec![1u8; slot * cpus];
    for n in 0..flows {
        let mut key = [0u8; KEY];
        key[..4].copy_from_slice(&n.to_ne_bytes());
        bpf::update(&map, &key, &value);
    }
    map
}

fn flow_table_read(c: &mut Criterion) {
    let cpus = aya::util::nr_cpus().expect("possible CPUs");
    let slot = VALUE.div_ceil(8) * 8;
    let mut group = c.benchmark_group("flow_table_read");
    for flows in [10_000u32, 100_000, 1_000_000] {
        if flows >= 1_000_000 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        } else {
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(5));
        }
        let map = table(flows, cpus);
        let mut lookup = BatchLookup::new(KEY, slot * cpus, 4096);
        group.bench_with_input(BenchmarkId::new("batch", flows), &flows, |b, &flows| {
            b.iter(|| {
                let mut read = 0u32;
                lookup
                    .for_each(map.as_fd(), |_, _| read += 1)
                    .expect("BPF_MAP_LOOKUP_BATCH");
                assert_eq!(read, flows);
            })
        });
        let data = MapData::from_fd(map.try_clone().expect("dup")).expect("map from fd");
        let iterated: PerCpuHashMap<MapData, [u8; KEY], [u8; VALUE]> =
            PerCpuHashMap::try_from(Map::PerCpuLruHashMap(data)).expect("per-CPU LRU hash");
        group.bench_with_input(BenchmarkId::new("aya_iter", flows), &flows, |b, &flows| {
            b.iter(|| {
                let read = iterated.iter().filter(Result::is_ok).count();
                assert_eq!(read as u32, flows);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, flow_table_read);
criterion_main!(benches);
