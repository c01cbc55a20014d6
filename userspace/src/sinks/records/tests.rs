//! The record table over made-up intervals of one second: when records are written, and
//! that their counts add up to what moved, never twice.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::*;
use crate::{
    datapath::{Protocol, Snapshot},
    enrich::{
        geo::Location,
        sockets::Owner,
        verdict::{Judgement, Verdict},
    },
    sinks::fixtures::miner,
};

const SECOND: Duration = Duration::from_secs(1);
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

fn id(proto: u8, local_port: u16) -> FlowId {
    FlowId {
        iface: Arc::from("eth0"),
        proto: Protocol(proto),
        local_ip: "10.0.0.1".parse().unwrap(),
        local_port,
        remote_ip: "203.0.113.9".parse().unwrap(),
        remote_port: 443,
    }
}

/// `port`'s TCP flow moved `bytes` each way (one packet), with `flags` since it began.
fn tcp(port: u16, bytes: u64, flags: u8) -> FlowDelta {
    FlowDelta {
        id: id(6, port),
        rx_packets: 1,
        rx_bytes: bytes,
        tx_packets: 1,
        tx_bytes: bytes,
        tcp_flags: flags,
    }
}

fn udp(port: u16, bytes: u64) -> FlowDelta {
    FlowDelta {
        id: id(17, port),
        tcp_flags: 0,
        ..tcp(port, bytes, 0)
    }
}

fn facts(verdict: Verdict, owner: Owner) -> Facts {
    Facts {
        owner,
        location: Location::Local,
        judgement: Judgement {
            verdict,
            reasons: vec![],
            foreign: false,
        },
    }
}

/// Feeds one-second intervals; interval `n` ends at `n` seconds after the epoch used.
struct Run {
    table: FlowRecords,
    n: u64,
    out: Vec<FlowRecord>,
}

impl Run {
    fn new(idle: u64, active: u64) -> Self {
        Self {
            table: FlowRecords::new(Timeouts {
                idle: Duration::from_secs(idle),
                active: Duration::from_secs(active),
            }),
            n: 0,
            out: Vec::new(),
        }
    }

    fn at(n: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n)
    }

    /// One interval with these flows (business, no process); returns its records.
    fn step(&mut self, flows: &[FlowDelta]) -> Vec<FlowRecord> {
        let business = facts(Verdict::Business, Owner::NoLocalSocket);
        self.step_with(
            flows
                .iter()
                .map(|f| (f.clone(), business.clone()))
                .collect(),
        )
    }

    fn step_with(&mut self, flows: Vec<(FlowDelta, Facts)>) -> Vec<FlowRecord> {
        self.n += 1;
        let (deltas, mut facts): (Vec<_>, Vec<_>) = flows.into_iter().unzip();
        facts.reverse();
        let interval = EnrichedSnapshot::from_fn(
            Snapshot {
                at: Self::at(self.n),
                interval: SECOND,
                flows: deltas,
                interfaces: vec![],
                overflow: Vec::new(),
            },
            |_| facts.pop().unwrap(),
        );
        self.table.observe(&interval, &mut self.out);
        std::mem::take(&mut self.out)
    }

    /// An interval in which nothing moves, but the owners of `late` flows arrive.
    fn answered(&mut self, late: Vec<(FlowId, Facts)>) -> Vec<FlowRecord> {
        self.n += 1;
        let snapshot = Snapshot {
            at: Self::at(self.n),
            interval: SECOND,
            flows: Vec::new(),
            interfaces: vec![],
            overflow: Vec::new(),
        };
        let interval = EnrichedSnapshot::from_fn(snapshot, |_| unreachable!()).with_late(late);
        self.table.observe(&interval, &mut self.out);
        std::mem::take(&mut self.out)
    }

    /// `count` intervals in which nothing moves; the records they wrote.
    fn quiet(&mut self, count: u64) -> Vec<FlowRecord> {
        (0..count).flat_map(|_| self.step(&[])).collect()
    }

    fn stop(&mut self) -> Vec<FlowRecord> {
        self.out.extend(self.table.drain_open());
        std::mem::take(&mut self.out)
    }
}

fn reasons(records: &[FlowRecord]) -> Vec<EndReason> {
    records.iter().map(|r| r.end_reason).collect()
}

fn bytes(records: &[FlowRecord]) -> u64 {
    records.iter().map(|r| r.counts.rx_bytes).sum()
}

#[test]
fn an_idle_flow_ends_after_the_idle_timeout_with_all_it_moved() {
    let mut run = Run::new(3, 60);
    for bytes in [100, 200] {
        assert!(run.step(&[udp(1, bytes)]).is_empty());
    }
    // Last moved in interval 2 (ending at 2 s): idle from 5 s, the end of interval 5.
    assert!(run.quiet(2).is_empty());
    let records = run.quiet(1);
    assert_eq!(reasons(&records), [EndReason::Idle]);
    let record = &records[0];
    assert_eq!(record.id, id(17, 1));
    assert_eq!(
        record.counts,
        Counts {
            rx_packets: 2,
            rx_bytes: 300,
            tx_packets: 2,
            tx_bytes: 300
        }
    );
    assert_eq!((record.start, record.end), (Run::at(0), Run::at(2)));
    assert!(run.table.is_empty(), "forgotten with its final record");
    assert!(run.table.idle_checks.is_empty(), "and its idle check");
    assert!(run.quiet(5).is_empty() && run.stop().is_empty());
}

#[test]
fn a_flow_that_keeps_moving_is_not_idle_and_is_checked_once_per_idle_timeout() {
    let mut run = Run::new(3, 3600);
    for _ in 0..10 {
        assert!(run.step(&[udp(1, 10)]).is_empty());
        assert_eq!(
            run.table.idle_checks.values().map(Vec::len).sum::<usize>(),
            1
        );
    }
    let records = run.quiet(3);
    assert_eq!(reasons(&records), [EndReason::Idle]);
    assert_eq!(bytes(&records), 100);
}

#[test]
fn a_long_flow_gets_a_record_every_active_timeout_adding_up_to_what_moved() {
    let mut run = Run::new(15, 5);
    let mut records = Vec::new();
    for n in 1..=17 {
        records.extend(run.step(&[tcp(1, n, ACK)]));
    }
    assert_eq!(reasons(&records), [EndReason::Active; 3]);
    for (k, record) in records.iter().enumerate() {
        let k = k as u64;
        assert_eq!(
            (record.start, record.end),
            (Run::at(5 * k), Run::at(5 * k + 5)),
            "record {k} spans five one-second intervals"
        );
        assert_eq!(record.counts.rx_packets, 5);
    }
    records.extend(run.step(&[tcp(1, 18, FIN_ACK)]));
    records.extend(run.quiet(1));
    assert_eq!(
        reasons(&records),
        [
            EndReason::Active,
            EndReason::Active,
            EndReason::Active,
            EndReason::Fin
        ]
    );
    assert_eq!(records[3].counts.rx_packets, 3);
    assert_eq!(records[3].start, Run::at(15));
    assert_eq!(bytes(&records), (1..=18).sum::<u64>());
    assert!(run.table.is_empty());
}

#[test]
fn fin_ends_a_flow_once_it_stops_moving_so_the_last_acks_are_in() {
    let mut run = Run::new(15, 60);
    assert!(run.step(&[tcp(1, 1000, ACK)]).is_empty());
    assert!(run.step(&[tcp(1, 500, FIN_ACK)]).is_empty());
    // The final ACK, an interval later: still the same record.
    assert!(run.step(&[tcp(1, 60, FIN_ACK)]).is_empty());
    let records = run.quiet(1);
    assert_eq!(reasons(&records), [EndReason::Fin]);
    assert_eq!(bytes(&records), 1560);
    assert_eq!(records[0].tcp_flags, FIN_ACK);
    assert_eq!(records[0].end, Run::at(3));
    assert!(run.table.is_empty());
    // Its idle check, come due, finds nothing to end.
    assert!(run.quiet(20).is_empty());
}

#[test]
fn rst_ends_a_flow_as_rst() {
    let mut run = Run::new(15, 60);
    run.step(&[tcp(1, 1000, ACK | RST)]);
    let records = run.quiet(1);
    assert_eq!(reasons(&records), [EndReason::Rst]);
}

#[test]
fn flags_mean_nothing_on_other_protocols() {
    let mut run = Run::new(3, 60);
    run.step(&[FlowDelta {
        tcp_flags: FIN_ACK,
        ..udp(1, 10)
    }]);
    assert!(run.quiet(2).is_empty(), "a UDP flow ends by idling only");
    assert_eq!(reasons(&run.quiet(1)), [EndReason::Idle]);
}

#[test]
fn stop_writes_every_open_flow_and_forgets_them() {
    let mut run = Run::new(15, 60);
    run.step(&[udp(1, 10), tcp(2, 20, ACK), udp(3, 30)]);
    run.step(&[udp(1, 10)]);
    let mut records = run.stop();
    records.sort_by_key(|r| r.id.local_port);
    assert_eq!(reasons(&records), [EndReason::Stop; 3]);
    assert_eq!(
        records
            .iter()
            .map(|r| r.counts.rx_bytes)
            .collect::<Vec<_>>(),
        [20, 20, 30]
    );
    assert!(run.table.is_empty() && run.table.idle_checks.is_empty());
}

#[test]
fn an_evicted_flow_ends_at_once_and_comes_back_as_a_new_record() {
    let mut run = Run::new(15, 60);
    assert!(run.step(&[udp(1, 100), tcp(2, 50, FIN_ACK)]).is_empty());
    let mut out = Vec::new();
    run.table
        .end_evicted([id(17, 1), id(6, 2), id(17, 9)], &mut out);
    // The two open flows end with what they moved; an unknown one is skipped.
    assert_eq!(reasons(&out), [EndReason::Evicted, EndReason::Evicted]);
    assert_eq!(bytes(&out), 150);
    assert_eq!(out[0].end_reason.label(), "evicted");
    assert!(run.table.is_empty());
    // Its closing and idle checks find nothing; its key moving again is a new flow.
    assert!(run.quiet(1).is_empty());
    assert!(run.step(&[udp(1, 70)]).is_empty());
    let records = run.stop();
    assert_eq!(reasons(&records), [EndReason::Stop]);
    assert_eq!(bytes(&records), 70);
    assert!(
        run.quiet(20).is_empty(),
        "no check of the evicted record is left"
    );
}

#[test]
fn a_flow_ended_and_seen_again_is_a_new_record_counted_once() {
    let mut run = Run::new(3, 60);
    // First incarnation: ends by FIN in interval 2.
    run.step(&[tcp(1, 100, FIN_ACK)]);
    let first = run.quiet(1);
    assert_eq!(reasons(&first), [EndReason::Fin]);
    // Recreated (the kernel evicted it, or the port was reused): the old idle check,
    // due at 4 s, must not end the new incarnation, which moved at 3 and 4.
    run.step(&[tcp(1, 7, ACK)]);
    assert!(run.step(&[tcp(1, 8, ACK)]).is_empty());
    assert!(run.quiet(2).is_empty(), "idle only from 7 s");
    let second = run.quiet(1);
    assert_eq!(reasons(&second), [EndReason::Idle]);
    assert_eq!(bytes(&first), 100);
    assert_eq!(
        bytes(&second),
        15,
        "the second record counts only its own traffic"
    );
    assert_eq!(second[0].start, Run::at(2));
    assert!(run.quiet(10).is_empty() && run.stop().is_empty());
}

#[test]
fn a_record_keeps_the_worst_verdict_and_a_known_process() {
    let mut run = Run::new(15, 60);
    let suspicious = facts(Verdict::Suspicious, Owner::Process(miner()));
    let later = facts(Verdict::Business, Owner::Unresolved);
    run.step_with(vec![(udp(1, 10), suspicious.clone())]);
    run.step_with(vec![(udp(1, 10), later)]);
    let records = run.stop();
    assert_eq!(records[0].facts, suspicious);
}

#[test]
fn the_wire_form_is_a_v2_flow_record() {
    let mut run = Run::new(15, 60);
    run.step(&[tcp(1, 10, FIN_ACK)]);
    let records = run.quiet(1);
    let line = serde_json::to_string(&records[0].wire()).unwrap();
    assert_eq!(
        line,
        r#"{"iface":"eth0","proto":"tcp","local_ip":"10.0.0.1","local_port":1,"remote_ip":"203.0.113.9","remote_port":443,"start":"2027-01-15T08:00:00.000Z","end":"2027-01-15T08:00:01.000Z","end_reason":"fin","rx_packets":1,"rx_bytes":10,"tx_packets":1,"tx_bytes":10,"tcp_flags":17,"remote_local":true,"owner":"none","verdict":"business","no_process":"kernel_answered"}"#
    );
}

#[test]
fn an_owner_answered_after_the_flow_last_moved_is_its_record_s() {
    let mut run = Run::new(15, 60);
    let flow = tcp(1, 10, 0x10);
    run.step_with(vec![(
        flow.clone(),
        facts(Verdict::Business, Owner::Resolving),
    )]);
    let miner = facts(Verdict::Suspicious, Owner::Process(miner()));
    assert!(
        run.answered(vec![(flow.id.clone(), miner.clone())])
            .is_empty()
    );
    let records = run.stop();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].facts, miner);
}
