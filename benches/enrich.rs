//! One enrichment cycle at 1k, 10k, 100k and 1M flows that all moved, in three cases side
//! by side: `steady` (the same flows as the interval before, as on a quiet host), `churn`
//! (1% of the flows new each interval, the oldest 1% gone) and `churn_inline` (the same,
//! with the owners looked up on the metering thread, as before the resolving thread).
//! The time measured is the metering thread's: with the resolving thread it includes the
//! wait for its answer (at most the budget), not the thread's own work.
//!
//! Half the flows are UDP on a socket this benchmark binds, so they have a local owner
//! (this process, found once by a scan of `/proc/*/fd`) and are judged with its signs;
//! they go to 100 remote hosts, under the flood limit. The other half are TCP from a port
//! no socket owns, each to its own public host: "no local socket", as forwarded traffic
//! or a spoofed flood. Every call is one interval later on a virtual clock, so caches age
//! (retries of unowned flows every 10 s, forgetting after 120 s) as they would in a run.
//!
//! Run `cargo bench --bench enrich`; compare with a saved criterion baseline
//! (`--save-baseline before`, then `--baseline before`).

use std::{
    net::{IpAddr, Ipv4Addr, UdpSocket},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use flowmeter::{
    datapath::{FlowDelta, FlowId, Protocol, Snapshot},
    enrich::{
        Enricher,
        geo::{GeoDb, HomeCountries},
        sockets::Owner,
        verdict::Rules,
    },
};

/// Remote hosts of the owned flows: fewer than the flood limit (200).
const OWNED_REMOTE_HOSTS: u32 = 100;

/// The flows of one interval, and how they change from one interval to the next.
struct Traffic {
    iface: Arc<str>,
    /// The port of this benchmark's own UDP socket: flows on it are owned.
    owned_port: u16,
    flows: Vec<FlowDelta>,
    /// The sequence number of the next new flow.
    next: u32,
    /// Where the next new flow replaces an old one (the oldest, in a rotating window).
    replace_at: usize,
}

impl Traffic {
    fn new(count: u32, owned_port: u16) -> Self {
        let mut traffic = Self {
            iface: "eth0".into(),
            owned_port,
            flows: Vec::new(),
            next: 0,
            replace_at: 0,
        };
        traffic.flows = (0..count).map(|_| traffic.new_flow()).collect();
        traffic
    }

    /// Flow number `next`: even ones owned (UDP to one of 100 hosts, a port each), odd
    /// ones unowned (TCP to a public host of their own).
    fn new_flow(&mut self) -> FlowDelta {
        let n = self.next;
        self.next += 1;
        let (proto, local_port, remote_ip, remote_port) = if n.is_multiple_of(2) {
            let n = n / 2;
            let host = 0xc633_6400 + n % OWNED_REMOTE_HOSTS; // 198.51.100.0/24
            let port = 1024 + (n / OWNED_REMOTE_HOSTS) % 64_000;
            (17, self.owned_port, host, port as u16)
        } else {
            // Spread over the public IPv4 space, skipping 0/8 and 10/8.
            let host = 0x0b00_0000 + n.wrapping_mul(2_654_435_761) % 0xd000_0000;
            (6, 1, host, 443)
        };
        FlowDelta {
            id: FlowId {
                iface: self.iface.clone(),
                proto: Protocol(proto),
                local_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                local_port,
                remote_ip: IpAddr::V4(Ipv4Addr::from(remote_ip)),
                remote_port,
            },
            rx_packets: 10,
            rx_bytes: 15_000,
            tx_packets: 5,
            tx_bytes: 400,
            tcp_flags: 0x18,
        }
    }

    /// The next interval: `percent` of the flows replaced by new ones.
    fn churn(&mut self, percent: usize) {
        let count = self.flows.len();
        for _ in 0..(count * percent).div_ceil(100) {
            let flow = self.new_flow();
            self.flows[self.replace_at] = flow;
            self.replace_at = (self.replace_at + 1) % count;
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: SystemTime::now(),
            interval: Duration::from_secs(1),
            flows: self.flows.clone(),
            interfaces: Vec::new(),
            overflow: Vec::new(),
        }
    }
}

/// The case being measured: how the flows change between intervals, and where owners
/// are looked up.
#[derive(Clone, Copy)]
enum Case {
    Steady,
    Churn,
    ChurnInline,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Steady => "steady",
            Case::Churn => "churn",
            Case::ChurnInline => "churn_inline",
        }
    }

    fn percent_new(self) -> usize {
        match self {
            Case::Steady => 0,
            Case::Churn | Case::ChurnInline => 1,
        }
    }

    fn enricher(self) -> Enricher {
        let home: HomeCountries = "DE".parse().expect("home");
        let geo = GeoDb::embedded().expect("embedded GeoIP database");
        let enricher = Enricher::new(geo, home, Rules::default());
        match self {
            Case::ChurnInline => enricher.resolving_inline(),
            Case::Steady | Case::Churn => enricher,
        }
    }
}

fn enrichment_cycle(c: &mut Criterion) {
    // Bound for the whole run: the owned half of the flows is this socket's.
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("a UDP socket");
    let owned_port = socket.local_addr().expect("its port").port();
    let mut group = c.benchmark_group("enrichment_cycle");
    for count in [1_000, 10_000, 100_000, 1_000_000] {
        if count >= 100_000 {
            // A cycle takes a large part of a second: fewer, flat samples.
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(if count >= 1_000_000 { 15 } else { 5 }));
        } else {
            group
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        for case in [Case::Steady, Case::Churn, Case::ChurnInline] {
            let mut enricher = case.enricher();
            let mut traffic = Traffic::new(count, owned_port);
            // The first intervals read /proc (until every owner has arrived); later ones
            // answer from what is known.
            let start = Instant::now();
            let mut interval = 0;
            while enricher
                .enrich(traffic.snapshot(), start + Duration::from_secs(interval))
                .flows()
                .any(|(_, facts)| facts.owner == Owner::Resolving)
            {
                interval += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            let id = BenchmarkId::new(case.name(), count);
            group.bench_with_input(id, &count, |b, _| {
                // The next snapshot is made outside the measurement.
                b.iter_batched(
                    || {
                        traffic.churn(case.percent_new());
                        interval += 1;
                        (traffic.snapshot(), start + Duration::from_secs(interval))
                    },
                    |(snapshot, now)| enricher.enrich(snapshot, now),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
    drop(socket);
}

criterion_group!(benches, enrichment_cycle);
criterion_main!(benches);
