//! `log --ipfix`'s export rate: 100,000 ended flow records (two IPFIX records each,
//! both ways having moved; IPv4 and IPv6 mixed, with process, user and country) encoded
//! and sent as UDP messages to a collector socket on loopback that reads nothing (the
//! kernel drops what overflows its buffer; the sending costs the same). Prints the rate
//! in flow records per second on stderr.

use std::{
    hint::black_box,
    net::UdpSocket,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use criterion::{Criterion, criterion_group, criterion_main};
use flowmeter::{
    datapath::{FlowId, Protocol},
    enrich::{
        Facts,
        geo::{CountryCode, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Verdict},
    },
    sinks::{
        ipfix::{IpfixExporter, IpfixOptions},
        records::{Counts, EndReason, FlowRecord, RecordTap},
    },
};

const RECORDS: u32 = 100_000;

fn records() -> Vec<FlowRecord> {
    let process = Arc::new(ProcessInfo {
        pid: 1000,
        comm: "worker".into(),
        exe: Some("/usr/bin/worker".into()),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 33,
        user: "www-data".into(),
        cmdline: "/usr/bin/worker --serve".into(),
    });
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    (0..RECORDS)
        .map(|n| {
            let [_, b, c, d] = n.to_be_bytes();
            let remote = if n % 4 == 0 {
                format!("2001:db8::{:x}:{:x}", n >> 16, n & 0xffff)
                    .parse()
                    .unwrap()
            } else {
                format!("198.{b}.{c}.{d}").parse().unwrap()
            };
            let local = if n % 4 == 0 {
                "2001:db8:1::1".parse().unwrap()
            } else {
                "10.0.0.1".parse().unwrap()
            };
            FlowRecord {
                id: FlowId {
                    iface: Arc::from("lo"),
                    proto: Protocol(6),
                    local_ip: local,
                    local_port: 443,
                    remote_ip: remote,
                    remote_port: 40000 + (n % 20000) as u16,
                },
                start: end - Duration::from_secs(15),
                end,
                counts: Counts {
                    rx_packets: 12,
                    rx_bytes: 15_000,
                    tx_packets: 8,
                    tx_bytes: 900,
                },
                tcp_flags: 0x1b,
                end_reason: EndReason::Idle,
                facts: Facts {
                    owner: Owner::Process(process.clone()),
                    location: Location::Country(CountryCode::new("NL").unwrap()),
                    judgement: Judgement {
                        verdict: Verdict::Business,
                        reasons: vec![],
                        foreign: false,
                    },
                },
            }
        })
        .collect()
}

fn export(c: &mut Criterion) {
    let collector = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    let options = IpfixOptions {
        collectors: vec![collector.local_addr().unwrap().to_string()],
        template_refresh: Duration::from_secs(30),
        observation_domain: 1,
    };
    let mut exporter = IpfixExporter::open(&options).expect("the exporter");
    let records = records();
    let began = Instant::now();
    for record in &records {
        exporter.record(record);
    }
    exporter.flush();
    let rate = f64::from(RECORDS) / began.elapsed().as_secs_f64();
    eprintln!("ipfix export: {rate:.0} flow records/s ({RECORDS} records, 2 IPFIX records each)");

    let mut group = c.benchmark_group("ipfix_export");
    group.sample_size(10);
    group.bench_function("100k_flow_records", |b| {
        b.iter(|| {
            for record in &records {
                exporter.record(black_box(record));
            }
            black_box(exporter.flush())
        })
    });
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
