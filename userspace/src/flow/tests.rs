//! The aggregator against hand-computed numbers, and rules that hold for any input.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, SystemTime},
};

use proptest::prelude::*;

use super::*;
use crate::datapath::{DirectionTotals, FlowDelta, FlowId, InterfaceTotals, Protocol, Snapshot};

const TCP: Protocol = Protocol(6);
const UDP: Protocol = Protocol(17);

fn flow_id(proto: Protocol, local: ([u8; 4], u16), remote: ([u8; 4], u16)) -> FlowId {
    FlowId {
        iface: "eth0".into(),
        proto,
        local_ip: IpAddr::from(local.0),
        local_port: local.1,
        remote_ip: IpAddr::from(remote.0),
        remote_port: remote.1,
    }
}

/// A TCP flow from 10.0.0.1:443 to `remote`:40000.
fn to(remote: [u8; 4]) -> FlowId {
    flow_id(TCP, ([10, 0, 0, 1], 443), (remote, 40_000))
}

fn delta(id: &FlowId, rx_bytes: u64, tx_bytes: u64) -> FlowDelta {
    FlowDelta {
        id: id.clone(),
        rx_packets: rx_bytes.div_ceil(1000),
        rx_bytes,
        tx_packets: tx_bytes.div_ceil(1000),
        tx_bytes,
        tcp_flags: 0,
    }
}

fn direction(bytes: u64, packets: u64) -> DirectionTotals {
    DirectionTotals {
        packets,
        bytes,
        ..Default::default()
    }
}

/// `ms` long, with each interface's totals the sum of its flows: what the reader would
/// give when nothing goes unattributed.
fn snapshot(ms: u64, flows: Vec<FlowDelta>) -> Snapshot {
    let mut interfaces: Vec<InterfaceTotals> = Vec::new();
    for flow in &flows {
        let index = match interfaces.iter().position(|i| i.iface == flow.id.iface) {
            Some(index) => index,
            None => {
                interfaces.push(InterfaceTotals {
                    iface: flow.id.iface.clone(),
                    ..Default::default()
                });
                interfaces.len() - 1
            }
        };
        let totals = &mut interfaces[index];
        totals.rx.bytes += flow.rx_bytes;
        totals.rx.packets += flow.rx_packets;
        totals.tx.bytes += flow.tx_bytes;
        totals.tx.packets += flow.tx_packets;
    }
    Snapshot {
        at: SystemTime::UNIX_EPOCH,
        interval: Duration::from_millis(ms),
        flows,
        interfaces,
        overflow: Vec::new(),
    }
}

fn no_process(_: &FlowId) -> Option<u32> {
    None
}

/// The one line for `id`.
fn line(aggregator: &Aggregator, id: &FlowId) -> Row<FlowId> {
    let top = aggregator.flows(SortBy::default(), usize::MAX);
    top.rows
        .into_iter()
        .find(|row| row.key == *id)
        .expect("the flow is listed")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(close(actual, expected), "{actual} != {expected}");
}

#[track_caller]
fn assert_rates(rates: &Rates, last2: f64, last10: f64, last40: f64) {
    assert_close(rates.last2, last2);
    assert_close(rates.last10, last10);
    assert_close(rates.last40, last40);
}

#[test]
fn one_second_intervals_give_exact_window_averages() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    // Interval k carries 100k bytes out and 10k in.
    let ingest = |aggregator: &mut Aggregator, k: u64| {
        aggregator.ingest(&snapshot(1000, vec![delta(&id, 10 * k, 100 * k)]));
    };

    ingest(&mut aggregator, 1);
    // Less than any window has elapsed: the average since the start.
    assert_rates(&line(&aggregator, &id).tx, 100.0, 100.0, 100.0);

    ingest(&mut aggregator, 2);
    ingest(&mut aggregator, 3);
    let row = line(&aggregator, &id);
    assert_rates(&row.tx, (200.0 + 300.0) / 2.0, 600.0 / 3.0, 600.0 / 3.0);
    assert_close(row.tx.peak, 250.0);

    for k in 4..=50 {
        ingest(&mut aggregator, k);
    }
    let row = line(&aggregator, &id);
    // 2 s: intervals 49 and 50; 10 s: 41..=50; 40 s: 11..=50.
    assert_rates(&row.tx, 4950.0, 4550.0, 3050.0);
    assert_rates(&row.rx, 495.0, 455.0, 305.0);
    assert_rates(&row.total, 5445.0, 5005.0, 3355.0);
    assert_eq!(row.tx.cum, 100 * (1..=50).sum::<u64>());
    assert_eq!(row.rx.cum, 10 * (1..=50).sum::<u64>());
    assert_eq!(row.total.cum, 110 * (1..=50).sum::<u64>());
    assert_eq!(
        row.tx.cum_packets,
        (1..=50).map(|k: u64| k.div_ceil(10)).sum::<u64>()
    );
    // The traffic only grew, so the peak is now.
    assert_close(row.tx.peak, 4950.0);
    assert_close(row.total.peak, 5445.0);
    assert_eq!(aggregator.elapsed(), Duration::from_secs(50));

    // The interfaces saw the same traffic.
    let totals = aggregator.totals();
    assert_eq!(totals, row.totals());
    assert_eq!(aggregator.interfaces(), vec![(Arc::from("eth0"), totals)]);
}

#[test]
fn half_second_intervals() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    let mut peak: f64 = 0.0;
    // 2 s rates after each interval, by hand.
    let sent = [1000, 0, 3000, 500, 2000, 0];
    let expected_last2 = [
        1000.0 / 0.5,
        1000.0 / 1.0,
        4000.0 / 1.5,
        4500.0 / 2.0,
        5500.0 / 2.0,
        5500.0 / 2.0,
    ];
    for (tx, last2) in sent.into_iter().zip(expected_last2) {
        let flows = if tx > 0 {
            vec![delta(&id, 0, tx)]
        } else {
            vec![]
        };
        aggregator.ingest(&snapshot(500, flows));
        let row = line(&aggregator, &id);
        assert_close(row.tx.last2, last2);
        peak = peak.max(last2);
        assert_close(row.tx.peak, peak);
    }
    let row = line(&aggregator, &id);
    assert_rates(&row.tx, 2750.0, 6500.0 / 3.0, 6500.0 / 3.0);
    assert_close(row.tx.peak, 2750.0);
    assert_eq!(row.tx.cum, 6500);
}

#[test]
fn a_window_start_inside_an_interval_prorates_it() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    for tx in [300, 600, 900] {
        aggregator.ingest(&snapshot(1500, vec![delta(&id, 0, tx)]));
    }
    // At 4.5 s the 2 s window starts 1 s into [1.5, 3]: a third of its 600 bytes.
    assert_rates(
        &line(&aggregator, &id).tx,
        (900.0 + 600.0 / 3.0) / 2.0,
        1800.0 / 4.5,
        1800.0 / 4.5,
    );
    aggregator.ingest(&snapshot(1500, vec![]));
    // At 6 s: a third of [3, 4.5]'s 900 bytes, and nothing since.
    assert_rates(
        &line(&aggregator, &id).tx,
        (900.0 / 3.0) / 2.0,
        1800.0 / 6.0,
        1800.0 / 6.0,
    );
}

#[test]
fn an_interval_longer_than_a_window() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    aggregator.ingest(&snapshot(5000, vec![delta(&id, 0, 5000)]));
    // The 2 s window lies inside the interval: its average.
    assert_rates(&line(&aggregator, &id).tx, 1000.0, 1000.0, 1000.0);
    aggregator.ingest(&snapshot(5000, vec![]));
    assert_rates(&line(&aggregator, &id).tx, 0.0, 500.0, 500.0);
    for _ in 0..6 {
        aggregator.ingest(&snapshot(5000, vec![]));
    }
    assert_eq!(aggregator.elapsed(), Duration::from_secs(40));
    assert_rates(&line(&aggregator, &id).tx, 0.0, 0.0, 5000.0 / 40.0);
    aggregator.ingest(&snapshot(5000, vec![]));
    assert_rates(&line(&aggregator, &id).tx, 0.0, 0.0, 0.0);
    assert_close(line(&aggregator, &id).tx.peak, 1000.0);
}

#[test]
fn peak_is_the_highest_two_second_rate() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    // In first, out two seconds later.
    let intervals = [(1000, 0), (0, 0), (0, 1000), (0, 0), (0, 0)];
    for (rx, tx) in intervals {
        let flows = if rx + tx > 0 {
            vec![delta(&id, rx, tx)]
        } else {
            vec![]
        };
        aggregator.ingest(&snapshot(1000, flows));
    }
    let row = line(&aggregator, &id);
    assert_rates(&row.total, 0.0, 2000.0 / 5.0, 2000.0 / 5.0);
    // rx: 1000 over the first 1 s; tx: 1000 over [1, 3].
    assert_close(row.rx.peak, 1000.0);
    assert_close(row.tx.peak, 500.0);
    // Never both at once: the total's peak is not the sum of the two.
    assert_close(row.total.peak, 1000.0);
}

#[test]
fn totals_come_from_the_interfaces_and_include_unattributed_traffic() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    for _ in 0..4 {
        aggregator.ingest(&Snapshot {
            at: SystemTime::UNIX_EPOCH,
            interval: Duration::from_secs(1),
            flows: vec![delta(&id, 100, 200)],
            interfaces: vec![
                InterfaceTotals {
                    iface: "eth1".into(),
                    rx: direction(50, 1),
                    tx: direction(0, 0),
                },
                InterfaceTotals {
                    iface: "eth0".into(),
                    // 1000 bytes in no flow (ARP, a full table...).
                    rx: direction(1100, 3),
                    tx: direction(200, 1),
                },
            ],
            overflow: Vec::new(),
        });
    }
    let interfaces = aggregator.interfaces();
    let names: Vec<&str> = interfaces.iter().map(|(name, _)| &**name).collect();
    assert_eq!(names, ["eth0", "eth1"]);
    let eth0 = &interfaces[0].1;
    assert_rates(&eth0.rx, 1100.0, 1100.0, 1100.0);
    assert_rates(&eth0.tx, 200.0, 200.0, 200.0);
    assert_rates(&eth0.total, 1300.0, 1300.0, 1300.0);
    assert_eq!((eth0.rx.cum, eth0.rx.cum_packets), (4400, 12));
    let all = aggregator.totals();
    assert_rates(&all.rx, 1150.0, 1150.0, 1150.0);
    assert_eq!((all.rx.cum, all.tx.cum, all.total.cum), (4600, 800, 5400));
    assert_close(all.total.peak, 1350.0);
    // The flow alone is less.
    assert_rates(&line(&aggregator, &id).rx, 100.0, 100.0, 100.0);
}

/// Five flows whose sent bytes are distinct powers of two, so any sum names its flows.
fn five_flows() -> Vec<(FlowId, u64)> {
    vec![
        (
            flow_id(TCP, ([10, 0, 0, 1], 443), ([1, 1, 1, 1], 50_000)),
            1,
        ),
        (
            flow_id(TCP, ([10, 0, 0, 1], 443), ([1, 1, 1, 1], 50_001)),
            2,
        ),
        (flow_id(TCP, ([10, 0, 0, 2], 22), ([1, 1, 1, 1], 50_002)), 4),
        (
            flow_id(TCP, ([10, 0, 0, 1], 443), ([2, 2, 2, 2], 50_000)),
            8,
        ),
        (flow_id(UDP, ([10, 0, 0, 1], 53), ([2, 2, 2, 2], 53)), 16),
    ]
}

fn process_by_port(id: &FlowId) -> Option<&'static str> {
    match id.local_port {
        443 => Some("nginx"),
        22 => Some("sshd"),
        _ => None,
    }
}

#[test]
fn grouping_by_each_key() {
    let flows = five_flows();
    let mut aggregator = Aggregator::new();
    let deltas = flows.iter().map(|(id, tx)| delta(id, 0, *tx)).collect();
    aggregator.ingest(&snapshot(1000, deltas));

    let ip = |octets: [u8; 4]| IpAddr::from(octets);
    let tcp = |port| Port { proto: TCP, port };
    let udp = |port| Port { proto: UDP, port };
    // Each line's key, flows and bytes sent, in the default order.
    type Lines = Vec<(GroupKey<&'static str>, usize, u64)>;
    let cases: [(GroupBy, Lines); 5] = [
        (
            GroupBy::RemoteHost,
            vec![
                (GroupKey::RemoteHost(ip([2, 2, 2, 2])), 2, 24),
                (GroupKey::RemoteHost(ip([1, 1, 1, 1])), 3, 7),
            ],
        ),
        (
            GroupBy::HostPair,
            vec![
                (
                    GroupKey::HostPair {
                        local: ip([10, 0, 0, 1]),
                        remote: ip([2, 2, 2, 2]),
                    },
                    2,
                    24,
                ),
                (
                    GroupKey::HostPair {
                        local: ip([10, 0, 0, 2]),
                        remote: ip([1, 1, 1, 1]),
                    },
                    1,
                    4,
                ),
                (
                    GroupKey::HostPair {
                        local: ip([10, 0, 0, 1]),
                        remote: ip([1, 1, 1, 1]),
                    },
                    2,
                    3,
                ),
            ],
        ),
        (
            GroupBy::RemotePort,
            vec![
                (GroupKey::RemotePort(udp(53)), 1, 16),
                (GroupKey::RemotePort(tcp(50_000)), 2, 9),
                (GroupKey::RemotePort(tcp(50_002)), 1, 4),
                (GroupKey::RemotePort(tcp(50_001)), 1, 2),
            ],
        ),
        (
            GroupBy::LocalPort,
            vec![
                (GroupKey::LocalPort(udp(53)), 1, 16),
                (GroupKey::LocalPort(tcp(443)), 3, 11),
                (GroupKey::LocalPort(tcp(22)), 1, 4),
            ],
        ),
        (
            GroupBy::Process,
            vec![
                (GroupKey::Process(None), 1, 16),
                (GroupKey::Process(Some("nginx")), 3, 11),
                (GroupKey::Process(Some("sshd")), 1, 4),
            ],
        ),
    ];
    for (group_by, expected) in cases {
        let top = aggregator.top(group_by, SortBy::default(), 10, &process_by_port);
        let got: Vec<_> = top
            .rows
            .iter()
            .map(|row| (row.key.clone(), row.flows, row.tx.cum))
            .collect();
        assert_eq!(got, expected, "{group_by:?}");
        assert_eq!(top.total, expected.len());

        // Each line's flows are the ones its sum names.
        for row in &top.rows {
            assert_eq!(row.key.group_by(), group_by);
            let detail = aggregator.flows_of(&row.key, SortBy::default(), 10, &process_by_port);
            assert_eq!(detail.total, row.flows);
            let mut members: Vec<_> = flows
                .iter()
                .filter(|(_, tx)| row.tx.cum & tx != 0)
                .map(|(id, _)| id)
                .collect();
            members.sort();
            let mut listed: Vec<_> = detail.rows.iter().map(|row| &row.key).collect();
            listed.sort();
            assert_eq!(listed, members, "{:?}", row.key);
            // The key a caller computes for a flow (the console's filter) is its line's.
            for id in members {
                assert_eq!(GroupKey::of(group_by, id, &process_by_port), row.key);
            }
        }
    }
}

/// A host's (rx, tx) bytes in second `s`, `None` when it did not move.
type Traffic = fn(u64) -> Option<(u64, u64)>;

/// 40 one-second intervals of the remote hosts `(last octet, traffic)`.
fn hosts_over_40s(hosts: &[(u8, Traffic)]) -> Aggregator {
    let mut aggregator = Aggregator::new();
    for second in 1..=40 {
        let flows = hosts
            .iter()
            .filter_map(|&(host, traffic)| {
                let (rx, tx) = traffic(second)?;
                Some(delta(&to([1, 0, 0, host]), rx, tx))
            })
            .collect();
        aggregator.ingest(&snapshot(1000, flows));
    }
    aggregator
}

#[test]
fn sorting_by_each_column() {
    let aggregator = hosts_over_40s(&[
        // Steady: 1000/s out all along.
        (1, |_| Some((0, 1000))),
        // A burst out in the first second: the highest peak, nothing lately.
        (2, |s| (s == 1).then_some((0, 30_000))),
        // A burst out 9 s ago: within the last 10 s only.
        (3, |s| (s == 31).then_some((0, 24_000))),
        // In only, the last two seconds, much; and a little all along.
        (4, |s| Some((if s > 38 { 2500 } else { 10 }, 0))),
        // Out, more than host 1 but only for the last 20 s.
        (5, |s| (s > 20).then_some((0, 1800))),
    ]);
    let first = |direction, column| {
        let top = aggregator.top(
            GroupBy::RemoteHost,
            SortBy { direction, column },
            1,
            &no_process,
        );
        match top.rows[0].key {
            GroupKey::RemoteHost(IpAddr::V4(ip)) => ip.octets()[3],
            ref other => panic!("{other:?}"),
        }
    };
    use Column::*;
    use Direction::*;
    assert_eq!(first(Tx, Last2), 5);
    assert_eq!(first(Tx, Last10), 3);
    assert_eq!(first(Tx, Last40), 1);
    assert_eq!(first(Tx, Cum), 1);
    assert_eq!(first(Tx, Peak), 2);
    assert_eq!(first(Rx, Last2), 4);
    assert_eq!(first(Rx, Cum), 4);
    assert_eq!(first(Total, Last2), 4);
    assert_eq!(first(Total, Last40), 1);
    assert_eq!(first(Total, Peak), 2);

    // Every order is by the value, highest first.
    for direction in Direction::ALL {
        for column in Column::ALL {
            let sort = SortBy { direction, column };
            let rows = aggregator
                .top(GroupBy::RemoteHost, sort, 10, &no_process)
                .rows;
            assert_eq!(rows.len(), 5);
            assert!(
                rows.windows(2)
                    .all(|w| w[0].value(sort) >= w[1].value(sort))
            );
        }
    }
}

#[test]
fn ties_keep_their_order_between_refreshes() {
    // Hosts added in descending address order, all with the same traffic.
    let hosts: Vec<FlowId> = (1..=20).rev().map(|n| to([1, 0, 0, n])).collect();
    let mut aggregator = Aggregator::new();
    let keys = |aggregator: &Aggregator, sort| -> Vec<GroupKey<u32>> {
        let top = aggregator.top(GroupBy::RemoteHost, sort, 7, &no_process);
        top.rows.into_iter().map(|row| row.key).collect()
    };
    let expected: Vec<GroupKey<u32>> = (1..=7)
        .map(|n| GroupKey::RemoteHost(IpAddr::V4(Ipv4Addr::new(1, 0, 0, n))))
        .collect();
    for _ in 0..5 {
        let deltas = hosts.iter().map(|id| delta(id, 100, 100)).collect();
        aggregator.ingest(&snapshot(1000, deltas));
        for direction in Direction::ALL {
            for column in Column::ALL {
                assert_eq!(keys(&aggregator, SortBy { direction, column }), expected);
            }
        }
    }
}

#[test]
fn top_n_is_the_first_n_of_the_full_sort() {
    let mut aggregator = Aggregator::new();
    for second in 0..12u64 {
        // Many ties: 60 hosts, 6 distinct amounts, changing over time.
        let deltas = (0..60u8)
            .map(|n| {
                delta(
                    &to([1, 0, 0, n]),
                    u64::from(n % 6) * 100,
                    (second + u64::from(n)) % 4,
                )
            })
            .collect();
        aggregator.ingest(&snapshot(700, deltas));
    }
    for direction in Direction::ALL {
        for column in Column::ALL {
            let sort = SortBy { direction, column };
            let full = aggregator.top(GroupBy::RemoteHost, sort, usize::MAX, &no_process);
            assert_eq!(full.rows.len(), 60);
            for limit in [0, 1, 5, 17, 59, 60, 61] {
                let top = aggregator.top(GroupBy::RemoteHost, sort, limit, &no_process);
                assert_eq!(top.rows[..], full.rows[..limit.min(60)]);
                assert_eq!(top.total, 60);
            }
        }
    }
}

#[test]
fn idle_flows_leave_the_rates_then_are_forgotten() {
    let once = to([1, 1, 1, 1]);
    let steady = to([2, 2, 2, 2]);
    let mut aggregator = Aggregator::new();
    aggregator.ingest(&snapshot(
        1000,
        vec![delta(&once, 400, 400), delta(&steady, 1, 1)],
    ));
    for second in 2..=61 {
        aggregator.ingest(&snapshot(1000, vec![delta(&steady, 1, 1)]));
        if second == 41 {
            // Out of every window, but still listed with its cumulative.
            let row = line(&aggregator, &once);
            assert_rates(&row.total, 0.0, 0.0, 0.0);
            assert_eq!(row.total.cum, 800);
        }
        if second == 60 {
            assert_eq!(aggregator.flow_count(), 2);
        }
    }
    // Idle for 60 s.
    assert_eq!(aggregator.flow_count(), 1);
    let hosts = aggregator.top(GroupBy::RemoteHost, SortBy::default(), 10, &no_process);
    assert_eq!(hosts.total, 1);
    assert_eq!(hosts.rows[0].key, GroupKey::RemoteHost(steady.remote_ip));
    // The interfaces' totals never forget.
    assert_eq!(aggregator.totals().total.cum, 800 + 2 * 61);
    // History is kept only as long as the 40 s window needs it.
    assert!(aggregator.timeline_slots() <= 41);
}

/// A flood of 20,000 one-packet flows from as many hosts, then a steady flow: once the
/// flood is forgotten, the tables by flow and by group have given its room back, and
/// the steady flow, created during the flood, still reads right.
#[test]
fn a_forgotten_flood_gives_its_room_back() {
    let steady = to([10, 9, 9, 9]);
    let mut aggregator = Aggregator::new();
    let flood: Vec<FlowDelta> = (0..20_000u32)
        .map(|n| delta(&to(((n + 1) << 8).to_be_bytes()), 60, 0))
        .chain([delta(&steady, 100, 100)])
        .collect();
    aggregator.ingest(&snapshot(1000, flood));
    assert!(aggregator.room() > 20_000);
    for _ in 0..61 {
        aggregator.ingest(&snapshot(1000, vec![delta(&steady, 10, 10)]));
    }
    assert_eq!(aggregator.flow_count(), 1);
    // The steady flow came last: its place pins the tables' ends until it goes.
    let row = line(&aggregator, &steady);
    assert_eq!(row.total.cum, 200 + 61 * 20);
    // It stops; new flows take the lowest free places, so once it is forgotten the
    // ends are free.
    for n in 0..61 {
        let id = to([10, 8, 8, n]);
        aggregator.ingest(&snapshot(1000, vec![delta(&id, 10, 10)]));
    }
    // The first of them is idle for 60 s by now, and forgotten too.
    assert_eq!(aggregator.flow_count(), 60);
    let room = aggregator.room();
    assert!(room < 4_096, "{room}");
    let hosts = aggregator.top(GroupBy::RemoteHost, SortBy::default(), 100, &no_process);
    assert_eq!(hosts.total, 60);
}

#[test]
fn a_returning_flow_starts_afresh_once_forgotten() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    aggregator.ingest(&snapshot(1000, vec![delta(&id, 0, 5000)]));
    aggregator.ingest(&snapshot(60_000, vec![]));
    assert_eq!(aggregator.flow_count(), 0);
    aggregator.ingest(&snapshot(1000, vec![delta(&id, 0, 100)]));
    let row = line(&aggregator, &id);
    assert_eq!(row.tx.cum, 100);
    assert_close(row.tx.peak, 50.0);
}

#[test]
fn the_flow_limit_forgets_the_idlest_flows() {
    let mut aggregator = Aggregator::with_flow_limit(2);
    let (a, b, c, d) = (
        to([1, 0, 0, 1]),
        to([1, 0, 0, 2]),
        to([1, 0, 0, 3]),
        to([1, 0, 0, 4]),
    );
    aggregator.ingest(&snapshot(
        1000,
        vec![delta(&a, 0, 1000), delta(&b, 0, 1000)],
    ));
    aggregator.ingest(&snapshot(
        1000,
        vec![delta(&b, 0, 1000), delta(&c, 0, 1000)],
    ));
    assert_eq!(aggregator.flow_count(), 2);
    let listed: Vec<_> = aggregator
        .flows(SortBy::default(), 10)
        .rows
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert_eq!(listed, [b.clone(), c.clone()]);
    // d takes a's place; a's history must not leak into it.
    aggregator.ingest(&snapshot(1000, vec![delta(&d, 0, 300), delta(&c, 0, 1)]));
    assert_eq!(aggregator.flow_count(), 2);
    assert_rates(&line(&aggregator, &d).tx, 150.0, 100.0, 100.0);
    for _ in 0..45 {
        aggregator.ingest(&snapshot(1000, vec![delta(&d, 0, 300)]));
    }
    assert_rates(&line(&aggregator, &d).tx, 300.0, 300.0, 300.0);
    // The interfaces keep everything.
    assert_eq!(aggregator.totals().tx.cum, 4001 + 46 * 300);
}

#[test]
fn amounts_beyond_u32_are_kept_whole() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    let huge = 10_000_000_000;
    aggregator.ingest(&snapshot(1000, vec![delta(&id, huge, huge + 7)]));
    for _ in 0..3 {
        aggregator.ingest(&snapshot(1000, vec![]));
    }
    let row = line(&aggregator, &id);
    assert_rates(&row.rx, 0.0, huge as f64 / 4.0, huge as f64 / 4.0);
    assert_eq!(row.tx.cum, huge + 7);
    for _ in 0..40 {
        aggregator.ingest(&snapshot(1000, vec![]));
    }
    assert_rates(&line(&aggregator, &id).tx, 0.0, 0.0, 0.0);
}

#[test]
fn empty_and_zero_length_intervals() {
    let id = to([1, 1, 1, 1]);
    let mut aggregator = Aggregator::new();
    assert_eq!(aggregator.totals(), Totals::default());
    aggregator.ingest(&snapshot(0, vec![delta(&id, 10, 10)]));
    // No time has passed: no rate yet, but the bytes count.
    let row = line(&aggregator, &id);
    assert_rates(&row.total, 0.0, 0.0, 0.0);
    assert_eq!(row.total.cum, 20);
    aggregator.ingest(&snapshot(1000, vec![]));
    assert_rates(&line(&aggregator, &id).total, 20.0, 20.0, 20.0);
    for _ in 0..3 {
        aggregator.ingest(&snapshot(0, vec![delta(&id, 1, 1)]));
        aggregator.ingest(&snapshot(1000, vec![]));
    }
    assert_rates(
        &line(&aggregator, &id).total,
        4.0 / 2.0,
        26.0 / 4.0,
        26.0 / 4.0,
    );
}

// Rules that hold for any input.

/// Up to a few flows in a small address space, so groups share flows.
fn any_flow_id() -> impl Strategy<Value = FlowId> {
    (0..2u8, 0..2u8, 0..3u8, 0..4u8, 0..3u16).prop_map(|(iface, proto, local, remote, port)| {
        FlowId {
            iface: if iface == 0 { "eth0" } else { "eth1" }.into(),
            proto: if proto == 0 { TCP } else { UDP },
            local_ip: IpAddr::from([10, 0, 0, local]),
            local_port: 443 + port,
            remote_ip: IpAddr::from([1, 0, 0, remote]),
            remote_port: 50_000 + port,
        }
    })
}

/// A run: interval lengths (ms) with the flows that moved in each.
fn any_run(intervals: impl Strategy<Value = u64>) -> impl Strategy<Value = Vec<Snapshot>> {
    let flows = prop::collection::vec((any_flow_id(), 0..5_000u64, 0..5_000u64), 0..6);
    prop::collection::vec((intervals, flows), 1..30).prop_map(|run| {
        run.into_iter()
            .map(|(ms, flows)| {
                let mut deltas: Vec<FlowDelta> = Vec::new();
                for (id, rx, tx) in flows {
                    // The reader reports a flow once per interval.
                    if !deltas.iter().any(|d| d.id == id) {
                        deltas.push(delta(&id, rx, tx));
                    }
                }
                snapshot(ms, deltas)
            })
            .collect()
    })
}

fn by_port_mod_3(id: &FlowId) -> Option<u16> {
    let rest = id.local_port % 3;
    (rest != 0).then_some(rest)
}

fn sum_of<K>(rows: &[Row<K>], direction: Direction, column: Column) -> f64 {
    rows.iter()
        .map(|row| row.totals().get(direction).get(column))
        .sum()
}

fn assert_invariants(totals: &Totals, elapsed: Duration) {
    let seconds = |window: u64| Duration::from_secs(window).min(elapsed).as_secs_f64();
    for rates in [&totals.tx, &totals.rx, &totals.total] {
        let at_most = |a: f64, b: f64| a <= b || close(a, b);
        assert!(at_most(rates.last2, rates.peak), "{rates:?}");
        // A longer window holds at least the bytes of a shorter one, and cum all of them.
        assert!(at_most(
            rates.last2 * seconds(2),
            rates.last10 * seconds(10)
        ));
        assert!(at_most(
            rates.last10 * seconds(10),
            rates.last40 * seconds(40)
        ));
        assert!(at_most(rates.last40 * seconds(40), rates.cum as f64));
    }
    let (rx, tx, total) = (totals.rx.peak, totals.tx.peak, totals.total.peak);
    assert!(total <= rx + tx || close(total, rx + tx));
    assert!(total >= rx.max(tx) || close(total, rx.max(tx)));
}

proptest! {
    #[test]
    fn a_constant_stream_reads_its_rate_in_every_window(
        bytes_per_ms in 1..1_000u64,
        intervals in prop::collection::vec(1..3_000u64, 1..60),
    ) {
        let id = to([1, 1, 1, 1]);
        let rate = bytes_per_ms as f64 * 1000.0;
        let mut aggregator = Aggregator::new();
        for ms in intervals {
            let bytes = bytes_per_ms * ms;
            aggregator.ingest(&snapshot(ms, vec![delta(&id, bytes, 2 * bytes)]));
            // Before a window has elapsed it is the average since the start: the same.
            let row = line(&aggregator, &id);
            for (rates, rate) in [(&row.rx, rate), (&row.tx, 2.0 * rate)] {
                prop_assert!(close(rates.last2, rate), "{rates:?} {rate}");
                prop_assert!(close(rates.last10, rate));
                prop_assert!(close(rates.last40, rate));
                prop_assert!(close(rates.peak, rate));
            }
            let totals = aggregator.totals();
            prop_assert!(close(totals.total.last40, 3.0 * rate));
        }
    }

    #[test]
    fn cumulative_is_the_sum_of_deltas(run in any_run(1..2_000u64)) {
        let mut aggregator = Aggregator::new();
        for snapshot in &run {
            aggregator.ingest(snapshot);
        }
        // At most 58 s: nothing is forgotten.
        for row in aggregator.flows(SortBy::default(), usize::MAX).rows {
            let deltas = run.iter().flat_map(|s| &s.flows).filter(|d| d.id == row.key);
            let (mut rx, mut tx, mut packets) = (0, 0, 0);
            for d in deltas {
                rx += d.rx_bytes;
                tx += d.tx_bytes;
                packets += d.rx_packets + d.tx_packets;
            }
            prop_assert_eq!((row.rx.cum, row.tx.cum, row.total.cum_packets), (rx, tx, packets));
        }
        let rx: u64 = run.iter().flat_map(|s| &s.interfaces).map(|i| i.rx.bytes).sum();
        let tx: u64 = run.iter().flat_map(|s| &s.interfaces).map(|i| i.tx.bytes).sum();
        let totals = aggregator.totals();
        prop_assert_eq!((totals.rx.cum, totals.tx.cum, totals.total.cum), (rx, tx, rx + tx));
        let per_interface: u64 = aggregator.interfaces().iter().map(|(_, t)| t.total.cum).sum();
        prop_assert_eq!(per_interface, rx + tx);
    }

    #[test]
    fn groups_add_up_to_their_flows(run in any_run(1..3_000u64)) {
        let mut aggregator = Aggregator::new();
        for snapshot in &run {
            aggregator.ingest(snapshot);
        }
        let flows = aggregator.flows(SortBy::default(), usize::MAX).rows;
        for group_by in GroupBy::ALL {
            let groups = aggregator.top(group_by, SortBy::default(), usize::MAX, &by_port_mod_3);
            prop_assert_eq!(groups.rows.iter().map(|row| row.flows).sum::<usize>(), flows.len());
            for direction in Direction::ALL {
                for column in [Column::Last2, Column::Last10, Column::Last40, Column::Cum] {
                    let (by_group, by_flow) =
                        (sum_of(&groups.rows, direction, column), sum_of(&flows, direction, column));
                    prop_assert!(close(by_group, by_flow), "{group_by:?} {direction:?} {column:?}");
                }
            }
            for row in &groups.rows {
                let members = aggregator.flows_of(&row.key, SortBy::default(), usize::MAX, &by_port_mod_3);
                prop_assert_eq!(members.total, row.flows);
                prop_assert!(close(sum_of(&members.rows, Direction::Total, Column::Last10), row.total.last10));
                // A line's peak is at least its busiest flow's.
                let busiest = members.rows.iter().map(|m| m.total.peak).fold(0.0, f64::max);
                prop_assert!(row.total.peak >= busiest || close(row.total.peak, busiest));
            }
        }
    }

    #[test]
    fn rates_stay_within_their_peaks_and_cumulative(run in any_run(1..3_000u64)) {
        let mut aggregator = Aggregator::new();
        for snapshot in &run {
            aggregator.ingest(snapshot);
            let elapsed = aggregator.elapsed();
            assert_invariants(&aggregator.totals(), elapsed);
            for row in aggregator.flows(SortBy::default(), usize::MAX).rows {
                assert_invariants(&row.totals(), elapsed);
            }
            for group_by in GroupBy::ALL {
                for row in aggregator.top(group_by, SortBy::default(), usize::MAX, &by_port_mod_3).rows {
                    assert_invariants(&row.totals(), elapsed);
                }
            }
        }
    }

    /// With intervals that tile 2 s, the 2 s windows sampled cover any longer window
    /// exactly, so its average cannot exceed the highest of them.
    #[test]
    fn longer_windows_stay_under_the_peak_with_regular_intervals(
        ms in prop::sample::select(vec![250u64, 500, 1000, 2000]),
        run in any_run(Just(0u64)),
    ) {
        let mut aggregator = Aggregator::new();
        for snapshot in &run {
            aggregator.ingest(&Snapshot { interval: Duration::from_millis(ms), ..snapshot.clone() });
            let mut lines: Vec<Totals> = vec![aggregator.totals()];
            lines.extend(aggregator.flows(SortBy::default(), usize::MAX).rows.iter().map(Row::totals));
            let hosts = aggregator.top(GroupBy::RemoteHost, SortBy::default(), usize::MAX, &no_process);
            lines.extend(hosts.rows.iter().map(Row::totals));
            for totals in lines {
                for rates in [totals.tx, totals.rx, totals.total] {
                    prop_assert!(rates.last10 <= rates.peak || close(rates.last10, rates.peak), "{rates:?}");
                    prop_assert!(rates.last40 <= rates.peak || close(rates.last40, rates.peak), "{rates:?}");
                }
            }
        }
    }

    #[test]
    fn top_n_is_a_prefix_of_the_full_order(
        run in any_run(1..3_000u64),
        group_by in prop::sample::select(GroupBy::ALL.to_vec()),
        direction in prop::sample::select(Direction::ALL.to_vec()),
        column in prop::sample::select(Column::ALL.to_vec()),
        limit in 0..12usize,
    ) {
        let mut aggregator = Aggregator::new();
        for snapshot in &run {
            aggregator.ingest(snapshot);
        }
        let sort = SortBy { direction, column };
        let full = aggregator.top(group_by, sort, usize::MAX, &by_port_mod_3);
        // Highest first, ties in strictly increasing key order.
        for pair in full.rows.windows(2) {
            let (a, b) = (pair[0].value(sort), pair[1].value(sort));
            prop_assert!(a > b || (a == b && pair[0].key < pair[1].key));
        }
        let top = aggregator.top(group_by, sort, limit, &by_port_mod_3);
        prop_assert_eq!(&top.rows[..], &full.rows[..limit.min(full.rows.len())]);
    }
}

/// A view reuses the group sums of the previous view of the same interval; the next
/// ingest, or another grouping, sums again.
#[test]
fn views_of_one_interval_share_their_sums_and_the_next_ingest_renews_them() {
    let a = to([198, 51, 100, 1]);
    let b = to([198, 51, 100, 2]);
    let mut aggregator = Aggregator::new();
    aggregator.ingest(&snapshot(1000, vec![delta(&a, 1000, 0), delta(&b, 500, 0)]));
    let cum = |aggregator: &Aggregator, group_by: GroupBy| -> Vec<u64> {
        let top = aggregator.top(group_by, SortBy::default(), 10, &no_process);
        top.rows.iter().map(|row| row.total.cum).collect()
    };
    assert_eq!(cum(&aggregator, GroupBy::RemoteHost), [1000, 500]);
    // Another sort and another grouping of the same interval: the same amounts.
    let by_cum = SortBy {
        column: Column::Cum,
        ..SortBy::default()
    };
    let top = aggregator.top(GroupBy::RemoteHost, by_cum, 10, &no_process);
    assert_eq!(top.rows[0].total.cum, 1000);
    assert_eq!(cum(&aggregator, GroupBy::LocalPort), [1500]);
    assert_eq!(cum(&aggregator, GroupBy::RemoteHost), [1000, 500]);
    // b overtakes a in the next interval.
    aggregator.ingest(&snapshot(2000, vec![delta(&b, 2000, 0)]));
    assert_eq!(cum(&aggregator, GroupBy::RemoteHost), [2500, 1000]);
}
