//! `Alert`: its line of text and its log record.

use std::time::Duration;

use super::*;
use crate::{
    enrich::{geo::Location, sockets::Owner, verdict::Reason},
    sinks::alerts::{Alert, AlertEngine, AlertKind, Phase, RateLimit},
};

use serde_json::Value;

/// One interval of a miner in CN moving 4.2 MiB: a foreign and a suspicious start.
fn mining_in_cn(engine: &mut AlertEngine) -> Vec<Alert> {
    let facts = suspicious(
        Owner::Process(miner()),
        Location::Country(cc("CN")),
        vec![Reason::MiningPort { port: 3333 }],
    );
    engine.observe(&enriched(
        snapshot(1, vec![flow("203.0.113.7", 3333, 4 * MIB, MIB / 5)]),
        &[facts],
    ))
}

/// A 1 Gbit/s link sending at line rate, over a 90% limit: a rate start.
fn line_rate_over_90_percent() -> Vec<Alert> {
    let mut engine = rate_engine(RateLimit::PercentOfLink(90.0));
    engine.set_link_speed("eth0", Some(1_000_000_000));
    engine.observe(&enriched(
        link(1, Duration::from_secs(1), 0, 125_000_000),
        &[],
    ))
}

#[test]
fn alerts_read_as_one_line_and_log_as_one_record() {
    let mut engine = AlertEngine::new(home("DE"));
    let alerts = mining_in_cn(&mut engine);
    assert_eq!(
        phases(&alerts),
        [
            (AlertKind::Foreign, Phase::Start),
            (AlertKind::Suspicious, Phase::Start)
        ]
    );
    assert_eq!(
        alerts[0].to_string(),
        "ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, \
         process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"
    );
    assert_eq!(
        alerts[1].to_string(),
        "ALERT start suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> \
         203.0.113.7:3333 (CN), 4.2 MiB this interval: remote port 3333 is a common \
         mining-pool port"
    );

    let line: Value = serde_json::from_str(&alerts[0].to_json_line(SCHEMA_VERSION)).unwrap();
    assert_eq!(line["v"], 1);
    assert_eq!(line["type"], "alert");
    assert_eq!(line["ts"], "2027-01-15T08:00:01.000Z");
    assert_eq!(line["kind"], "foreign");
    assert_eq!(line["phase"], "start");
    assert_eq!(line["since"], "2027-01-15T08:00:00.000Z");
    assert_eq!(line["duration_s"], 1.0);
    assert_eq!(line["interval_s"], 1.0);
    assert_eq!(line["iface"], "eth0");
    assert_eq!(line["proto"], "tcp");
    assert_eq!(line["remote_ip"], "203.0.113.7");
    assert_eq!(line["remote_port"], 3333);
    assert_eq!(line["country"], "CN");
    assert_eq!(line["flows"], 1);
    assert_eq!(line["pid"], 4242);
    assert_eq!(line["exe"], "/tmp/.x/xmrig");
    assert_eq!(line["user"], "root");
    assert_eq!(line["verdict"], "suspicious");
    assert_eq!(line["bytes"], 4 * MIB + MIB / 5);
    assert_eq!(line["threshold_bytes"], MIB);
    assert_eq!(
        line["reasons"][0],
        "remote port 3333 is a common mining-pool port"
    );
    assert_eq!(line["message"], alerts[0].to_string());
    for absent in [
        "direction",
        "rate_bps",
        "limit_bps",
        "limit_percent",
        "link_bps",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }

    let alerts = engine.observe(&enriched(snapshot(2, vec![]), &[]));
    assert_eq!(
        alerts[0].to_string(),
        "ALERT end foreign: 203.0.113.7 (CN) 0 B this interval <= 1 MiB, after 2s, \
         process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"
    );
    assert_eq!(
        alerts[1].to_string(),
        "ALERT end suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> \
         203.0.113.7:3333 (CN), no suspicious traffic this interval, after 2s"
    );
}

#[test]
fn rate_records_carry_their_limit() {
    let alerts = line_rate_over_90_percent();
    let line: Value = serde_json::from_str(&alerts[0].to_json_line(SCHEMA_VERSION)).unwrap();
    assert_eq!(line["kind"], "rate");
    assert_eq!(line["direction"], "tx");
    assert_eq!(line["rate_bps"], 1_000_000_000u64);
    assert_eq!(line["limit_bps"], 900_000_000u64);
    assert_eq!(line["limit_percent"], 90.0);
    assert_eq!(line["link_bps"], 1_000_000_000u64);
    for absent in ["remote_ip", "flows", "pid", "reasons", "threshold_bytes"] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
}

#[test]
fn alert_lines_are_pinned_byte_for_byte() {
    let mut engine = AlertEngine::new(home("DE"));
    let alerts = mining_in_cn(&mut engine);
    let rate = line_rate_over_90_percent();
    let lines = [
        alerts[0].to_json_line(SCHEMA_VERSION),
        alerts[1].to_json_line(SCHEMA_VERSION),
        rate[0].to_json_line(SCHEMA_VERSION),
    ];
    assert_eq!(
        lines,
        [
            r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"foreign","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","proto":"tcp","local_ip":"10.0.0.1","local_port":40000,"remote_ip":"203.0.113.7","remote_port":3333,"country":"CN","flows":1,"pid":4242,"comm":"xmrig","exe":"/tmp/.x/xmrig","user":"root","verdict":"suspicious","bytes":4404019,"threshold_bytes":1048576,"reasons":["remote port 3333 is a common mining-pool port"],"message":"ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"}"#,
            r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"suspicious","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","proto":"tcp","local_ip":"10.0.0.1","local_port":40000,"remote_ip":"203.0.113.7","remote_port":3333,"country":"CN","flows":1,"pid":4242,"comm":"xmrig","exe":"/tmp/.x/xmrig","user":"root","verdict":"suspicious","bytes":4404019,"reasons":["remote port 3333 is a common mining-pool port"],"message":"ALERT start suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> 203.0.113.7:3333 (CN), 4.2 MiB this interval: remote port 3333 is a common mining-pool port"}"#,
            r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"rate","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","direction":"tx","bytes":125000000,"rate_bps":1000000000,"limit_bps":900000000,"limit_percent":90.0,"link_bps":1000000000,"message":"ALERT start rate: eth0 tx 1 Gbit/s > 900 Mbit/s (90% of 1 Gbit/s link)"}"#,
        ]
    );
}

#[test]
/// The alert's text takes its figures from `units`: these are the ones it prints.
fn human_figures_are_short() {
    use crate::units::{bits_per_second, bytes, clock};
    assert_eq!(bytes(0), "0 B");
    assert_eq!(bytes(1023), "1023 B");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(MIB), "1 MiB");
    assert_eq!(bits_per_second(950_000_000), "950 Mbit/s");
    assert_eq!(bits_per_second(1_234_000_000), "1.2 Gbit/s");
    assert_eq!(clock(Duration::from_secs(42)), "42s");
    assert_eq!(clock(Duration::from_secs(303)), "5m03s");
    assert_eq!(clock(Duration::from_secs(7500)), "2h05m");
}
