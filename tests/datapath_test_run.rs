//! The eBPF programs on crafted frames, through BPF_PROG_TEST_RUN: no interface, no
//! traffic, just the kernel running each program on one frame.
//!
//! Every case of the table runs once on each of the three programs, with every map
//! emptied first, and must be counted exactly as `flowmeter_common` documents: in the
//! totals slot of (ifindex, direction), under the right reason, and for parsed frames
//! as one flow whose key is oriented from the host's side. The oracle of the fuzzer
//! (`common/oracle.rs`, etherparse) must say the same of every case, and every frame
//! kept in `tests/fixtures/frames/` (found by `fuzz_parser.rs`, or picked by hand) is
//! run on the three programs and checked against that oracle.
//!
//! Needs root (CAP_BPF and CAP_NET_ADMIN): without it the tests fail, they never skip.

#[path = "common/crafted.rs"]
mod crafted;
#[path = "common/frames.rs"]
mod frames;
#[path = "common/kept_frames.rs"]
mod kept_frames;
#[path = "common/oracle.rs"]
mod oracle;
#[path = "common/tally.rs"]
mod tally;
#[path = "common/test_run.rs"]
mod test_run;

use std::io;

use aya::{
    Ebpf,
    maps::{PerCpuArray, PerCpuValues},
};
use crafted::{Case, DST4, SRC4, SRC6, cases, raw_ip_cases, v4, v6};
use flowmeter_common::{
    DIR_RX, DIR_TX, FAMILY_IPV4, FAMILY_IPV6, LINK_ETHERNET, LINK_RAW_IP, NEW_FLOW_WINDOW_MAP,
    NewFlowWindow, PrefixCounters, PrefixKey, Totals, totals_index,
};
use frames::{
    ETH_HEADER, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_LLDP, Frame, IPPROTO_TCP, IPPROTO_UDP,
    IPV4_HEADER, IPV6_HEADER, TCP_ACK, TCP_SYN,
};
use oracle::Seen;
use tally::{Outcome, Tally};
use test_run::{
    IFINDEX, LONGEST_SKB_FRAME, LONGEST_XDP_FRAME, PROGRAMS, Program, SLOT, clear_maps, flows,
    kernel_refusal, load, load_on, load_with, totals,
};

/// Runs the case's frame once on `program` (loaded in `ebpf`, with empty maps) and
/// returns every way in which what was counted differs from what the case expects.
fn check(ebpf: &Ebpf, program: Program, case: &Case) -> Vec<String> {
    let mut tally = Tally::new(program);
    if tally.run(ebpf, &case.frame, case.expect) == Outcome::Refused {
        eprintln!(
            "note: case '{}' on {program}: BPF_PROG_TEST_RUN refuses {}; checked only \
             that nothing was counted",
            case.name,
            kernel_refusal(program, &case.frame).unwrap_or("it")
        );
    }
    tally.compare(ebpf)
}

#[test]
fn every_frame_is_counted_as_documented_by_every_program() {
    let cases = cases();
    let mut failures = Vec::new();
    for program in PROGRAMS {
        let mut ebpf = load(&[program]);
        for case in &cases {
            clear_maps(&mut ebpf);
            let problems = check(&ebpf, program, case);
            if !problems.is_empty() {
                failures.push(format!(
                    "case '{}' ({} bytes) on {program}:\n  {}",
                    case.name,
                    case.frame.len(),
                    problems.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        cases.len() * PROGRAMS.len(),
        failures.join("\n\n")
    );
}

/// The fuzzer's oracle, a userspace parser, says of every case what the table says: the
/// table checks the oracle as much as the kernel.
#[test]
fn the_oracle_agrees_with_every_case_of_the_table() {
    let mut disagreements = Vec::new();
    for (link, cases) in [(LINK_ETHERNET, cases()), (LINK_RAW_IP, raw_ip_cases())] {
        for case in &cases {
            let said = oracle::expect(&case.frame, link);
            if said != case.expect {
                disagreements.push(format!(
                    "case '{}':\n  table  {:?}\n  oracle {said:?}",
                    case.name, case.expect
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Every frame kept in `tests/fixtures/frames/`, on every program, counted as the oracle
/// says (see `common/kept_frames.rs`; the fuzzer adds the frames it finds).
#[test]
fn every_kept_frame_is_counted_as_the_oracle_says_by_every_program() {
    let kept = kept_frames::read_all();
    let mut failures = Vec::new();
    for link in [LINK_ETHERNET, LINK_RAW_IP] {
        let on_link: Vec<_> = kept.iter().filter(|frame| frame.link == link).collect();
        if on_link.is_empty() {
            continue;
        }
        for program in PROGRAMS {
            let mut ebpf = load_on(&[program], link);
            for frame in &on_link {
                clear_maps(&mut ebpf);
                let expect = oracle::expect(program.visible(&frame.bytes), link);
                let mut tally = Tally::new(program);
                tally.run(&ebpf, &frame.bytes, expect);
                for problem in tally.compare(&ebpf) {
                    failures.push(format!("kept frame {} on {program}: {problem}", frame.name));
                }
            }
        }
    }
    println!(
        "checked {} kept frames of {} on {} programs",
        kept.len(),
        kept_frames::dir().display(),
        PROGRAMS.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// BPF_PROG_TEST_RUN's own refusals are the ones `kernel_refusal` names, at each limit:
/// a frame just inside it runs, one just beyond is refused and counts nothing; and XDP
/// counts a frame longer than its linear part as that part ([`Program::visible`]).
#[test]
fn the_test_run_refuses_exactly_the_frames_kernel_refusal_names() {
    let padded = |ethertype: u16, len: usize| {
        Frame::ethertype(ethertype, &vec![0; len - ETH_HEADER]).build()
    };
    let mut frames = vec![padded(ETHERTYPE_LLDP, ETH_HEADER)[..ETH_HEADER - 1].to_vec()];
    for len in [
        ETH_HEADER,
        LONGEST_XDP_FRAME,
        LONGEST_XDP_FRAME + 1,
        LONGEST_SKB_FRAME,
        LONGEST_SKB_FRAME + 1,
    ] {
        frames.push(padded(ETHERTYPE_LLDP, len));
    }
    for (ethertype, header) in [(ETHERTYPE_IPV4, IPV4_HEADER), (ETHERTYPE_IPV6, IPV6_HEADER)] {
        frames.push(padded(ethertype, ETH_HEADER + header - 1));
        frames.push(padded(ethertype, ETH_HEADER + header));
    }
    let mut failures = Vec::new();
    for program in PROGRAMS {
        let mut ebpf = load(&[program]);
        for frame in &frames {
            clear_maps(&mut ebpf);
            let said = kernel_refusal(program, frame);
            let mut tally = Tally::new(program);
            let expect = oracle::expect(program.visible(frame), LINK_ETHERNET);
            let refused = tally.run(&ebpf, frame, expect) == Outcome::Refused;
            let what = format!(
                "{} bytes, ethertype {:02x?} on {program}",
                frame.len(),
                frame.get(12..14)
            );
            if refused != said.is_some() {
                failures.push(format!(
                    "{what}: refused {refused}, kernel_refusal says {said:?}"
                ));
            }
            failures.extend(tally.compare(&ebpf).iter().map(|p| format!("{what}: {p}")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_same_frame_twice_is_one_flow_with_two_packets() {
    let frame = v4().tcp(40000, 443, TCP_SYN).build();
    let len = frame.len() as u64;
    for program in PROGRAMS {
        let ebpf = load(&[program]);
        for run in 1..=2 {
            let returned = program.run(&ebpf, &frame).expect("BPF_PROG_TEST_RUN");
            assert!(
                program.passed(returned),
                "{program}, run {run}: returned {returned:#x}"
            );
        }
        let direction = program.direction();
        let slot = totals(&ebpf)[totals_index(SLOT, direction) as usize];
        assert_eq!(
            (slot.packets, slot.bytes),
            (2, 2 * len),
            "{program}: totals"
        );
        let flows = flows(&ebpf);
        let want_key = Seen::v4(IPPROTO_TCP, 40000, 443).key(IFINDEX, direction);
        assert_eq!(flows.len(), 1, "{program}: one flow, got {flows:#?}");
        let (key, counters) = flows[0];
        assert_eq!(key, want_key, "{program}: flow key");
        let counted = if direction == DIR_TX {
            (counters.tx_packets, counters.tx_bytes)
        } else {
            (counters.rx_packets, counters.rx_bytes)
        };
        assert_eq!(counted, (2, 2 * len), "{program}: flow (packets, bytes)");
    }
}

#[test]
fn a_request_in_and_its_reply_out_share_one_flow() {
    let ebpf = load(&[Program::TcIngress, Program::TcEgress]);
    // A remote client's SYN arrives; the host's SYN-ACK leaves.
    let request = Frame::ipv4(SRC4, DST4).tcp(40000, 443, TCP_SYN).build();
    let reply = Frame::ipv4(DST4, SRC4)
        .tcp(443, 40000, TCP_SYN | TCP_ACK)
        .payload(10)
        .build();
    for (program, frame) in [(Program::TcIngress, &request), (Program::TcEgress, &reply)] {
        let returned = program.run(&ebpf, frame).expect("BPF_PROG_TEST_RUN");
        assert!(
            program.passed(returned),
            "{program}: returned {returned:#x}"
        );
    }
    let flows = flows(&ebpf);
    assert_eq!(
        flows.len(),
        1,
        "one flow for both directions, got {flows:#?}"
    );
    let (key, counters) = flows[0];
    assert_eq!(key, Seen::v4(IPPROTO_TCP, 40000, 443).key(IFINDEX, DIR_RX));
    assert_eq!(
        (
            counters.rx_packets,
            counters.rx_bytes,
            counters.tx_packets,
            counters.tx_bytes
        ),
        (1, request.len() as u64, 1, reply.len() as u64)
    );
    assert_eq!(counters.tcp_flags, TCP_SYN | TCP_ACK);
}

/// The frame builder itself, checked against hand-counted offsets.
mod frame_builder {
    use super::frames::*;

    #[test]
    fn ipv4_tcp_has_the_textbook_layout() {
        let frame = Frame::ipv4([1, 2, 3, 4], [5, 6, 7, 8]).tcp(1, 2, TCP_SYN);
        let bytes = frame.build();
        assert_eq!(bytes.len(), 14 + 20 + 20);
        assert_eq!(&bytes[12..14], &[0x08, 0x00]);
        assert_eq!(bytes[14], 0x45);
        assert_eq!(&bytes[16..18], &[0, 40]); // total length
        assert_eq!(bytes[23], IPPROTO_TCP);
        assert_eq!(&bytes[26..30], &[1, 2, 3, 4]);
        assert_eq!(&bytes[34..38], &[0, 1, 0, 2]);
        assert_eq!(bytes[47], TCP_SYN);
    }

    #[test]
    fn ipv6_extensions_chain_their_next_headers() {
        let frame = Frame::ipv6([1; 16], [2; 16])
            .extension(Extension::HopByHop { len8: 0 })
            .extension(Extension::Fragment {
                offset: 0,
                more: true,
            })
            .udp(1, 2);
        let (bytes, layout) = (frame.build(), frame.layout());
        assert_eq!(bytes[14] >> 4, 6);
        assert_eq!(bytes[20], 0); // next: hop-by-hop
        assert_eq!(bytes[layout.extensions[0]], 44); // then fragment
        assert_eq!(bytes[layout.extensions[1]], IPPROTO_UDP);
        assert_eq!(layout.transport, 14 + 40 + 8 + 8);
        assert_eq!(&bytes[18..20], &[0, 24]); // payload length
    }

    #[test]
    fn tags_come_before_the_ethertype_and_cuts_count_from_a_header() {
        let frame = Frame::ipv4([1; 4], [2; 4]).dot1ad(100).dot1q(200).udp(1, 2);
        let bytes = frame.build();
        assert_eq!(&bytes[12..14], &[0x88, 0xa8]);
        assert_eq!(&bytes[16..18], &[0x81, 0x00]);
        assert_eq!(&bytes[20..22], &[0x08, 0x00]);
        assert_eq!(frame.cut_in(Header::Vlan(1), 2).build().len(), 20);
    }
}

#[test]
fn raw_ip_links_parse_from_the_ip_header() {
    let raw_cases = raw_ip_cases();
    let mut failures = Vec::new();
    for program in PROGRAMS {
        let mut ebpf = load_on(&[program], LINK_RAW_IP);
        for case in &raw_cases {
            clear_maps(&mut ebpf);
            for problem in check(&ebpf, program, case) {
                failures.push(format!("case '{}' on {program}: {problem}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_interface_left_out_of_the_map_is_not_counted() {
    let frame = v4().udp(5353, 53).build();
    for program in PROGRAMS {
        let ebpf = load_on(&[program], flowmeter_common::LINK_UNMETERED);
        let returned = program.run(&ebpf, &frame).expect("BPF_PROG_TEST_RUN");
        assert!(
            program.passed(returned),
            "{program}: returned {returned:#x}"
        );
        assert!(
            totals(&ebpf).iter().all(|t| *t == Totals::default()),
            "{program}: counted an unmetered interface"
        );
        assert!(flows(&ebpf).is_empty(), "{program}: made a flow");
    }
}

/// The new-flow budget: received packets beyond N new flows per second on a CPU make no
/// flow; they count in the totals (`over_budget_*`) and per source prefix in OVERFLOW.
///
/// The budget is per CPU and BPF_PROG_TEST_RUN runs on the caller's CPU: each test pins
/// its thread to one CPU. Its window is one second of the coarse clock, which the test
/// cannot move: a round that took longer than [`ONE_WINDOW`] (a stalled machine) is run
/// again on a fresh object, so a window reset in the middle cannot make a test flake;
/// the reset itself is tested by rewinding the window's start in the map.
mod new_flow_budget {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::test_run::overflow;

    /// Well inside the kernel's one-second window.
    const ONE_WINDOW: Duration = Duration::from_millis(800);
    const BUDGET: u64 = 8;
    const OVER: u64 = 3;
    const LOCAL_PORT: u16 = 53;

    /// Pins the calling thread to the CPU it runs on now.
    fn pin_to_this_cpu() {
        // SAFETY: sched_getcpu has no arguments; the cpu_set_t is a plain bit set,
        // zeroed, then one bit set, and handed to the kernel by pointer for this call.
        unsafe {
            let cpu = libc::sched_getcpu();
            assert!(cpu >= 0, "sched_getcpu: {}", io::Error::last_os_error());
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            let pinned = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            assert_eq!(
                pinned,
                0,
                "sched_setaffinity: {}",
                io::Error::last_os_error()
            );
        }
    }

    /// Runs `round` (which loads its own object) until one run of it fits in
    /// [`ONE_WINDOW`], at most three times.
    fn within_one_window<T>(mut round: impl FnMut() -> T) -> T {
        pin_to_this_cpu();
        for _ in 0..3 {
            let started = Instant::now();
            let result = round();
            if started.elapsed() < ONE_WINDOW {
                return result;
            }
        }
        panic!("three rounds each took longer than {ONE_WINDOW:?}: the machine is stalled");
    }

    fn run_all(ebpf: &Ebpf, program: Program, frames: &[Vec<u8>]) {
        for frame in frames {
            let returned = program.run(ebpf, frame).expect("BPF_PROG_TEST_RUN");
            assert!(
                program.passed(returned),
                "{program}: returned {returned:#x}"
            );
        }
    }

    /// `count` UDP frames to LOCAL_PORT from `src`, each from another source port: each
    /// a new flow when received.
    fn new_flows(frame: impl Fn() -> Frame, count: u64, first_port: u16) -> Vec<Vec<u8>> {
        (0..count as u16)
            .map(|n| frame().udp(first_port + n, LOCAL_PORT).payload(10).build())
            .collect()
    }

    fn prefix_key(family: u8, prefix: [u8; 8]) -> PrefixKey {
        PrefixKey {
            ifindex: IFINDEX,
            family,
            proto: IPPROTO_UDP,
            local_port: LOCAL_PORT,
            prefix,
        }
    }

    #[test]
    fn received_new_flows_beyond_the_budget_count_by_source_prefix() {
        let [a, b, c, _] = SRC4;
        let s = SRC6;
        let families = [
            (
                "IPv4",
                v4 as fn() -> Frame,
                prefix_key(FAMILY_IPV4, [a, b, c, 0, 0, 0, 0, 0]),
            ),
            (
                "IPv6",
                v6,
                prefix_key(FAMILY_IPV6, s[..8].try_into().unwrap()),
            ),
        ];
        for program in [Program::XdpIngress, Program::TcIngress] {
            for (family, frame, want_prefix) in &families {
                let frames = new_flows(frame, BUDGET + OVER, 10_000);
                let len = frames[0].len() as u64;
                let (totals, flows, prefixes) = within_one_window(|| {
                    let ebpf = load_with(&[program], LINK_ETHERNET, Some(BUDGET));
                    run_all(&ebpf, program, &frames);
                    (totals(&ebpf), flows(&ebpf), overflow(&ebpf))
                });
                let rx = totals[totals_index(SLOT, DIR_RX) as usize];
                let what = format!("{program}, {family}");
                assert_eq!(flows.len() as u64, BUDGET, "{what}: flows {flows:#?}");
                assert_eq!(
                    (rx.packets, rx.bytes),
                    ((BUDGET + OVER), (BUDGET + OVER) * len),
                    "{what}: totals"
                );
                assert_eq!(
                    (rx.over_budget_packets, rx.over_budget_bytes),
                    (OVER, OVER * len),
                    "{what}: over budget"
                );
                assert_eq!(rx.insert_failed_packets, 0, "{what}: table full");
                // The first BUDGET source ports got flows, the rest did not.
                let mut ports: Vec<u16> = flows.iter().map(|(k, _)| k.remote_port).collect();
                ports.sort();
                assert_eq!(ports, (10_000..10_000 + BUDGET as u16).collect::<Vec<_>>());
                let want = PrefixCounters {
                    packets: OVER,
                    bytes: OVER * len,
                };
                assert_eq!(prefixes, [(*want_prefix, want)], "{what}: prefixes");
            }
        }
    }

    #[test]
    fn sent_flows_are_created_beyond_the_budget_and_known_flows_still_count() {
        let ebpf = &within_one_window(|| {
            let ebpf = load_with(
                &[Program::TcIngress, Program::TcEgress],
                LINK_ETHERNET,
                Some(BUDGET),
            );
            // The budget spent, and OVER packets beyond it.
            run_all(
                &ebpf,
                Program::TcIngress,
                &new_flows(v4, BUDGET + OVER, 10_000),
            );
            // The host's own new flows: all of them created.
            let sent: Vec<Vec<u8>> = (0..5)
                .map(|n| Frame::ipv4(DST4, SRC4).udp(30_000 + n, 443).build())
                .collect();
            run_all(&ebpf, Program::TcEgress, &sent);
            // A reply to a flood packet that had no flow creates it.
            let reply = Frame::ipv4(DST4, SRC4)
                .udp(LOCAL_PORT, 10_000 + BUDGET as u16)
                .build();
            run_all(&ebpf, Program::TcEgress, &[reply]);
            // A flow created within the budget still counts its received packets.
            run_all(&ebpf, Program::TcIngress, &new_flows(v4, 1, 10_000));
            ebpf
        });
        let flows = flows(ebpf);
        assert_eq!(flows.len() as u64, BUDGET + 5 + 1, "flows {flows:#?}");
        let known = Seen::v4(IPPROTO_UDP, 10_000, LOCAL_PORT).key(IFINDEX, DIR_RX);
        let (_, counters) = flows
            .iter()
            .find(|(k, _)| *k == known)
            .expect("the known flow");
        assert_eq!(counters.rx_packets, 2, "the known flow's packets");
        let totals = totals(ebpf);
        let (rx, tx) = (totals[0], totals[1]);
        assert_eq!(
            (rx.packets, rx.over_budget_packets),
            (BUDGET + OVER + 1, OVER)
        );
        assert_eq!((tx.packets, tx.over_budget_packets), (6, 0));
    }

    #[test]
    fn no_budget_is_unlimited_and_the_window_starts_again_after_a_second() {
        let unlimited = within_one_window(|| {
            let ebpf = load_with(&[Program::TcIngress], LINK_ETHERNET, Some(0));
            run_all(&ebpf, Program::TcIngress, &new_flows(v4, 40, 10_000));
            (flows(&ebpf).len(), totals(&ebpf)[0].over_budget_packets)
        });
        assert_eq!(unlimited, (40, 0), "budget 0: (flows, over budget)");

        let mut ebpf = within_one_window(|| {
            let ebpf = load_with(&[Program::TcIngress], LINK_ETHERNET, Some(2));
            run_all(&ebpf, Program::TcIngress, &new_flows(v4, 3, 10_000));
            ebpf
        });
        assert_eq!(
            (flows(&ebpf).len(), totals(&ebpf)[0].over_budget_packets),
            (2, 1)
        );
        // Rewind every CPU's window to the start of the clock: the next new flow begins
        // a new window, in which it fits.
        let cpus = aya::util::nr_cpus().expect("number of CPUs");
        let mut window = PerCpuArray::<_, NewFlowWindow>::try_from(
            ebpf.map_mut(NEW_FLOW_WINDOW_MAP)
                .expect("NEW_FLOW_WINDOW map"),
        )
        .expect("NEW_FLOW_WINDOW is a per-CPU array");
        let spent = window.get(&0, 0).expect("read the window");
        assert!(
            spent.iter().any(|w| w.created == 2),
            "the window as used: {spent:?}"
        );
        let rewound = NewFlowWindow {
            window_start_ns: 0,
            created: 2,
        };
        window
            .set(0, PerCpuValues::try_from(vec![rewound; cpus]).unwrap(), 0)
            .expect("rewind the window");
        run_all(&ebpf, Program::TcIngress, &new_flows(v4, 1, 20_000));
        assert_eq!(
            (flows(&ebpf).len(), totals(&ebpf)[0].over_budget_packets),
            (3, 1)
        );
    }
}
