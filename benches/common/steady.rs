//! One interval of steady traffic for the benchmarks: `flows` TCP flows from
//! 10.0.0.1:443, each to its own remote host, all moved (15 kB in, 400 B out each), and
//! eth0's totals, which they add up to.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, SystemTime},
};

use std::sync::Arc;

use flowmeter::{
    datapath::{DirectionTotals, FlowDelta, FlowId, InterfaceTotals, Protocol, Snapshot},
    enrich::{
        EnrichedSnapshot, Facts,
        geo::{CountryCode, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Verdict},
    },
};

/// `flows` flows from 10.0.0.1:443, each to its own remote host, all moved.
pub fn snapshot(flows: u32) -> Snapshot {
    let iface = "eth0".into();
    let deltas: Vec<FlowDelta> = (0..flows)
        .map(|n| FlowDelta {
            id: FlowId {
                iface: std::sync::Arc::clone(&iface),
                proto: Protocol(6),
                local_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                local_port: 443,
                remote_ip: IpAddr::V4(Ipv4Addr::from(0x0100_0000 + n)),
                remote_port: (n % 50_000) as u16 + 1024,
            },
            rx_packets: 10,
            rx_bytes: 15_000 + u64::from(n % 1000),
            tx_packets: 5,
            tx_bytes: 400 + u64::from(n % 7),
            tcp_flags: 0x18,
        })
        .collect();
    let total = |bytes: fn(&FlowDelta) -> u64| deltas.iter().map(bytes).sum::<u64>();
    let interfaces = vec![InterfaceTotals {
        iface,
        rx: DirectionTotals {
            packets: 10 * u64::from(flows),
            bytes: total(|d| d.rx_bytes),
            ..Default::default()
        },
        tx: DirectionTotals {
            packets: 5 * u64::from(flows),
            bytes: total(|d| d.tx_bytes),
            ..Default::default()
        },
    }];
    Snapshot {
        at: SystemTime::UNIX_EPOCH,
        interval: Duration::from_secs(1),
        flows: deltas,
        interfaces,
        overflow: Vec::new(),
    }
}

/// `snapshot`'s flows owned by 100 local processes (`worker0` .. `worker99`, by remote
/// port), every remote in NL, business.
#[allow(dead_code)] // for the benches of the log's sinks
pub fn of_workers(snapshot: Snapshot) -> EnrichedSnapshot {
    let processes: Vec<Arc<ProcessInfo>> = (0..100)
        .map(|n| {
            Arc::new(ProcessInfo {
                pid: 1000 + n,
                comm: format!("worker{n}"),
                exe: Some(format!("/usr/bin/worker{n}").into()),
                exe_deleted: false,
                cgroup: Default::default(),
                uid: 33,
                user: "www-data".into(),
                cmdline: format!("/usr/bin/worker{n} --serve"),
            })
        })
        .collect();
    let country = CountryCode::new("NL").expect("a country code");
    EnrichedSnapshot::from_fn(snapshot, |flow| Facts {
        owner: Owner::Process(processes[flow.id.remote_port as usize % processes.len()].clone()),
        location: Location::Country(country),
        judgement: Judgement {
            verdict: Verdict::Business,
            reasons: vec![],
            foreign: false,
        },
    })
}
