//! `AlertEngine`: conditions, episodes (start, reminder, end) and grouping.

use std::{net::IpAddr, sync::Arc, time::Duration};

use super::*;
use crate::{
    enrich::{
        geo::Location,
        sockets::Owner,
        verdict::{Reason, Verdict},
    },
    sinks::alerts::{
        AlertConfig, AlertEngine, AlertKind, AlertWarning, Direction, Phase, RateLimit,
    },
};

#[test]
fn foreign_traffic_over_the_threshold_starts_once_and_ends_once() {
    let mut engine = AlertEngine::new(home("DE"));
    let heavy = || {
        (
            vec![flow("203.0.113.7", 443, MIB, MIB)],
            vec![in_country("CN")],
        )
    };

    let (flows, facts) = heavy();
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::Start)]);
    let start = &alerts[0];
    assert_eq!(start.since, at(0));
    assert_eq!(start.at, at(1));
    assert_eq!(start.bytes, 2 * MIB);
    assert_eq!(start.country, Some(cc("CN")));
    assert_eq!(start.threshold_bytes, Some(MIB));
    assert_eq!(
        start.flow.as_ref().unwrap().remote_ip,
        "203.0.113.7".parse::<IpAddr>().unwrap()
    );

    for second in 2..=4 {
        let (flows, facts) = heavy();
        assert!(
            engine
                .observe(&enriched(snapshot(second, flows), &facts))
                .is_empty()
        );
    }
    assert_eq!(engine.active(), 1);

    // Under the threshold for one whole interval: it has ended.
    let alerts = engine.observe(&enriched(
        snapshot(5, vec![flow("203.0.113.7", 443, 10, 10)]),
        &[in_country("CN")],
    ));
    assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::End)]);
    let end = &alerts[0];
    assert_eq!((end.since, end.at), (at(0), at(5)));
    assert_eq!(end.bytes, 20, "the interval's figure, under the threshold");
    assert_eq!(end.country, Some(cc("CN")));
    assert_eq!(engine.active(), 0);

    assert!(
        engine
            .observe(&enriched(snapshot(6, vec![]), &[]))
            .is_empty()
    );
    // Back over it: a new episode.
    let (flows, facts) = heavy();
    let again = engine.observe(&enriched(snapshot(7, flows), &facts));
    assert_eq!(phases(&again), [(AlertKind::Foreign, Phase::Start)]);
    assert_eq!(again[0].since, at(6));
}

#[test]
fn an_end_comes_when_the_remote_is_gone_too() {
    let mut engine = AlertEngine::new(home("DE"));
    engine.observe(&enriched(
        snapshot(1, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
        &[in_country("CN")],
    ));
    let alerts = engine.observe(&enriched(snapshot(2, vec![]), &[]));
    assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::End)]);
    assert_eq!(alerts[0].bytes, 0);
}

#[test]
fn a_condition_absent_for_less_than_clear_is_one_episode() {
    let config = AlertConfig {
        clear: Duration::from_secs(3),
        ..home("DE")
    };
    let mut engine = AlertEngine::new(config);
    let mut raised = Vec::new();
    // Over the threshold in seconds 1, 3 and 4 (gaps of one second), then silent.
    for second in 1..=9 {
        let (flows, facts) = if [1, 3, 4].contains(&second) {
            (
                vec![flow("198.51.100.7", 443, 0, 2 * MIB)],
                vec![in_country("NL")],
            )
        } else {
            (vec![], vec![])
        };
        raised.extend(engine.observe(&enriched(snapshot(second, flows), &facts)));
    }
    assert_eq!(
        phases(&raised),
        [
            (AlertKind::Foreign, Phase::Start),
            (AlertKind::Foreign, Phase::End)
        ]
    );
    // The end comes once three silent seconds (5, 6, 7) have passed.
    assert_eq!(raised[1].at, at(7));
}

#[test]
fn reminders_come_every_repeat_while_it_lasts() {
    let config = AlertConfig {
        repeat: Duration::from_secs(3),
        ..home("DE")
    };
    let mut engine = AlertEngine::new(config);
    let mut raised = Vec::new();
    for second in 1..=10 {
        let alerts = engine.observe(&enriched(
            snapshot(second, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
            &[in_country("CN")],
        ));
        raised.extend(alerts.into_iter().map(|a| (a.at, a.phase, a.since)));
    }
    assert_eq!(
        raised,
        [
            (at(1), Phase::Start, at(0)),
            (at(4), Phase::Reminder, at(0)),
            (at(7), Phase::Reminder, at(0)),
            (at(10), Phase::Reminder, at(0)),
        ]
    );
}

#[test]
fn a_wall_clock_step_neither_hurries_a_reminder_nor_changes_its_duration() {
    let config = AlertConfig {
        repeat: Duration::from_secs(3),
        ..home("DE")
    };
    let mut engine = AlertEngine::new(config);
    let mut raised = Vec::new();
    // The wall clock goes back an hour before second 5; the intervals stay a second.
    for second in 1..=7 {
        let mut interval = snapshot(second, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]);
        if second >= 5 {
            interval.at -= Duration::from_secs(3600);
        }
        let alerts = engine.observe(&enriched(interval, &[in_country("CN")]));
        raised.extend(alerts.into_iter().map(|a| (a.phase, a.since, a.duration)));
    }
    let secs = Duration::from_secs;
    assert_eq!(
        raised,
        [
            (Phase::Start, at(0), secs(1)),
            (Phase::Reminder, at(0), secs(4)),
            (Phase::Reminder, at(0), secs(7)),
        ]
    );
}

#[test]
fn nothing_under_or_at_the_threshold() {
    let mut engine = AlertEngine::new(home("DE"));
    for second in 1..=3 {
        let alerts = engine.observe(&enriched(
            snapshot(second, vec![flow("203.0.113.7", 443, MIB / 2, MIB / 2)]),
            &[in_country("CN")],
        ));
        assert!(alerts.is_empty(), "{alerts:?}");
    }
    assert_eq!(engine.active(), 0);
}

#[test]
fn flows_of_one_remote_add_up_and_different_remotes_do_not() {
    let mut engine = AlertEngine::new(home("DE"));
    let flows = vec![
        flow("203.0.113.7", 443, 300_000, 300_000),
        flow("203.0.113.8", 443, 600_000, 0),
        flow("203.0.113.7", 8443, 600_000, 0),
    ];
    let facts = vec![in_country("CN"), in_country("CN"), in_country("CN")];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].bytes, 1_200_000);
    assert_eq!(alerts[0].flows, 2);
    // Named by its largest flow (the first of equal ones).
    assert_eq!(alerts[0].flow.as_ref().unwrap().remote_port, 443);
}

#[test]
fn nothing_from_home_local_or_unknown_places() {
    let mut engine = AlertEngine::new(home("DE,AT"));
    let flows = vec![
        flow("198.51.100.1", 443, 5 * MIB, 0),
        flow("198.51.100.2", 443, 5 * MIB, 0),
        flow("192.168.1.9", 443, 5 * MIB, 0),
        flow("198.51.100.3", 443, 5 * MIB, 0),
    ];
    let facts = vec![
        in_country("DE"),
        in_country("AT"),
        business(Location::Local),
        business(Location::Unknown),
    ];
    for second in 1..=3 {
        assert!(
            engine
                .observe(&enriched(snapshot(second, flows.clone()), &facts))
                .is_empty()
        );
    }
}

#[test]
fn nothing_foreign_without_a_declared_home() {
    let mut engine = AlertEngine::new(AlertConfig {
        clear: Duration::ZERO,
        ..AlertConfig::default()
    });
    let alerts = engine.observe(&enriched(
        snapshot(1, vec![flow("203.0.113.7", 443, 50 * MIB, 0)]),
        &[in_country("CN")],
    ));
    assert!(alerts.is_empty());
}

#[test]
fn a_suspicious_process_starts_once_and_ends_when_silent() {
    let mut engine = AlertEngine::new(AlertConfig {
        clear: Duration::ZERO,
        ..AlertConfig::default()
    });
    let owner = Owner::Process(miner());
    let cn = Location::Country(cc("CN"));
    let flows = vec![
        flow("203.0.113.7", 3333, 100, 900),
        flow("203.0.113.9", 443, 10, 10),
        flow("198.51.100.5", 443, 10, 10),
    ];
    let facts = vec![
        suspicious(
            owner.clone(),
            cn,
            vec![
                Reason::ExeInTempDir { dir: "/tmp".into() },
                Reason::MiningPort { port: 3333 },
            ],
        ),
        suspicious(
            owner.clone(),
            cn,
            vec![Reason::ExeInTempDir { dir: "/tmp".into() }],
        ),
        business(Location::Unknown),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows.clone()), &facts));
    assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::Start)]);
    let start = &alerts[0];
    assert_eq!(start.process.as_ref().unwrap().pid, 4242);
    assert_eq!((start.bytes, start.flows), (1020, 2));
    assert_eq!(start.flow.as_ref().unwrap().remote_port, 3333);
    assert_eq!(start.verdict, Some(Verdict::Suspicious));
    assert_eq!(
        start.reasons,
        [
            "executable under /tmp",
            "remote port 3333 is a common mining-pool port"
        ]
    );

    assert!(
        engine
            .observe(&enriched(snapshot(2, flows), &facts))
            .is_empty()
    );
    let alerts = engine.observe(&enriched(snapshot(3, vec![]), &[]));
    assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::End)]);
    assert_eq!(alerts[0].process.as_ref().unwrap().comm, "xmrig");
    assert!(
        engine
            .observe(&enriched(snapshot(4, vec![]), &[]))
            .is_empty()
    );
}

#[test]
fn suspicious_flows_without_a_process_are_keyed_by_remote_endpoint() {
    let mut engine = AlertEngine::new(AlertConfig {
        clear: Duration::ZERO,
        ..AlertConfig::default()
    });
    let pool = || {
        suspicious(
            Owner::NoLocalSocket,
            Location::Unknown,
            vec![Reason::MiningPort { port: 3333 }, Reason::NoLocalProcess],
        )
    };
    let flows = vec![
        flow("203.0.113.7", 3333, 10, 10),
        flow("203.0.113.7", 3333, 10, 10),
        flow("203.0.113.8", 3333, 10, 10),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &[pool(), pool(), pool()]));
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.process.is_none()));
    assert_eq!(alerts[0].flows, 2);
    // Only one endpoint goes on.
    let alerts = engine.observe(&enriched(
        snapshot(2, vec![flow("203.0.113.8", 3333, 10, 10)]),
        &[pool()],
    ));
    assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::End)]);
    assert_eq!(
        alerts[0].flow.as_ref().unwrap().remote_ip,
        "203.0.113.7".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn a_flow_whose_owner_is_still_resolving_raises_no_suspicious_alert() {
    let mut engine = AlertEngine::new(AlertConfig::default());
    let pool = |owner| {
        suspicious(
            owner,
            Location::Unknown,
            vec![Reason::MiningPort { port: 3333 }],
        )
    };
    let flows = || vec![flow("203.0.113.7", 3333, 10, 10)];
    let alerts = engine.observe(&enriched(snapshot(1, flows()), &[pool(Owner::Resolving)]));
    assert!(alerts.is_empty(), "{alerts:?}");
    // Its owner arrives: the alert names the process, once.
    let alerts = engine.observe(&enriched(
        snapshot(2, flows()),
        &[pool(Owner::Process(miner()))],
    ));
    assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::Start)]);
    assert_eq!(alerts[0].process.as_ref().unwrap().comm, "xmrig");
}

#[test]
fn rate_in_bits_per_second_over_and_under() {
    let mut engine = rate_engine(RateLimit::BitsPerSecond(800_000_000));
    let second = Duration::from_secs(1);
    // 100 MB in one second is exactly 800 Mbit/s: not over.
    assert!(
        engine
            .observe(&enriched(link(1, second, 0, 100_000_000), &[]))
            .is_empty()
    );
    let alerts = engine.observe(&enriched(link(2, second, 0, 100_000_001), &[]));
    assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::Start)]);
    assert_eq!(alerts[0].direction, Some(Direction::Tx));
    assert_eq!(alerts[0].rate_bps, Some(800_000_008));
    assert_eq!(alerts[0].limit_bps, Some(800_000_000));
    // The same bytes over two seconds are half the rate: under, so it ends.
    let alerts = engine.observe(&enriched(
        link(4, 2 * second, 150_000_000, 150_000_000),
        &[],
    ));
    assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::End)]);
    assert_eq!(alerts[0].rate_bps, Some(600_000_000));
    // Both directions are watched, each under its own key.
    let alerts = engine.observe(&enriched(link(5, second, 200_000_000, 200_000_000), &[]));
    let directions: Vec<_> = alerts.iter().map(|a| a.direction).collect();
    assert_eq!(directions, [Some(Direction::Rx), Some(Direction::Tx)]);
    assert!(engine.take_warnings().is_empty());
}

#[test]
fn rate_as_a_share_of_the_link() {
    let mut engine = rate_engine(RateLimit::PercentOfLink(90.0));
    engine.set_link_speed("eth0", Some(1_000_000_000));
    let second = Duration::from_secs(1);
    // 880 Mbit/s of a 1 Gbit/s link is under 90%.
    assert!(
        engine
            .observe(&enriched(link(1, second, 110_000_000, 0), &[]))
            .is_empty()
    );
    let alerts = engine.observe(&enriched(link(2, second, 120_000_000, 0), &[]));
    assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::Start)]);
    let alert = &alerts[0];
    assert_eq!(alert.limit_bps, Some(900_000_000));
    assert_eq!(alert.link_bps, Some(1_000_000_000));
    assert_eq!(
        alert.to_string(),
        "ALERT start rate: eth0 rx 960 Mbit/s > 900 Mbit/s (90% of 1 Gbit/s link)"
    );
    assert!(engine.take_warnings().is_empty());
}

#[test]
fn a_share_of_an_unknown_link_speed_does_not_apply_and_warns_once() {
    let mut engine = rate_engine(RateLimit::PercentOfLink(50.0));
    engine.set_link_speed("eth0", None);
    let second = Duration::from_secs(1);
    for n in 1..=3 {
        assert!(
            engine
                .observe(&enriched(link(n, second, u64::MAX / 16, 0), &[]))
                .is_empty()
        );
    }
    let warnings = engine.take_warnings();
    assert_eq!(
        warnings,
        [AlertWarning::UnknownLinkSpeed {
            iface: Arc::from("eth0"),
            percent: 50.0
        }]
    );
    assert!(warnings[0].to_string().contains("--alert-rate 800M"));
    assert!(engine.take_warnings().is_empty());
}

#[test]
fn a_zero_length_interval_changes_nothing() {
    let mut engine = rate_engine(RateLimit::BitsPerSecond(1));
    assert!(
        engine
            .observe(&enriched(link(1, Duration::ZERO, 10, 10), &[]))
            .is_empty()
    );
    assert_eq!(engine.active(), 0);
}

/// The runbook's remote, in NL (home: DE), and the reasons its flows carry.
const SHARED: &str = "198.51.100.20";

fn in_nl(owner: Owner, verdict: Verdict, reasons: Vec<Reason>) -> Facts {
    let mut facts = suspicious(owner, Location::Country(cc("NL")), reasons);
    facts.judgement.verdict = verdict;
    facts.judgement.foreign = true;
    facts
}

fn foreign_reason(raises_risk: bool) -> Reason {
    Reason::Foreign {
        country: cc("NL"),
        home: "DE".parse().unwrap(),
        raises_risk,
    }
}

fn iperf3() -> Owner {
    Owner::Process(crate::sinks::fixtures::iperf3(3100))
}

#[test]
fn a_foreign_alert_carries_the_reasons_of_the_flows_it_names() {
    let mut engine = AlertEngine::new(home("DE"));
    // iperf3's upload, and a flow to the same remote that no local process owns.
    let flows = vec![
        flow(SHARED, 5201, 10_000, 2 * MIB),
        flow(SHARED, 0, 1_000, 1_000),
    ];
    let facts = vec![
        in_nl(iperf3(), Verdict::Business, vec![foreign_reason(false)]),
        in_nl(
            Owner::NoLocalSocket,
            Verdict::Business,
            vec![Reason::NoLocalProcess, foreign_reason(false)],
        ),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::Start)]);
    let alert = &alerts[0];
    assert_eq!(alert.process.as_ref().unwrap().comm, "iperf3");
    assert_eq!(alert.reasons, ["remote in NL, outside home countries DE"]);
    // The figures stay the remote's, every flow to it.
    assert_eq!((alert.bytes, alert.flows), (2 * MIB + 12_000, 2));

    // On equal verdicts a process is named before flows without one, even smaller.
    let mut engine = AlertEngine::new(home("DE"));
    let flows = vec![
        flow(SHARED, 5201, 10_000, 2 * MIB),
        flow(SHARED, 0, 3 * MIB, 0),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    assert_eq!(alerts[0].process.as_ref().unwrap().comm, "iperf3");
    assert_eq!(alerts[0].flow.as_ref().unwrap().remote_port, 5201);
    assert_eq!(
        alerts[0].reasons,
        ["remote in NL, outside home countries DE"]
    );
}

#[test]
fn a_foreign_alert_names_the_worst_verdict_process_first() {
    let mut engine = AlertEngine::new(home("DE"));
    let miner_reasons = vec![
        Reason::ExeInTempDir { dir: "/tmp".into() },
        Reason::MiningPort { port: 3333 },
        foreign_reason(true),
    ];
    let flows = vec![
        flow(SHARED, 5201, 10_000, 2 * MIB),
        flow(SHARED, 3333, 1_000, 300_000),
        flow(SHARED, 0, 1_000, 1_000),
    ];
    let facts = vec![
        in_nl(iperf3(), Verdict::Business, vec![foreign_reason(false)]),
        in_nl(
            Owner::Process(miner()),
            Verdict::Suspicious,
            miner_reasons.clone(),
        ),
        in_nl(
            Owner::NoLocalSocket,
            Verdict::Business,
            vec![Reason::NoLocalProcess, foreign_reason(false)],
        ),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    let foreign = alerts
        .iter()
        .find(|alert| alert.kind == AlertKind::Foreign)
        .expect("a foreign alert");
    assert_eq!(foreign.process.as_ref().unwrap().pid, 4242);
    assert_eq!(foreign.flow.as_ref().unwrap().remote_port, 3333);
    assert_eq!(foreign.verdict, Some(Verdict::Suspicious));
    let expected: Vec<String> = miner_reasons.iter().map(Reason::to_string).collect();
    assert_eq!(foreign.reasons, expected);
    assert!(
        foreign
            .to_string()
            .contains("process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"),
        "{foreign}"
    );

    // Flows without a process that are worse than every process's name the alert,
    // with their own reasons, not the cloud agent's.
    let mut engine = AlertEngine::new(home("DE"));
    let agent = Owner::Process(Arc::new(crate::enrich::sockets::ProcessInfo {
        pid: 812,
        comm: "barad_agent".into(),
        exe: None,
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: "root".into(),
        cmdline: "barad_agent".into(),
    }));
    let facts = vec![
        in_nl(
            agent,
            Verdict::CloudAgent,
            vec![Reason::CloudAgent {
                program: "barad_agent".into(),
                provider: "Tencent Cloud".into(),
            }],
        ),
        in_nl(
            Owner::NoLocalSocket,
            Verdict::Suspicious,
            vec![Reason::MiningPort { port: 3333 }, Reason::NoLocalProcess],
        ),
    ];
    let flows = vec![
        flow(SHARED, 443, 10_000, 2 * MIB),
        flow(SHARED, 3333, 1_000, 1_000),
    ];
    let alerts = engine.observe(&enriched(snapshot(1, flows), &facts));
    let foreign = alerts
        .iter()
        .find(|alert| alert.kind == AlertKind::Foreign)
        .expect("a foreign alert");
    assert!(foreign.process.is_none(), "{foreign}");
    assert_eq!(foreign.flow.as_ref().unwrap().remote_port, 3333);
    assert_eq!(
        foreign.reasons,
        [
            "remote port 3333 is a common mining-pool port",
            "no local process (forwarded, raw or closed): judged by the flow"
        ]
    );
}
