//! One reader cycle (sum, delta, idle check, decode) over a flow table of 1k, 10k
//! and 100k flows that all moved since the previous read: the userspace cost per
//! interval, which must stay flat whatever the packet rate.

use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flowmeter::datapath::{Interface, LinkLayer, Reader, memory::MemorySource};
use flowmeter_common::{FAMILY_IPV4, FlowCounters, FlowKey, PROTO_TCP};

fn table(flows: u32, round: u64) -> MemorySource {
    let mut source = MemorySource {
        now_ns: round * 1_000_000_000,
        ..Default::default()
    };
    for n in 0..flows {
        let mut remote_addr = [0u8; 16];
        remote_addr[..4].copy_from_slice(&n.to_be_bytes());
        let key = FlowKey {
            ifindex: 2,
            family: FAMILY_IPV4,
            proto: PROTO_TCP,
            local_port: 443,
            remote_port: (n % 50_000) as u16,
            local_addr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote_addr,
            ..Default::default()
        };
        let counters = FlowCounters {
            rx_packets: 10 * round,
            rx_bytes: 15_000 * round,
            tx_packets: 5 * round,
            tx_bytes: 400 * round,
            first_seen_ns: 1,
            ..Default::default()
        };
        source.flows.insert(key, counters);
    }
    source
}

fn reader_cycle(c: &mut Criterion) {
    let interfaces = [Interface {
        name: "eth0".into(),
        ifindex: 2,
        link: LinkLayer::Ethernet,
    }];
    let mut group = c.benchmark_group("reader_cycle");
    group.measurement_time(Duration::from_secs(5));
    for flows in [1_000, 10_000, 100_000] {
        let before = table(flows, 1);
        let after = table(flows, 2);
        group.bench_with_input(BenchmarkId::from_parameter(flows), &flows, |b, _| {
            b.iter_batched(
                || {
                    let mut reader = Reader::new(before.clone(), &interfaces, Instant::now());
                    reader.read(SystemTime::now(), Instant::now()).unwrap();
                    // The next interval: every flow moved.
                    *reader.source_mut() = after.clone();
                    reader
                },
                |mut reader| reader.read(SystemTime::now(), Instant::now()).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, reader_cycle);
criterion_main!(benches);
