//! `datapath::batch` against real kernel maps: every element of an LRU per-CPU hash map
//! (the flow table's type) is read exactly once with its per-CPU values, whatever the
//! chunk size, including chunks smaller than a bucket (the ENOSPC path).
//!
//! Needs root (the test fails without it): it creates BPF maps, nothing else.

mod common;

use std::{
    collections::HashMap,
    os::fd::{AsFd, OwnedFd},
};

use common::{
    bpf::{self, BPF_MAP_TYPE_LRU_PERCPU_HASH, update},
    netns::require_root,
};
use flowmeter::datapath::batch::BatchLookup;

const KEY_SIZE: usize = 8;
/// Not a multiple of 8, so each CPU's slot is padded as the kernel pads it.
const VALUE_SIZE: usize = 12;

fn create_map(max_entries: u32) -> OwnedFd {
    bpf::create_map(
        BPF_MAP_TYPE_LRU_PERCPU_HASH,
        KEY_SIZE,
        VALUE_SIZE,
        max_entries,
    )
}

/// What CPU `cpu` holds for key `n`: distinct per key and CPU, filling all 12 bytes.
fn cpu_value(n: u64, cpu: usize) -> [u8; VALUE_SIZE] {
    let mut value = [0u8; VALUE_SIZE];
    value[..8].copy_from_slice(&(n * 1000 + cpu as u64).to_ne_bytes());
    value[8..].copy_from_slice(&(n as u32 ^ 0xa5a5_a5a5).to_ne_bytes());
    value
}

#[test]
fn every_element_is_read_once_with_its_per_cpu_values() {
    require_root();
    let cpus = aya::util::nr_cpus().expect("possible CPUs");
    let slot = VALUE_SIZE.div_ceil(8) * 8;
    let elements = 5_000u64;
    let map = create_map(16_384);
    for n in 0..elements {
        let mut value = vec![0u8; slot * cpus];
        for cpu in 0..cpus {
            value[cpu * slot..cpu * slot + VALUE_SIZE].copy_from_slice(&cpu_value(n, cpu));
        }
        update(&map, &n.to_ne_bytes(), &value);
    }

    // 1: every bucket that holds two or more overflows the first call (ENOSPC).
    for chunk in [1, 7, 1024, 100_000] {
        let mut lookup = BatchLookup::new(KEY_SIZE, slot * cpus, chunk);
        let mut seen: HashMap<u64, usize> = HashMap::new();
        lookup
            .for_each(map.as_fd(), |key, value| {
                let n = u64::from_ne_bytes(key.try_into().unwrap());
                for cpu in 0..cpus {
                    assert_eq!(
                        value[cpu * slot..cpu * slot + VALUE_SIZE],
                        cpu_value(n, cpu),
                        "key {n}, cpu {cpu}, chunk {chunk}"
                    );
                }
                *seen.entry(n).or_default() += 1;
            })
            .expect("BPF_MAP_LOOKUP_BATCH");
        assert_eq!(seen.len() as u64, elements, "chunk {chunk}");
        assert!(seen.values().all(|&times| times == 1), "chunk {chunk}");
    }
}

#[test]
fn an_empty_map_is_read_as_nothing() {
    require_root();
    let map = create_map(16);
    let mut lookup = BatchLookup::new(KEY_SIZE, 64, 16);
    let mut count = 0;
    lookup
        .for_each(map.as_fd(), |_, _| count += 1)
        .expect("BPF_MAP_LOOKUP_BATCH");
    assert_eq!(count, 0);
}
