//! One enrichment cycle at 1k, 10k, 100k and 1M flows that all moved: socket attribution
//! (answered from the cache after the first interval, as on a steady host), a GeoIP
//! lookup in the embedded database and a verdict for every flow.
//!
//! The flows are to public addresses from a port no local socket owns, so attribution
//! is the cached "no local socket" answer: the cost measured is the per-flow work of
//! every interval, not a /proc scan.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use flowmeter::{
    datapath::{FlowDelta, FlowId, Protocol, Snapshot},
    enrich::{
        Enricher,
        geo::{GeoDb, HomeCountries},
        verdict::Rules,
    },
};

/// `count` TCP flows from 10.0.0.1:1, each to its own public remote host.
fn flows(count: u32) -> Vec<FlowDelta> {
    let iface: Arc<str> = "eth0".into();
    (0..count)
        .map(|n| FlowDelta {
            id: FlowId {
                iface: iface.clone(),
                proto: Protocol(6),
                local_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                local_port: 1,
                // Spread over the public IPv4 space, skipping 0/8 and 10/8.
                remote_ip: IpAddr::V4(Ipv4Addr::from(
                    0x0b00_0000 + n.wrapping_mul(2_654_435_761) % 0xd000_0000,
                )),
                remote_port: 443,
            },
            rx_packets: 10,
            rx_bytes: 15_000,
            tx_packets: 5,
            tx_bytes: 400,
            tcp_flags: 0x18,
        })
        .collect()
}

fn enrichment_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("enrichment_cycle");
    group.measurement_time(Duration::from_secs(5));
    for count in [1_000, 10_000, 100_000, 1_000_000] {
        if count >= 1_000_000 {
            // A cycle takes most of a second: fewer, longer samples.
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        let home: HomeCountries = "DE".parse().expect("home");
        let geo = GeoDb::embedded().expect("embedded GeoIP database");
        let mut enricher = Enricher::new(geo, home, Rules::default());
        // The first interval reads /proc; the steady state answers from the cache.
        let snapshot = Snapshot {
            at: SystemTime::now(),
            interval: Duration::from_secs(1),
            flows: flows(count),
            interfaces: Vec::new(),
        };
        enricher.enrich(snapshot.clone(), Instant::now());
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            // The copy of the snapshot is made outside the measurement.
            b.iter_batched(
                || snapshot.clone(),
                |snapshot| enricher.enrich(snapshot, Instant::now()),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, enrichment_cycle);
criterion_main!(benches);
