//! The flood condition, and folding: a spoofed flood is one `flood` alert, a storm of
//! per-flow conditions a handful of lines.

use std::{net::IpAddr, sync::Arc, time::Duration};

use serde_json::Value;

use super::*;
use crate::{
    datapath::{FlowDelta, FlowId, Protocol},
    enrich::{Facts, geo::Location, sockets::Owner, verdict::Reason},
    sinks::alerts::{
        AlertConfig, AlertEngine, AlertKind, Phase,
        flood::{LocalPort, SourcePrefix},
    },
};

/// A small deterministic generator (xorshift64*), so the "random" sources repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One 64-byte UDP datagram received from `remote:remote_port` on local port 53.
fn spoofed(remote: IpAddr, remote_port: u16) -> FlowDelta {
    FlowDelta {
        id: FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(flowmeter_common::PROTO_UDP),
            local_ip: "10.0.0.1".parse().unwrap(),
            local_port: 53,
            remote_ip: remote,
            remote_port,
        },
        rx_packets: 1,
        rx_bytes: 64,
        tx_packets: 0,
        tx_bytes: 0,
        tcp_flags: 0,
    }
}

/// `count` one-packet flows: 60% from 198.51.100.0/24, 30% from 203.0.113.0/24, the
/// rest from anywhere; random source ports.
fn flood_flows(random: &mut Random, count: usize) -> Vec<FlowDelta> {
    (0..count)
        .map(|n| {
            let bits = random.next();
            let host = (bits & 0xff) as u8;
            let remote = match n % 10 {
                0..6 => IpAddr::from([198, 51, 100, host]),
                6..9 => IpAddr::from([203, 0, 113, host]),
                _ => IpAddr::from(((bits >> 16) as u32).to_be_bytes()),
            };
            spoofed(remote, (bits >> 48) as u16)
        })
        .collect()
}

fn nobody() -> Facts {
    business(Location::Unknown)
}

/// A flood interval: its flows, all with no local process.
fn flood_interval(random: &mut Random, second: u64, count: usize) -> EnrichedSnapshot {
    let flows = flood_flows(random, count);
    let facts = vec![nobody(); flows.len()];
    enriched(snapshot(second, flows), &facts)
}

fn engine(repeat: u64, clear: u64) -> AlertEngine {
    AlertEngine::new(AlertConfig {
        repeat: Duration::from_secs(repeat),
        clear: Duration::from_secs(clear),
        ..AlertConfig::default()
    })
}

#[test]
fn a_spoof_spread_over_the_address_space_names_no_prefix_but_says_how_wide() {
    let mut engine = engine(300, 2);
    // Every flow from its own /24: 1.0.0.0/24, 1.0.1.0/24, ...
    let flows: Vec<FlowDelta> = (0..20_000u32)
        .map(|n| {
            spoofed(
                IpAddr::from(std::net::Ipv4Addr::from(0x0100_0000 + (n << 8))),
                1024,
            )
        })
        .collect();
    let facts = vec![nobody(); flows.len()];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let flood = alerts[0].flood.as_deref().unwrap();
    assert!(flood.sources.is_empty(), "{:?}", flood.sources);
    assert_eq!(flood.source_prefixes, 20_000);
    let text = alerts[0].to_string();
    assert!(
        text.contains("; from 20.0k source prefixes, none with 1% of it; to udp/53"),
        "{text}"
    );
    let line: Value = serde_json::from_str(&alerts[0].to_json_line(SCHEMA_VERSION)).unwrap();
    assert_eq!(line["source_prefixes"], 20_000, "{line}");
    assert_eq!(line["sources"], serde_json::json!([]), "{line}");
}

#[test]
fn a_flood_of_one_packet_flows_is_one_alert_that_names_its_carriers() {
    let mut engine = engine(3, 2);
    let mut random = Random(7);
    let mut raised = Vec::new();
    for second in 1..=7 {
        raised.extend(engine.observe(&flood_interval(&mut random, second, 50_000)));
    }
    // Then quiet: the end comes once two quiet seconds have passed.
    for second in 8..=10 {
        raised.extend(engine.observe(&enriched(snapshot(second, vec![]), &[])));
    }
    let story: Vec<_> = raised.iter().map(|a| (a.kind, a.phase, a.at)).collect();
    assert_eq!(
        story,
        [
            (AlertKind::Flood, Phase::Start, at(1)),
            (AlertKind::Flood, Phase::Reminder, at(4)),
            (AlertKind::Flood, Phase::Reminder, at(7)),
            (AlertKind::Flood, Phase::End, at(9)),
        ]
    );
    let start = &raised[0];
    let flood = start.flood.as_deref().unwrap();
    assert_eq!(flood.new_flows_per_s, 50_000);
    assert_eq!(flood.threshold_per_s, 5_000);
    assert_eq!(flood.packets, 50_000);
    assert_eq!((start.flows, start.bytes), (50_000, 50_000 * 64));
    assert_eq!(start.rate_bps, Some(50_000 * 64 * 8));
    assert_eq!(start.iface.as_deref(), Some("eth0"));
    let prefixes: Vec<String> = flood.sources.iter().map(|c| c.key.to_string()).collect();
    assert_eq!(prefixes[..2], ["198.51.100.0/24", "203.0.113.0/24"]);
    assert_eq!(flood.sources[0].packets_per_s, 30_000);
    assert_eq!(flood.sources[0].bps, 30_000 * 64 * 8);
    // The random tenth is spread over thousands of /24s, none with 1% of the flood.
    assert_eq!(
        flood.sources.len(),
        2,
        "only prefixes with a share worth naming"
    );
    assert!(flood.source_prefixes > 1_000, "{}", flood.source_prefixes);
    assert_eq!(
        flood.ports.iter().map(|c| c.key).collect::<Vec<_>>(),
        [LocalPort {
            proto: Protocol(flowmeter_common::PROTO_UDP),
            port: 53
        }]
    );
    assert!(
        start.to_string().starts_with(
            "ALERT start flood: 50.0k new flows/s > 5000/s on eth0, 50.0k pkt/s, 25.6 Mbit/s; \
             from 198.51.100.0/24 (30.0k pkt/s, 15.4 Mbit/s), 203.0.113.0/24 (15.0k pkt/s, \
             7.7 Mbit/s); to udp/53"
        ),
        "{start}"
    );
    assert!(
        start
            .to_string()
            .ends_with("; to udp/53 (50.0k pkt/s, 25.6 Mbit/s)"),
        "{start}"
    );
    let end = &raised[3];
    assert_eq!(end.since, at(0));
    // Named as last seen: the prefixes of second 7.
    let prefixes: Vec<String> = raised[2]
        .flood
        .as_deref()
        .unwrap()
        .sources
        .iter()
        .map(|c| c.key.to_string())
        .collect();
    assert_eq!(end.flood.as_deref().unwrap().new_flows_per_s, 0);
    assert_eq!(
        end.to_string(),
        format!(
            "ALERT end flood: 0 new flows/s <= 5000/s on eth0, after 9s; from {}; to udp/53",
            prefixes.join(", ")
        )
    );
    assert_eq!(engine.active(), 0);
}

#[test]
fn a_flood_record_carries_its_rates_and_carriers() {
    let mut engine = engine(300, 10);
    let alerts = engine.observe(&flood_interval(&mut Random(1), 1, 20_000));
    let line: Value = serde_json::from_str(&alerts[0].to_json_line(SCHEMA_VERSION)).unwrap();
    assert_eq!(line["kind"], "flood");
    assert_eq!(line["phase"], "start");
    assert_eq!(line["iface"], "eth0");
    assert_eq!(line["flows"], 20_000);
    assert_eq!(line["bytes"], 20_000 * 64);
    assert_eq!(line["rate_bps"], 20_000 * 64 * 8);
    assert_eq!(line["new_flows_per_s"], 20_000);
    assert_eq!(line["threshold_flows_per_s"], 5_000);
    assert_eq!(line["packets"], 20_000);
    assert_eq!(line["stray_packets"], 0);
    assert_eq!(line["sources"][0]["prefix"], "198.51.100.0/24");
    assert_eq!(line["sources"][0]["packets_per_s"], 12_000);
    assert_eq!(line["sources"][0]["bps"], 12_000 * 64 * 8);
    assert_eq!(line["ports"][0]["proto"], "udp");
    assert_eq!(line["ports"][0]["port"], 53);
    assert_eq!(line["ports"][0]["packets_per_s"], 20_000);
    assert_eq!(line["message"], alerts[0].to_string());
    for absent in [
        "remote_ip",
        "verdict",
        "folded",
        "reasons",
        "threshold_bytes",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
}

#[test]
fn packets_that_found_the_table_full_count_as_new_flows() {
    let mut engine = engine(300, 10);
    let mut full = link(1, Duration::from_secs(2), 12_000 * 64, 0);
    let rx = &mut full.interfaces[0].rx;
    (rx.packets, rx.unattributed_packets, rx.unattributed_bytes) = (12_000, 12_000, 12_000 * 64);
    (rx.table_full_packets, rx.table_full_bytes) = (12_000, 12_000 * 64);
    let alerts = engine.observe(&enriched(full, &[]));
    assert_eq!(phases(&alerts), [(AlertKind::Flood, Phase::Start)]);
    let flood = alerts[0].flood.as_deref().unwrap();
    assert_eq!(
        (flood.new_flows_per_s, flood.stray_packets),
        (6_000, 12_000)
    );
    assert!(flood.sources.is_empty() && flood.ports.is_empty());
    // Non-IP and malformed frames are in no flow either, but are no flood.
    let mut noise = link(2, Duration::from_secs(1), 12_000 * 64, 0);
    let rx = &mut noise.interfaces[0].rx;
    (
        rx.unattributed_packets,
        rx.non_ip_packets,
        rx.malformed_packets,
    ) = (12_000, 6_000, 6_000);
    let mut engine = self::engine(300, 10);
    assert!(engine.observe(&enriched(noise, &[])).is_empty());
}

#[test]
fn normal_traffic_is_no_flood() {
    let mut engine = engine(300, 0);
    let mut random = Random(3);
    for second in 1..=5 {
        // 20,000 conversations (both ways), and 4,000 one-packet arrivals: under 5,000/s.
        let mut flows: Vec<FlowDelta> = (0..20_000)
            .map(|n| flow(&format!("198.51.{}.{}", n / 250, n % 250), 443, 1500, 200))
            .collect();
        flows.extend(flood_flows(&mut random, 4_000));
        let facts = vec![nobody(); flows.len()];
        let alerts = engine.observe(&enriched(snapshot(second, flows), &facts));
        assert!(alerts.is_empty(), "{alerts:?}");
    }
    // Exactly the threshold is not over it either.
    let alerts = engine.observe(&flood_interval(&mut random, 6, 5_000));
    assert!(alerts.is_empty(), "{alerts:?}");
    // And 0 turns the detection off.
    let mut off = AlertEngine::new(AlertConfig {
        flood_flows_per_s: 0,
        ..AlertConfig::default()
    });
    assert!(
        off.observe(&flood_interval(&mut random, 1, 50_000))
            .is_empty()
    );
}

/// A flow from a "mining-pool port" with no local process: the old rule's verdict on
/// random inbound source ports.
fn pool_port() -> Facts {
    suspicious(
        Owner::NoLocalSocket,
        Location::Unknown,
        vec![Reason::MiningPort { port: 3333 }, Reason::NoLocalProcess],
    )
}

#[test]
fn suspicious_flows_the_flood_carries_fold_into_it() {
    let mut engine = engine(2, 1);
    let mut random = Random(11);
    let mut raised = Vec::new();
    for second in 1..=5 {
        let mut flows = flood_flows(&mut random, 30_000);
        let mut facts = vec![nobody(); flows.len()];
        // 300 of them judged suspicious, each its own remote endpoint.
        for n in 0..300 {
            facts[n * 100] = pool_port();
        }
        // A miner with a process is no part of the flood: it is told.
        flows.push(flow("192.0.2.77", 3333, 100, 900));
        facts.push(suspicious(
            Owner::Process(miner()),
            Location::Unknown,
            vec![Reason::MiningPort { port: 3333 }],
        ));
        raised.extend(engine.observe(&enriched(snapshot(second, flows), &facts)));
    }
    let floods: Vec<_> = raised
        .iter()
        .filter(|a| a.kind == AlertKind::Flood)
        .map(|a| (a.phase, a.at, a.folded))
        .collect();
    // Each interval folds 300 new endpoints; each alert counts those since the last.
    assert_eq!(
        floods,
        [
            (Phase::Start, at(1), 300),
            (Phase::Reminder, at(3), 600),
            (Phase::Reminder, at(5), 600),
        ]
    );
    let start = raised.iter().find(|a| a.kind == AlertKind::Flood).unwrap();
    assert!(
        start
            .to_string()
            .ends_with("; 300 per-flow alerts folded in"),
        "{start}"
    );
    // Only the miner, which has a process, is told.
    let suspicious: Vec<_> = raised
        .iter()
        .filter(|a| a.kind == AlertKind::Suspicious)
        .collect();
    assert_eq!(suspicious[0].phase, Phase::Start);
    assert!(
        suspicious
            .iter()
            .all(|a| a.process.as_ref().unwrap().pid == 4242 && a.folded == 0)
    );
}

/// `count` suspicious groups, one flow each, group `n` moving `n + 1` bytes.
fn suspicious_storm(second: u64, count: usize) -> EnrichedSnapshot {
    let flows: Vec<FlowDelta> = (0..count)
        .map(|n| {
            let remote = IpAddr::from([203, 0, 113, (n % 250) as u8]);
            let mut flow = flow(&remote.to_string(), 3333 + (n / 250) as u16, 0, 0);
            flow.tx_bytes = n as u64 + 1;
            flow
        })
        .collect();
    let facts = vec![pool_port(); count];
    enriched(snapshot(second, flows), &facts)
}

#[test]
fn a_storm_of_suspicious_groups_is_capped_and_says_what_it_folded() {
    let mut engine = engine(300, 2);
    let alerts = engine.observe(&suspicious_storm(1, 500));
    assert_eq!(alerts.len(), 10, "at most --alert-max-starts: {alerts:#?}");
    assert!(alerts.iter().all(|a| a.kind == AlertKind::Suspicious));
    assert!(alerts.iter().all(|a| a.phase == Phase::Start));
    // The largest first: groups 499 down to 490 moved the most bytes.
    let mut bytes: Vec<u64> = alerts.iter().map(|a| a.bytes).collect();
    bytes.sort_unstable();
    assert_eq!(bytes, (491..=500).collect::<Vec<u64>>());
    let folded: Vec<usize> = alerts.iter().map(|a| a.folded).collect();
    assert_eq!(folded.iter().sum::<usize>(), 490);
    assert_eq!(
        alerts.last().unwrap().folded,
        490,
        "the last start carries it"
    );
    assert!(
        alerts
            .last()
            .unwrap()
            .to_string()
            .ends_with("; 490 more suspicious alerts folded")
    );
    let line: Value =
        serde_json::from_str(&alerts.last().unwrap().to_json_line(SCHEMA_VERSION)).unwrap();
    assert_eq!(line["folded"], 490);
    // The same storm goes on: the folded ones stay folded, the told ones quiet.
    assert!(engine.observe(&suspicious_storm(2, 500)).is_empty());
    assert_eq!(engine.active(), 10);
    // It stops: ten ends, and the folded ones end silently.
    let mut ends = Vec::new();
    for second in 3..=5 {
        ends.extend(engine.observe(&enriched(snapshot(second, vec![]), &[])));
    }
    assert_eq!(ends.len(), 10);
    assert!(ends.iter().all(|a| a.phase == Phase::End && a.folded == 0));
    // Back again later: a new storm, capped again.
    let again = engine.observe(&suspicious_storm(6, 500));
    assert_eq!((again.len(), again.last().unwrap().folded), (10, 490));
}

#[test]
fn the_cap_is_an_option() {
    let mut engine = AlertEngine::new(AlertConfig {
        max_starts: 3,
        ..AlertConfig::default()
    });
    let alerts = engine.observe(&suspicious_storm(1, 8));
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts.last().unwrap().folded, 5);
    // Under the cap, nothing is folded.
    let mut engine = AlertEngine::new(AlertConfig::default());
    let alerts = engine.observe(&suspicious_storm(1, 10));
    assert_eq!(alerts.len(), 10);
    assert!(alerts.iter().all(|a| a.folded == 0));
}

#[test]
fn source_prefixes_are_slash_24_and_slash_64() {
    let of = |ip: &str| SourcePrefix::of(ip.parse().unwrap()).to_string();
    assert_eq!(of("198.51.100.77"), "198.51.100.0/24");
    assert_eq!(of("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
}

#[test]
fn a_flood_over_ipv6_names_its_slash_64() {
    let mut engine = engine(300, 10);
    let mut random = Random(5);
    let flows: Vec<FlowDelta> = (0..10_000)
        .map(|_| {
            let bits = random.next();
            let remote =
                IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, (bits >> 16) as u16, bits as u16]);
            spoofed(remote, 4444)
        })
        .collect();
    let facts = vec![nobody(); flows.len()];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    let flood = alerts[0].flood.as_deref().unwrap();
    assert_eq!(flood.sources.len(), 1);
    assert_eq!(flood.sources[0].key.to_string(), "2001:db8:0:7::/64");
    assert_eq!(flood.sources[0].packets_per_s, 10_000);
}

#[test]
fn the_verdict_of_a_flood_flow_does_not_matter_to_the_count() {
    // A listener's flood (a local process owns the port) is a flood all the same.
    let mut engine = engine(300, 10);
    let flows = flood_flows(&mut Random(9), 6_000);
    let owner = Facts {
        owner: Owner::Process(miner()),
        ..business(Location::Unknown)
    };
    let facts = vec![owner; flows.len()];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(phases(&alerts), [(AlertKind::Flood, Phase::Start)]);
    assert_eq!(alerts[0].flood.as_deref().unwrap().new_flows_per_s, 6_000);
}

/// One second of a flood the kernel's new-flow budget held back: no flow at all, only
/// the interface's over-budget packets and their source prefixes.
fn over_budget_interval(second: u64, from: &[([u8; 4], u64)]) -> EnrichedSnapshot {
    let packets: u64 = from.iter().map(|(_, packets)| packets).sum();
    let mut snapshot = snapshot(second, vec![]);
    snapshot.interfaces.push(crate::datapath::InterfaceTotals {
        iface: Arc::from("eth0"),
        rx: crate::datapath::DirectionTotals {
            packets,
            bytes: packets * 64,
            unattributed_packets: packets,
            unattributed_bytes: packets * 64,
            over_budget_packets: packets,
            over_budget_bytes: packets * 64,
            ..Default::default()
        },
        tx: Default::default(),
    });
    snapshot.overflow = from
        .iter()
        .map(|&(prefix, packets)| crate::datapath::PrefixDelta {
            iface: Arc::from("eth0"),
            proto: Protocol(flowmeter_common::PROTO_UDP),
            prefix: SourcePrefix::of(IpAddr::from(prefix)),
            local_port: 123,
            packets,
            bytes: packets * 64,
        })
        .collect();
    enriched(snapshot, &[])
}

#[test]
fn a_flood_over_the_kernels_budget_is_named_by_the_prefixes_it_counted() {
    let from = [([198, 51, 100, 0], 60_000), ([203, 0, 113, 0], 20_000)];
    let alerts = engine(300, 2).observe(&over_budget_interval(1, &from));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let flood = alerts[0].flood.as_deref().unwrap();
    assert_eq!(flood.new_flows_per_s, 80_000);
    assert_eq!(flood.stray_packets, 80_000);
    let named: Vec<(String, u64)> = flood
        .sources
        .iter()
        .map(|c| (c.key.to_string(), c.packets_per_s))
        .collect();
    assert_eq!(
        named,
        [
            ("198.51.100.0/24".to_owned(), 60_000),
            ("203.0.113.0/24".to_owned(), 20_000)
        ]
    );
    assert_eq!(flood.ports[0].key.to_string(), "udp/123");
    assert_eq!(flood.ports[0].packets_per_s, 80_000);
    // Below the threshold it is no flood, whatever the prefixes say.
    let mut quiet = engine(300, 2);
    assert!(
        quiet
            .observe(&over_budget_interval(1, &[([198, 51, 100, 0], 4_000)]))
            .is_empty()
    );
}
