//! The enricher's caches against the judgement made afresh: the same facts every
//! interval, whatever was cached, and memory that follows the live flows.

use std::{
    net::{Ipv4Addr, UdpSocket},
    path::Path,
    time::{Duration, SystemTime},
};

use super::*;
use crate::datapath::Protocol;

const UDP: u8 = 17;
const TCP: u8 = 6;

fn flow(proto: u8, local_port: u16, remote: [u8; 4], remote_port: u16, sent: bool) -> FlowDelta {
    FlowDelta {
        id: FlowId {
            iface: "eth0".into(),
            proto: Protocol(proto),
            local_ip: Ipv4Addr::new(10, 0, 0, 1).into(),
            local_port,
            remote_ip: Ipv4Addr::from(remote).into(),
            remote_port,
        },
        rx_packets: 3,
        rx_bytes: 300,
        tx_packets: u64::from(sent),
        tx_bytes: if sent { 100 } else { 0 },
        tcp_flags: 0,
    }
}

fn snapshot(flows: Vec<FlowDelta>) -> Snapshot {
    Snapshot {
        at: SystemTime::now(),
        interval: Duration::from_secs(1),
        flows,
        interfaces: Vec::new(),
        overflow: Vec::new(),
    }
}

fn enricher() -> Enricher {
    let geo = GeoDb::embedded().expect("embedded GeoIP database");
    Enricher::new(geo, "DE".parse().unwrap(), Rules::default())
}

/// The judgement as the enricher made it before it cached anything: every fact found
/// again for this interval. `sent`: the flow sent in this interval or an earlier one.
fn afresh(
    enricher: &Enricher,
    flows: &[FlowDelta],
    owners: &[Owner],
    sent: impl Fn(&FlowId) -> bool,
) -> Vec<Facts> {
    let mut hosts: HashMap<u32, HashSet<IpAddr>> = HashMap::new();
    for (flow, owner) in flows.iter().zip(owners) {
        if let (Some(process), true) = (owner.process(), flow.tx_packets > 0) {
            hosts
                .entry(process.pid)
                .or_default()
                .insert(flow.id.remote_ip);
        }
    }
    flows
        .iter()
        .zip(owners)
        .map(|(flow, owner)| {
            let location = enricher.geo.locate(flow.id.remote_ip);
            let mut context = FlowContext::new(location, &enricher.home);
            context.persistence = &enricher.persistence;
            context.outbound = sent(&flow.id);
            if let Some(process) = owner.process() {
                context.remote_hosts_of_process = hosts.get(&process.pid).map_or(0, HashSet::len);
                context.hugetlb_kb = verdict::hugetlb_kb(Path::new("/proc"), process.pid);
            }
            Facts {
                owner: owner.clone(),
                location,
                judgement: enricher.rules.judge(&flow.id, owner.process(), &context),
            }
        })
        .collect()
}

use std::collections::{HashMap, HashSet};

#[test]
fn cached_facts_are_the_facts_found_afresh_in_every_interval() {
    // This test's own socket: flows on its port are owned by this process.
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut enricher = enricher();
    let start = Instant::now();
    let mut ever_sent: HashSet<FlowId> = HashSet::new();
    for interval in 0..6u8 {
        let mut flows = vec![
            // Owned: to a pool port, to an ordinary one, to a home-country address.
            flow(UDP, port, [198, 51, 100, 9], 3333, true),
            flow(UDP, port, [203, 0, 113, 7], 443, true),
            flow(UDP, port, [5, 1, 66, 255], 53, interval % 2 == 0),
            // Unowned: from a pool port, sending only from the third interval on.
            flow(TCP, 1, [198, 51, 100, 20], 4444, interval >= 2),
            // Unowned, new each interval (churn), from a pool port, never sending.
            flow(UDP, 2, [203, 0, 113, interval], 14444, false),
        ];
        // In interval 3 the owner fans out to more hosts than the flood limit.
        if interval == 3 {
            for n in 0..=200u16 {
                let [a, b] = n.to_be_bytes();
                flows.push(flow(UDP, port, [100, 64, a, b], 8000, true));
            }
        }
        for delta in &flows {
            if delta.tx_packets > 0 {
                ever_sent.insert(delta.id.clone());
            }
        }
        let now = start + Duration::from_secs(u64::from(interval));
        let enriched = enricher.enrich(snapshot(flows.clone()), now);
        let owners: Vec<Owner> = enriched
            .flows()
            .map(|(_, facts)| facts.owner.clone())
            .collect();
        assert_eq!(
            owners[0].process().map(|p| p.pid),
            Some(std::process::id()),
            "the socket's flows are this process's"
        );
        let expected = afresh(&enricher, &flows, &owners, |id| ever_sent.contains(id));
        let got: Vec<Facts> = enriched.flows().map(|(_, facts)| facts.clone()).collect();
        assert_eq!(got, expected, "interval {interval}");
        let verdicts: Vec<_> = got.iter().map(|f| f.judgement.verdict).collect();
        use verdict::Verdict::{Business, Suspicious};
        // The unowned pool-port flow counts once the host sends on it; the spoofed never.
        let unowned = if interval >= 2 { Suspicious } else { Business };
        let flood = if interval == 3 { Suspicious } else { Business };
        assert_eq!(
            &verdicts[..5],
            [Suspicious, flood, flood, unowned, Business]
        );
    }
    drop(socket);
}

#[test]
fn flows_no_longer_reported_are_forgotten_and_a_flood_stays_bounded() {
    let mut enricher = enricher();
    let start = Instant::now();
    let steady: Vec<FlowDelta> = (0..100u8)
        .map(|n| flow(TCP, 1, [198, 51, 100, n], 443, true))
        .collect();
    enricher.enrich(snapshot(steady.clone()), start);
    assert_eq!(enricher.known_flows(), 100);
    // A flood: 10,000 new flows each interval beside the steady ones.
    let count = 10_000u32;
    for interval in 1..=5u32 {
        let mut flows = steady.clone();
        flows.extend((0..count).map(|n| {
            let [_, a, b, c] = (interval * count + n).to_be_bytes();
            flow(UDP, 2, [100, a, b, c], 3333, false)
        }));
        let live = flows.len();
        let enriched = enricher.enrich(
            snapshot(flows),
            start + Duration::from_secs(interval.into()),
        );
        assert_eq!(enriched.flows().len(), live);
        assert!(
            enricher.known_flows() <= 2 * live + 4096,
            "{}",
            enricher.known_flows()
        );
    }
    // Two minutes later, only what the reader still reports is kept.
    let later = start + Duration::from_secs(200);
    enricher.enrich(snapshot(steady[..10].to_vec()), later);
    assert_eq!(enricher.known_flows(), 10);
}
