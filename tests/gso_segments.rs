//! GSO and GRO skbs through the TC programs, by BPF_PROG_TEST_RUN with the skb's
//! `gso_segs` and `gso_size` set in its context: each must count as the segments it
//! stands for, and its bytes as those segments occupy the link, every segment with its
//! own link, network and transport headers (TCP's options included).
//!
//! The expected counts come from splitting the frame's payload into `gso_size` pieces
//! and giving each its headers, as segmentation does; the headers' length comes from
//! how the test built the frame, not from the programs' parser.
//!
//! Needs root (CAP_BPF and CAP_NET_ADMIN): without it the tests fail, they never skip.

#[path = "common/frames.rs"]
mod frames;
#[path = "common/test_run.rs"]
mod test_run;

use std::net::Ipv6Addr;

use flowmeter_common::{FlowCounters, LINK_ETHERNET, Totals, totals_index};
use frames::{
    ETHERTYPE_IPV4, ETHERTYPE_LLDP, Extension, Frame, Header, IPV4_ROUTER_ALERT, TCP_ACK, TCP_PSH,
};
use test_run::{Program, SLOT, clear_maps, flows, load, load_with, overflow, totals};

const SRC4: [u8; 4] = [192, 0, 2, 10];
const DST4: [u8; 4] = [198, 51, 100, 20];
const SRC6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x0a).octets();
const DST6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x14).octets();

const TC_PROGRAMS: [Program; 2] = [Program::TcIngress, Program::TcEgress];

/// NOP, NOP, timestamps: the 12 option bytes of every segment of a Linux TCP flow.
const TCP_TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
/// Full segments' payload with the timestamp option on an MTU of 1500 (IPv4, IPv6).
const MSS4: u32 = 1448;
const MSS6: u32 = 1428;

/// Offsets in `struct __sk_buff` (include/uapi/linux/bpf.h) of the fields BPF_PROG_TEST_RUN
/// takes from the context and these cases set.
const SK_BUFF_SIZE: usize = 192;
const SK_BUFF_GSO_SEGS: usize = 164;
const SK_BUFF_GSO_SIZE: usize = 176;

/// An skb's context with `gso_segs` and `gso_size` set, every other field zero.
fn skb_context(gso_segs: u32, gso_size: u32) -> Vec<u8> {
    let mut context = vec![0; SK_BUFF_SIZE];
    context[SK_BUFF_GSO_SEGS..][..4].copy_from_slice(&gso_segs.to_ne_bytes());
    context[SK_BUFF_GSO_SIZE..][..4].copy_from_slice(&gso_size.to_ne_bytes());
    context
}

/// What a frame must be counted as, in packets and bytes, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counted {
    packets: u64,
    bytes: u64,
    into: Where,
}

/// Where a frame's packets are counted: in a flow or under a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Flow,
    NonIp,
    Malformed,
}

/// One skb: its frame and what its context says about segments.
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    gso_segs: u32,
    gso_size: u32,
    counted: Counted,
}

/// A built frame and the bytes before its payload, which every segment repeats.
struct Built {
    frame: Vec<u8>,
    headers: usize,
}

impl Built {
    fn plain(frame: &Frame) -> Self {
        Self {
            frame: frame.build(),
            headers: frame.layout().payload,
        }
    }

    /// The frame with TCP `options` after the 20 fixed bytes of its TCP header, the data
    /// offset and the IP length grown to match.
    fn with_tcp_options(frame: &Frame, options: &[u8]) -> Self {
        assert_eq!(options.len() % 4, 0, "TCP options come in 32-bit words");
        let layout = frame.layout();
        let mut bytes = frame.build();
        let grow = |field: usize, bytes: &mut Vec<u8>| {
            let len = u16::from_be_bytes([bytes[field], bytes[field + 1]]) + options.len() as u16;
            bytes[field..field + 2].copy_from_slice(&len.to_be_bytes());
        };
        let ethertype = u16::from_be_bytes([bytes[layout.network - 2], bytes[layout.network - 1]]);
        // IPv4's total length, or IPv6's payload length.
        let ip_length = if ethertype == ETHERTYPE_IPV4 { 2 } else { 4 };
        grow(layout.network + ip_length, &mut bytes);
        bytes[layout.transport + 12] = ((20 + options.len() as u8) / 4) << 4;
        let options_at = layout.transport + 20;
        bytes.splice(options_at..options_at, options.iter().copied());
        Self {
            frame: bytes,
            headers: layout.payload + options.len(),
        }
    }

    /// A GSO skb of this frame cut into `gso_size` segments, counted as segmentation
    /// would put them on the wire, into a flow.
    fn segmented(self, name: &'static str, gso_size: u32) -> Case {
        let payload = self.frame.len() - self.headers;
        let pieces: Vec<usize> = (0..payload)
            .step_by(gso_size as usize)
            .map(|start| (payload - start).min(gso_size as usize))
            .collect();
        let on_wire: usize = pieces.iter().map(|piece| self.headers + piece).sum();
        Case {
            name,
            gso_segs: pieces.len() as u32,
            gso_size,
            counted: Counted {
                packets: pieces.len() as u64,
                bytes: on_wire as u64,
                into: Where::Flow,
            },
            frame: self.frame,
        }
    }

    /// An skb with this context that is a single packet on the wire: its length.
    fn single(self, name: &'static str, gso_segs: u32, gso_size: u32) -> Case {
        Case {
            name,
            gso_segs,
            gso_size,
            counted: Counted {
                packets: 1,
                bytes: self.frame.len() as u64,
                into: Where::Flow,
            },
            frame: self.frame,
        }
    }
}

fn tcp4() -> Frame {
    Frame::ipv4(SRC4, DST4).tcp(40000, 443, TCP_ACK | TCP_PSH)
}

fn tcp6() -> Frame {
    Frame::ipv6(SRC6, DST6).tcp(40000, 443, TCP_ACK | TCP_PSH)
}

/// A frame that does not parse, with segments: they count, its length is its bytes.
fn unparsed(name: &'static str, frame: Vec<u8>, gso_segs: u32, into: Where) -> Case {
    Case {
        name,
        gso_segs,
        gso_size: 100,
        counted: Counted {
            packets: u64::from(gso_segs),
            bytes: frame.len() as u64,
            into,
        },
        frame,
    }
}

/// Frames stay under a page: BPF_PROG_TEST_RUN refuses longer skbs, so the "many
/// segments" cases use a small `gso_size` instead of 64 KB of payload.
fn cases() -> Vec<Case> {
    let ts = &TCP_TIMESTAMPS;
    vec![
        Built::with_tcp_options(&tcp4().payload(2 * MSS4 as usize + 100), ts)
            .segmented("TCP/IPv4 with timestamps, 3 segments", MSS4),
        Built::with_tcp_options(
            &tcp4()
                .dot1q(10)
                .ipv4_options(&IPV4_ROUTER_ALERT)
                .payload(2 * MSS4 as usize),
            ts,
        )
        .segmented("TCP/IPv4 in a VLAN with IP options and timestamps", MSS4),
        Built::with_tcp_options(&tcp6().payload(2 * MSS6 as usize + 1), ts)
            .segmented("TCP/IPv6 with timestamps, 3 segments", MSS6),
        Built::with_tcp_options(
            &tcp6()
                .extension(Extension::HopByHop { len8: 0 })
                .payload(MSS6 as usize + 700),
            ts,
        )
        .segmented("TCP/IPv6 after a hop-by-hop header", MSS6),
        Built::with_tcp_options(&tcp4().payload(64 * 50), ts)
            .segmented("TCP/IPv4, 50 segments of 64 bytes", 64),
        Built::plain(
            &Frame::ipv4(SRC4, DST4)
                .udp(4433, 443)
                .payload(3 * 1000 + 10),
        )
        .segmented("UDP/IPv4 GSO (USO), 4 datagrams", 1000),
        Built::plain(&Frame::ipv6(SRC6, DST6).udp(4433, 443).payload(2 * 1200))
            .segmented("UDP/IPv6 GSO (USO), 2 datagrams", 1200),
        Built::with_tcp_options(&tcp4().payload(2000), ts).single(
            "gso_size set, gso_segs 0",
            0,
            MSS4,
        ),
        Built::with_tcp_options(&tcp4().payload(1000), ts).single(
            "gso_size set, gso_segs 1",
            1,
            MSS4,
        ),
        Built::with_tcp_options(&tcp4().payload(2000), ts).single(
            "gso_segs without gso_size is no GSO skb",
            5,
            0,
        ),
        unparsed(
            "non-IP with segments",
            Frame::ethertype(ETHERTYPE_LLDP, &[0; 200]).build(),
            4,
            Where::NonIp,
        ),
        unparsed(
            "cut in its TCP header, with segments",
            tcp4().cut_in(Header::Transport, 10).build(),
            3,
            Where::Malformed,
        ),
        hostile_data_offset(),
    ]
}

/// A TCP header whose data offset (60 bytes) reaches beyond the frame's end: the
/// repeated headers are capped at the frame, never more than it.
fn hostile_data_offset() -> Case {
    let mut frame = tcp4().build();
    let transport = tcp4().layout().transport;
    frame[transport + 12] = 15 << 4;
    let gso_segs = 7;
    Case {
        name: "TCP data offset beyond the frame",
        gso_segs,
        gso_size: 100,
        counted: Counted {
            packets: u64::from(gso_segs),
            bytes: u64::from(gso_segs) * frame.len() as u64,
            into: Where::Flow,
        },
        frame,
    }
}

/// What one run counted in the program's totals slot and flows, as a [`Counted`].
fn counted_by(program: Program, totals: &Totals, flows: &[FlowCounters]) -> Counted {
    let into = if totals.non_ip_packets > 0 {
        Where::NonIp
    } else if totals.malformed_packets > 0 {
        Where::Malformed
    } else {
        Where::Flow
    };
    let flow_counts = flows.iter().fold((0, 0), |(p, b), flow| match program {
        Program::TcEgress => (p + flow.tx_packets, b + flow.tx_bytes),
        _ => (p + flow.rx_packets, b + flow.rx_bytes),
    });
    let unattributed = (
        totals.non_ip_packets + totals.malformed_packets,
        totals.non_ip_bytes + totals.malformed_bytes,
    );
    assert_eq!(
        (
            flow_counts.0 + unattributed.0,
            flow_counts.1 + unattributed.1
        ),
        (totals.packets, totals.bytes),
        "{program}: flows + unattributed = totals"
    );
    Counted {
        packets: totals.packets,
        bytes: totals.bytes,
        into,
    }
}

#[test]
fn gso_skbs_count_as_their_segments_on_the_wire_in_both_tc_programs() {
    let mut ebpf = load(&TC_PROGRAMS);
    let mut wrong = Vec::new();
    for case in cases() {
        for program in TC_PROGRAMS {
            clear_maps(&mut ebpf);
            let context = skb_context(case.gso_segs, case.gso_size);
            let returned = program
                .run_in_context(&ebpf, &case.frame, Some(&context))
                .unwrap_or_else(|e| panic!("{}: {program} did not run: {e:?}", case.name));
            assert!(program.passed(returned), "{}: {program} passes", case.name);
            let slot = totals_index(SLOT, program.direction()) as usize;
            let flows: Vec<FlowCounters> = flows(&ebpf).into_iter().map(|(_, c)| c).collect();
            assert!(flows.len() <= 1, "{}: {program} made one flow", case.name);
            let counted = counted_by(program, &totals(&ebpf)[slot], &flows);
            if counted != case.counted {
                wrong.push(format!(
                    "{} ({} bytes, gso_segs {}, gso_size {}) by {program}: counted {counted:?}, \
                     expected {:?}",
                    case.name,
                    case.frame.len(),
                    case.gso_segs,
                    case.gso_size,
                    case.counted
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "miscounted:\n{}", wrong.join("\n"));
}

/// A GSO skb of a new flow beyond the new-flow budget is as many packets in the
/// over-budget totals and in its prefix's counters.
#[test]
fn an_over_budget_gso_skb_counts_its_segments_in_its_prefix() {
    let program = Program::TcIngress;
    let ebpf = load_with(&[program], LINK_ETHERNET, Some(1));
    let first = Frame::ipv4(SRC4, DST4).udp(5000, 443).payload(10).build();
    program
        .run(&ebpf, &first)
        .expect("the budget's one new flow");
    let gso = Built::plain(&Frame::ipv4(SRC4, DST4).udp(5001, 443).payload(2500))
        .segmented("over budget", 1000);
    let context = skb_context(gso.gso_segs, gso.gso_size);
    program
        .run_in_context(&ebpf, &gso.frame, Some(&context))
        .expect("the GSO skb");
    let slot = totals_index(SLOT, program.direction()) as usize;
    let totals = totals(&ebpf)[slot];
    let expected = (gso.counted.packets, gso.counted.bytes);
    assert_eq!(
        (totals.over_budget_packets, totals.over_budget_bytes),
        expected
    );
    let prefixes = overflow(&ebpf);
    assert_eq!(prefixes.len(), 1, "one prefix: {prefixes:?}");
    assert_eq!(
        (prefixes[0].1.packets, prefixes[0].1.bytes),
        expected,
        "its prefix's counters"
    );
}
