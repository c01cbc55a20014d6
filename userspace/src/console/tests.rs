//! Snapshots of what the console draws (ratatui's TestBackend, pinned with insta) at
//! 80x24 and 160x48, driven by synthetic intervals and keys: no terminal, no clock.
//!
//! The scene: a miner copied into /tmp sending to a mining pool abroad, the cloud
//! provider's agent, nginx serving a client, forwarded traffic with no local process,
//! and sshd over IPv6 to an address the database does not know.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use ratatui::{Terminal, backend::TestBackend};

use super::{Console, Key, Setup, State, Units};
use crate::{
    cgroups::Cgroup,
    datapath::{DirectionTotals, FlowDelta, FlowId, InterfaceTotals, Protocol, Snapshot},
    enrich::{
        EnrichedSnapshot, Facts,
        geo::{CountryCode, HomeCountries, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Reason, Verdict},
    },
    flow::{GroupBy, GroupKey},
};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
const MINER_POOL: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const CLOUD_API: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const WEB_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 44));
const ROUTED: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

fn ssh_client() -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x5))
}

fn country(code: &str) -> Location {
    Location::Country(CountryCode::new(code).unwrap())
}

fn home() -> HomeCountries {
    "DE".parse().unwrap()
}

fn process(pid: u32, comm: &str, user: &str, exe: &str, cmdline: &str) -> Owner {
    in_cgroup(pid, comm, user, exe, cmdline, Cgroup::default())
}

/// A process in `cgroup`.
fn in_cgroup(pid: u32, comm: &str, user: &str, exe: &str, cmdline: &str, cgroup: Cgroup) -> Owner {
    Owner::Process(Arc::new(ProcessInfo {
        pid,
        comm: comm.into(),
        exe: Some(PathBuf::from(exe)),
        exe_deleted: false,
        cgroup,
        uid: if user == "root" { 0 } else { 33 },
        user: user.into(),
        cmdline: cmdline.into(),
    }))
}

/// One flow of the scene: its id, its facts, and its bytes (tx, rx) in second `t`.
struct Actor {
    id: FlowId,
    facts: Facts,
    bytes: fn(u32) -> (u64, u64),
}

fn flow(proto: u8, local_port: u16, remote: IpAddr, remote_port: u16) -> FlowId {
    FlowId {
        iface: Arc::from("eth0"),
        proto: Protocol(proto),
        local_ip: if remote.is_ipv4() {
            LOCAL
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x1))
        },
        local_port,
        remote_ip: remote,
        remote_port,
    }
}

fn scene() -> Vec<Actor> {
    // The miner runs in a container, nginx as a systemd service.
    let miner = in_cgroup(
        4242,
        "kworker/0:2",
        "nobody",
        "/tmp/.x/xmrig",
        "/tmp/.x/xmrig -o 198.51.100.7:3333 -u 4BrL51JCc9NGQ71kWhnYoDRffsDZy7m1HUU7MRU4nUMXAHNFBEJhkTZV9HdaL4gfuNBxLPc3BeMkLGaPbF5vWtANQni58KYZqH43YSDeqY",
        Cgroup::of_path(
            "/system.slice/docker-4f0c1e2a9b3d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a.scope",
        ),
    );
    let agent = process(
        812,
        "barad_agent",
        "root",
        "/usr/local/qcloud/monitor/barad/bin/barad_agent",
        "barad_agent",
    );
    let nginx = in_cgroup(
        1234,
        "nginx",
        "www-data",
        "/usr/sbin/nginx",
        "nginx: worker process",
        Cgroup::of_path("/system.slice/nginx.service"),
    );
    let sshd = process(901, "sshd", "root", "/usr/sbin/sshd", "sshd: admin [priv]");
    let business = |reasons: Vec<Reason>| Judgement {
        verdict: Verdict::Business,
        reasons,
        foreign: false,
    };
    vec![
        Actor {
            id: flow(TCP, 51234, MINER_POOL, 3333),
            facts: Facts {
                owner: miner,
                location: country("NL"),
                judgement: Judgement {
                    verdict: Verdict::Suspicious,
                    reasons: vec![
                        Reason::ExeInTempDir {
                            dir: PathBuf::from("/tmp"),
                        },
                        Reason::KernelThreadName {
                            name: "kworker/0:2".into(),
                        },
                        Reason::MiningPort { port: 3333 },
                        Reason::Foreign {
                            country: CountryCode::new("NL").unwrap(),
                            home: home(),
                            raises_risk: true,
                        },
                    ],
                    foreign: true,
                },
            },
            // Ramps up: its 2 s rate is above its 40 s rate.
            bytes: |t| {
                if t >= 8 {
                    (1_200_000, 20_000)
                } else {
                    (300_000, 5_000)
                }
            },
        },
        Actor {
            id: flow(TCP, 40100, CLOUD_API, 443),
            facts: Facts {
                owner: agent,
                location: country("DE"),
                judgement: Judgement {
                    verdict: Verdict::CloudAgent,
                    reasons: vec![Reason::CloudAgent {
                        program: "barad_agent".into(),
                        provider: "Tencent Cloud".into(),
                    }],
                    foreign: false,
                },
            },
            bytes: |_| (400_000, 9_000),
        },
        Actor {
            id: flow(TCP, 443, WEB_CLIENT, 50001),
            facts: Facts {
                owner: nginx.clone(),
                location: country("US"),
                judgement: Judgement {
                    verdict: Verdict::Business,
                    reasons: vec![Reason::Foreign {
                        country: CountryCode::new("US").unwrap(),
                        home: home(),
                        raises_risk: false,
                    }],
                    foreign: true,
                },
            },
            // Was busy, now quiet: its 40 s rate is above its 2 s rate.
            bytes: |t| {
                if t < 6 {
                    (1_500_000, 30_000)
                } else {
                    (60_000, 4_000)
                }
            },
        },
        Actor {
            id: flow(TCP, 443, WEB_CLIENT, 50002),
            facts: Facts {
                owner: nginx,
                location: country("US"),
                judgement: Judgement {
                    verdict: Verdict::Business,
                    reasons: vec![],
                    foreign: true,
                },
            },
            bytes: |_| (50_000, 2_000),
        },
        Actor {
            id: flow(ICMP, 0, ROUTED, 0),
            facts: Facts {
                owner: Owner::NoLocalSocket,
                location: Location::Local,
                judgement: business(vec![Reason::NoLocalProcess]),
            },
            bytes: |_| (12_000, 12_000),
        },
        Actor {
            id: flow(TCP, 22, ssh_client(), 61000),
            facts: Facts {
                owner: sshd,
                location: Location::Unknown,
                judgement: business(vec![]),
            },
            bytes: |_| (6_000, 1_500),
        },
        Actor {
            id: flow(UDP, 53124, v4(9, 9, 9, 9), 53),
            facts: Facts {
                owner: Owner::Unresolved,
                location: country("CH"),
                judgement: business(vec![]),
            },
            bytes: |t| if t % 3 == 0 { (200, 400) } else { (0, 0) },
        },
    ]
}

fn setup() -> Setup {
    Setup {
        interfaces: vec!["eth0 tc".into()],
        geo: "DB-IP Lite country (embedded, 2026-11)".into(),
        attribution: Some(crate::enrich::geo::DBIP_CREDIT),
        home: home(),
        recording: None,
    }
}

/// Second `t` of the scene as a snapshot, with the facts of its flows.
fn interval(actors: &[Actor], t: u32) -> EnrichedSnapshot {
    let mut flows = Vec::new();
    let mut facts = Vec::new();
    let (mut tx_total, mut rx_total) = (0, 0);
    for actor in actors {
        let (tx, rx) = (actor.bytes)(t);
        if tx + rx == 0 {
            continue;
        }
        flows.push(FlowDelta {
            id: actor.id.clone(),
            rx_packets: rx.div_ceil(1000),
            rx_bytes: rx,
            tx_packets: tx.div_ceil(1400),
            tx_bytes: tx,
            tcp_flags: 0x18,
        });
        facts.push(actor.facts.clone());
        tx_total += tx;
        rx_total += rx;
    }
    // Unattributed: ARP frames of 60 bytes.
    let direction = |bytes: u64, unattributed: u64| DirectionTotals {
        packets: bytes / 1000 + unattributed / 60,
        bytes: bytes + unattributed,
        unattributed_packets: unattributed / 60,
        unattributed_bytes: unattributed,
        non_ip_packets: unattributed / 60,
        non_ip_bytes: unattributed,
        ..DirectionTotals::default()
    };
    let snapshot = Snapshot {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + u64::from(t)),
        interval: Duration::from_secs(1),
        flows,
        // ARP and other frames in no flow: the totals are the interface's, exact.
        interfaces: vec![InterfaceTotals {
            iface: Arc::from("eth0"),
            rx: direction(rx_total, 120),
            tx: direction(tx_total, 60),
        }],
        overflow: Vec::new(),
    };
    EnrichedSnapshot::from_parts(snapshot, facts)
}

/// A console that has run the scene for `seconds`.
fn console_after(seconds: u32, state: State) -> Console {
    console_running(&scene(), seconds, state)
}

/// A console that has run `actors` for `seconds`.
fn console_running(actors: &[Actor], seconds: u32, state: State) -> Console {
    let mut console = Console::new(setup(), state, None);
    for t in 0..seconds {
        console.ingest(interval(actors, t));
    }
    console
}

fn screen(console: &Console, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| console.draw(frame)).unwrap();
    terminal.backend().clone()
}

fn press(console: &mut Console, keys: &[Key]) {
    for &key in keys {
        console.press(key);
    }
}

fn text(backend: &TestBackend) -> String {
    backend.to_string()
}

/// Selects the line of remote host `host` with the arrow key (the first press selects
/// the top line); returns its place.
fn select_host(console: &mut Console, host: IpAddr) -> usize {
    let place = console
        .view()
        .keys()
        .iter()
        .position(|key| *key == GroupKey::RemoteHost(host))
        .unwrap();
    for _ in 0..=place {
        press(console, &[Key::Down]);
    }
    place
}

#[test]
fn main_screen_80x24() {
    let console = console_after(12, State::new(Units::Bits));
    insta::assert_snapshot!(screen(&console, 80, 24));
}

#[test]
fn main_screen_160x48() {
    let mut console = console_after(12, State::new(Units::Bits));
    // The selection, and ports beside the hosts.
    press(&mut console, &[Key::Down, Key::Char('p')]);
    insta::assert_snapshot!(screen(&console, 160, 48));
}

#[test]
fn main_screen_120x30_in_bytes_by_process() {
    let mut console = console_after(12, State::new(Units::Bytes));
    for _ in 0..4 {
        press(&mut console, &[Key::Char('g')]);
    }
    assert_eq!(console.state().group_by, GroupBy::Process);
    insta::assert_snapshot!(screen(&console, 120, 30));
}

#[test]
fn before_the_first_interval() {
    let console = Console::new(setup(), State::default(), None);
    insta::assert_snapshot!(screen(&console, 80, 24));
}

#[test]
fn details_80x24() {
    let mut console = console_after(12, State::new(Units::Bits));
    press(&mut console, &[Key::Enter]);
    let top = console.view().rows[0].key.clone();
    assert_eq!(top, GroupKey::RemoteHost(MINER_POOL), "the miner is on top");
    insta::assert_snapshot!(screen(&console, 80, 24));
    // Scrolled to the end: the flows.
    press(&mut console, &[Key::PageDown, Key::PageDown]);
    insta::assert_snapshot!("details_80x24_scrolled", screen(&console, 80, 24));
}

#[test]
fn details_160x48() {
    let mut console = console_after(12, State::new(Units::Bits));
    // The nginx client: two flows, one process, foreign but business.
    select_host(&mut console, WEB_CLIENT);
    press(&mut console, &[Key::Enter]);
    insta::assert_snapshot!(screen(&console, 160, 48));
}

#[test]
fn details_of_traffic_with_no_local_process() {
    let mut console = console_after(12, State::new(Units::Bits));
    select_host(&mut console, ROUTED);
    press(&mut console, &[Key::Enter]);
    let screen = text(&screen(&console, 80, 24));
    assert!(
        screen.contains("no local process: addressed to this host, but no socket carries"),
        "{screen}"
    );
    assert!(screen.contains("local network (--)"), "{screen}");
}

#[test]
fn help_80x24() {
    let mut console = console_after(3, State::new(Units::Bits));
    press(&mut console, &[Key::Char('h')]);
    insta::assert_snapshot!(screen(&console, 80, 24));
}

#[test]
fn help_160x48() {
    let mut console = console_after(3, State::new(Units::Bits));
    press(&mut console, &[Key::Char('?')]);
    insta::assert_snapshot!(screen(&console, 160, 48));
}

#[test]
fn filter_input_80x24() {
    let mut console = console_after(12, State::new(Units::Bits));
    press(
        &mut console,
        &[Key::Char('/'), Key::Char('n'), Key::Char('g')],
    );
    insta::assert_snapshot!(screen(&console, 80, 24));
    // Enter applies it: only nginx's client is left.
    press(&mut console, &[Key::Enter]);
    insta::assert_snapshot!("filter_applied_80x24", screen(&console, 80, 24));
    assert_eq!(console.view().keys(), [GroupKey::RemoteHost(WEB_CLIENT)]);
}

#[test]
fn filter_matches_host_process_and_country() {
    let mut console = console_after(12, State::default());
    let mut apply = |filter: &str| {
        // Esc clears the filter in force; `/` would edit it.
        press(&mut console, &[Key::Esc, Key::Char('/')]);
        for c in filter.chars() {
            press(&mut console, &[Key::Char(c)]);
        }
        press(&mut console, &[Key::Enter]);
        console.view().keys()
    };
    assert_eq!(apply("198.51"), [GroupKey::RemoteHost(MINER_POOL)]);
    assert_eq!(apply("barad"), [GroupKey::RemoteHost(CLOUD_API)]);
    assert_eq!(apply("nl"), [GroupKey::RemoteHost(MINER_POOL)]);
    assert_eq!(apply("NOBODY"), [GroupKey::RemoteHost(MINER_POOL)]);
    assert!(apply("no such thing").is_empty());
}

#[test]
fn selection_follows_its_host_when_the_order_changes() {
    let actors = scene();
    let mut console = Console::new(setup(), State::default(), None);
    for t in 0..5 {
        console.ingest(interval(&actors, t));
    }
    // Early on nginx's client is on top; the miner has not ramped up yet.
    assert_eq!(console.view().keys()[0], GroupKey::RemoteHost(WEB_CLIENT));
    let miner_at = select_host(&mut console, MINER_POOL);
    assert!(miner_at > 0);
    assert_eq!(
        console.state().selected,
        Some(GroupKey::RemoteHost(MINER_POOL))
    );

    for t in 5..12 {
        console.ingest(interval(&actors, t));
    }
    let keys = console.view().keys();
    assert_eq!(keys[0], GroupKey::RemoteHost(MINER_POOL), "the miner rose");
    assert_eq!(
        console.state().selected,
        Some(GroupKey::RemoteHost(MINER_POOL)),
        "the selection moved with it"
    );
    let screen = text(&screen(&console, 80, 24));
    let marked: Vec<&str> = screen
        .lines()
        .filter(|line| line.starts_with("\">"))
        .collect();
    assert_eq!(marked.len(), 2, "{screen}");
    assert!(marked[0].contains("198.51.100.7"), "{screen}");
    assert!(marked[1].contains("4242 kworker/0:2"), "{screen}");
}

#[test]
fn pause_freezes_the_numbers_while_metering_goes_on() {
    let actors = scene();
    let mut console = console_after(6, State::default());
    press(&mut console, &[Key::Char('P')]);
    let frozen = text(&screen(&console, 80, 24));
    assert!(frozen.contains("PAUSED"), "{frozen}");
    for t in 6..12 {
        console.ingest(interval(&actors, t));
    }
    assert_eq!(text(&screen(&console, 80, 24)), frozen);
    press(&mut console, &[Key::Char('P')]);
    // Unpaused: the same as a console that never paused.
    let never_paused = console_after(12, State::default());
    assert_eq!(
        text(&screen(&console, 80, 24)),
        text(&screen(&never_paused, 80, 24))
    );
}

#[test]
fn units_and_sort_keys_change_the_screen() {
    let mut console = console_after(12, State::default());
    let bits = text(&screen(&console, 80, 24));
    assert!(bits.contains("bits/s") && bits.contains("Mb"), "{bits}");
    press(&mut console, &[Key::Char('B')]);
    let bytes = text(&screen(&console, 80, 24));
    assert!(
        bytes.contains("bytes/s") && bytes.contains("kB "),
        "{bytes}"
    );

    // By 40 s, nginx's earlier burst puts its client first.
    press(&mut console, &[Key::Char('3')]);
    assert_eq!(console.view().keys()[0], GroupKey::RemoteHost(WEB_CLIENT));
    assert!(text(&screen(&console, 80, 24)).contains("sort 40s total"));
    // Received only: the nginx client sends the most to us.
    press(
        &mut console,
        &[Key::Char('1'), Key::Char('t'), Key::Char('t')],
    );
    assert!(text(&screen(&console, 80, 24)).contains("sort 2s rx"));
}

#[test]
fn every_grouping_draws() {
    let mut console = console_after(12, State::default());
    let mut titles = Vec::new();
    for _ in 0..6 {
        press(&mut console, &[Key::Char('g')]);
        let screen = text(&screen(&console, 80, 24));
        titles.push(
            screen
                .lines()
                .nth(1)
                .unwrap()
                .trim_matches('"')
                .trim()
                .to_owned(),
        );
        assert!(!console.view().rows.is_empty(), "{screen}");
    }
    let firsts: Vec<&str> = titles
        .iter()
        .map(|title| title.split("  ").next().unwrap())
        .collect();
    assert_eq!(
        firsts,
        [
            "local <-> remote host / process",
            "remote port / process",
            "local port / process",
            "process / remote host",
            "container or unit / process",
            "remote host / process",
        ]
    );
}

#[test]
fn grouped_by_container_the_lines_name_the_container_and_its_process() {
    let mut console = console_after(12, State::default());
    for _ in 0..5 {
        press(&mut console, &[Key::Char('g')]);
    }
    assert_eq!(console.state().group_by, GroupBy::Container);
    let lines: Vec<(&str, &str)> = console
        .view()
        .rows
        .iter()
        .map(|row| (row.label.as_str(), row.second.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                "docker:4f0c1e2a9b3d",
                "4242 kworker/0:2 in docker:4f0c1e2a9b3d"
            ),
            ("no container or unit", "812 barad_agent +2"),
            ("nginx.service", "1234 nginx"),
        ],
        "the miner's container first (its 2 s rate is the highest)"
    );
    let screen = text(&screen(&console, 80, 24));
    assert!(screen.contains("docker:4f0c1e2a9b3d"), "{screen}");
    assert!(screen.contains("3 containers or units"), "{screen}");
}

#[test]
fn names_replace_addresses_when_they_arrive() {
    let mut console = console_after(3, State::default());
    console.names_arrived([(MINER_POOL, Some("pool.example.net".to_owned()))]);
    let screen = text(&screen(&console, 80, 24));
    assert!(screen.contains("pool.example.net"), "{screen}");
    assert!(!screen.contains("198.51.100.7 "), "{screen}");
}

/// The scene's interval `t` during a spoofed flood to udp/53 that the kernel's new-flow
/// budget counted by source prefix: 90k packets from 198.51.100.0/24, 10k from
/// 203.0.113.0/24, none of them in a flow.
fn flood_interval(actors: &[Actor], t: u32) -> EnrichedSnapshot {
    let quiet = interval(actors, t);
    let facts: Vec<Facts> = quiet.flows().map(|(_, facts)| facts.clone()).collect();
    let mut snapshot = quiet.snapshot().clone();
    let mut overflow = |prefix: [u8; 4], packets: u64| {
        let rx = &mut snapshot.interfaces[0].rx;
        rx.packets += packets;
        rx.bytes += packets * 64;
        rx.unattributed_packets += packets;
        rx.unattributed_bytes += packets * 64;
        rx.over_budget_packets += packets;
        rx.over_budget_bytes += packets * 64;
        snapshot.overflow.push(crate::datapath::PrefixDelta {
            iface: Arc::from("eth0"),
            proto: Protocol(UDP),
            prefix: crate::datapath::SourcePrefix::of(IpAddr::from(prefix)),
            local_port: 53,
            packets,
            bytes: packets * 64,
        });
    };
    overflow([198, 51, 100, 0], 90_000);
    overflow([203, 0, 113, 0], 10_000);
    EnrichedSnapshot::from_parts(snapshot, facts)
}

#[test]
fn a_flood_is_named_above_the_hosts_and_the_banner_goes_a_while_after_it() {
    let actors = scene();
    let mut console = console_after(3, State::default());
    assert!(!text(&screen(&console, 80, 24)).contains("FLOOD"));

    console.ingest(flood_interval(&actors, 3));
    let screen_80 = text(&screen(&console, 80, 24));
    let banner: Vec<&str> = screen_80.lines().skip(2).take(2).collect();
    assert!(
        banner[0].contains("FLOOD 100k new flows/s on eth0, 100k pkt/s, 51.2 Mbit/s; to udp/53"),
        "{screen_80}"
    );
    assert!(
        banner[1].contains("from 198.51.100.0/24 (90.0k pkt/s, 46.1 Mbit/s), 203.0.113.0/24"),
        "{screen_80}"
    );
    // The hosts are still listed under it.
    assert!(screen_80.contains("198.51.100.7"), "{screen_80}");
    // The status line says why so much is in no line.
    assert!(screen_80.contains("-- unattributed 9"), "{screen_80}");
    let screen_160 = text(&screen(&console, 160, 48));
    assert!(
        screen_160.contains("(new flows over --new-flow-budget: a flood) --"),
        "{screen_160}"
    );
    assert!(
        screen_160.contains("to udp/53 (100k pkt/s, 51.2 Mbit/s)"),
        "{screen_160}"
    );

    // Over: the banner says so for a few seconds, then goes.
    console.ingest(interval(&actors, 4));
    let after = text(&screen(&console, 80, 24));
    assert!(
        after.contains("FLOOD (over 1s ago) 100k new flows/s"),
        "{after}"
    );
    for t in 5..=9 {
        console.ingest(interval(&actors, t));
    }
    assert!(!text(&screen(&console, 80, 24)).contains("FLOOD"));
}

#[test]
fn traffic_evicted_before_it_was_read_is_told_with_what_to_do() {
    let actors = scene();
    let mut console = console_after(3, State::default());
    let mut snapshot = interval(&actors, 3).snapshot().clone();
    // A full table let go of flows with 50k packets before they were read.
    let rx = &mut snapshot.interfaces[0].rx;
    rx.packets += 50_000;
    rx.bytes += 50_000 * 64;
    rx.unattributed_packets += 50_000;
    rx.unattributed_bytes += 50_000 * 64;
    rx.evicted_packets += 50_000;
    rx.evicted_bytes += 50_000 * 64;
    let facts = interval(&actors, 3)
        .flows()
        .map(|(_, f)| f.clone())
        .collect();
    console.ingest(EnrichedSnapshot::from_parts(snapshot, facts));
    let screen = text(&screen(&console, 80, 24));
    let status = screen
        .lines()
        .find(|line| line.starts_with("\"--"))
        .expect("a status line");
    assert!(
        status.contains("-- unattributed 84% (evicted before read: raise --flows) --"),
        "{screen}"
    );
}

const SHARED_REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));

/// The runbook's busy host: one remote that two processes talk to, a business `iperf3`
/// upload with the most bytes and a miner copied into /tmp sending to port 3333.
fn shared_remote() -> Vec<Actor> {
    let foreign = |raises_risk| Reason::Foreign {
        country: CountryCode::new("NL").unwrap(),
        home: home(),
        raises_risk,
    };
    let in_nl = |owner, verdict, reasons| Facts {
        owner,
        location: country("NL"),
        judgement: Judgement {
            verdict,
            reasons,
            foreign: true,
        },
    };
    let iperf3 = process(
        3100,
        "iperf3",
        "root",
        "/usr/bin/iperf3",
        "iperf3 -c 198.51.100.20 -t 600",
    );
    let miner = process(
        4243,
        "miner",
        "nobody",
        "/tmp/miner",
        "/tmp/miner -o 198.51.100.20:3333",
    );
    let signs = vec![
        Reason::ExeInTempDir { dir: "/tmp".into() },
        Reason::MiningPort { port: 3333 },
        foreign(true),
    ];
    vec![
        Actor {
            id: flow(TCP, 43000, SHARED_REMOTE, 5201),
            facts: in_nl(iperf3, Verdict::Business, vec![foreign(false)]),
            bytes: |_| (1_500_000, 10_000),
        },
        Actor {
            id: flow(TCP, 43002, SHARED_REMOTE, 3333),
            facts: in_nl(miner, Verdict::Suspicious, signs),
            bytes: |_| (400_000, 8_000),
        },
    ]
}

#[test]
fn a_row_of_two_processes_names_the_suspicious_one_80x24() {
    let mut console = console_running(&shared_remote(), 12, State::new(Units::Bits));
    let row = &console.view().rows[0];
    assert_eq!(row.key, GroupKey::RemoteHost(SHARED_REMOTE));
    // The miner, though iperf3 moved more: its verdict, its user and executable.
    assert_eq!(row.second, "4243 miner +1");
    assert_eq!(row.verdict, Some(Verdict::Suspicious));
    assert_eq!(
        (row.user.as_str(), row.exe.as_str(), row.cmdline.as_str()),
        ("nobody", "/tmp/miner", "/tmp/miner -o 198.51.100.20:3333")
    );
    let main = screen(&console, 80, 24);
    let main_text = text(&main);
    assert!(
        main_text.contains(" 4243 miner +1 (nobody) "),
        "{main_text}"
    );
    insta::assert_snapshot!(main);

    press(&mut console, &[Key::Enter]);
    let details = console.view().details.clone().expect("the details screen");
    let owners: Vec<(&str, Verdict, u64, usize)> = details
        .owners
        .iter()
        .map(|owner| {
            (
                owner.name.as_str(),
                owner.verdict,
                owner.bytes,
                owner.reasons.len(),
            )
        })
        .collect();
    // Each with its own verdict, bytes (12 s of the scene) and reasons.
    assert_eq!(
        owners,
        [
            ("4243 miner", Verdict::Suspicious, 12 * 408_000, 3),
            ("3100 iperf3", Verdict::Business, 12 * 1_510_000, 1),
        ]
    );
    assert_eq!(
        details.owners[1].reasons[0].to_string(),
        "remote in NL, outside home countries DE"
    );
    let pids: Vec<u32> = details.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [4243, 3100], "the culprit first");
    let shown = screen(&console, 80, 24);
    let shown_text = text(&shown);
    for line in [
        "Process   4243 miner, user nobody (uid 33)",
        "Process   3100 iperf3, user root (uid 0)",
        "  4243 miner: ! suspicious, cum 4.90MB",
        "    - executable under /tmp",
        "  3100 iperf3: business, cum 18.1MB",
        "    - remote in NL, outside home countries DE  ",
    ] {
        assert!(shown_text.contains(line), "{line:?} in {shown_text}");
    }
    insta::assert_snapshot!("a_row_of_two_processes_details_80x24", shown);
}
