//! Random frames for the parser fuzzer (`fuzz_parser.rs`), from a seed: well-formed
//! frames of the crafted table's kinds (0-3 VLAN tags, IPv4 with options and fragments,
//! IPv6 with extension chains and fragments, TCP, UDP, ICMP, other protocols, ARP and
//! other ethertypes, payloads up to 9,000 bytes), then mutated: bit flips, bytes set to
//! values parsers branch on, a cut at a random offset or at every offset in turn, or
//! random bytes of any length. Each frame says how it was made, for the report of a
//! disagreement and the kept-frame file.

#![allow(dead_code)]

use std::collections::VecDeque;

use super::frames::{
    ETHERTYPE_ARP, ETHERTYPE_LLDP, Extension, Frame, IPPROTO_GRE, IPPROTO_NONE, IPPROTO_SCTP,
    TPID_8021AD, TPID_8021Q,
};

/// The largest frame made: a jumbo frame.
pub const LONGEST: usize = 9_000;
/// Bytes where the headers parsers read lie (128 of them are pulled in by TC).
const HEADER_BYTES: usize = 128;
/// One base frame in this many is cut at every offset of its headers in turn.
const CUT_EVERYWHERE_ONE_IN: u32 = 200;

/// One fuzzed frame and how it was made.
pub struct Fuzzed {
    pub bytes: Vec<u8>,
    pub how: String,
}

/// An endless, reproducible stream of fuzzed frames.
pub struct FrameFuzzer {
    rng: fastrand::Rng,
    /// Frames made but not handed out yet (the cuts of one frame at every offset).
    queued: VecDeque<Fuzzed>,
}

impl FrameFuzzer {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            queued: VecDeque::new(),
        }
    }

    /// The next frame; `raw_ip`: without a link header (tun, WireGuard), the IP
    /// header first.
    pub fn next_frame(&mut self, raw_ip: bool) -> Fuzzed {
        if let Some(queued) = self.queued.pop_front() {
            return queued;
        }
        let (base, kind) = self.base_frame();
        let bytes = if raw_ip {
            base.build()[base.layout().network..].to_vec()
        } else {
            base.build()
        };
        let rng = &mut self.rng;
        let choice = rng.u32(0..100);
        let (bytes, mutation) = match choice {
            0..20 => (bytes, "as built".to_owned()),
            20..55 => flip_bits(rng, bytes),
            55..70 => set_bytes(rng, bytes),
            70..88 => {
                let end = rng.usize(0..=bytes.len());
                (bytes[..end].to_vec(), format!("cut at {end}"))
            }
            _ => {
                // Mostly short, sometimes up to a jumbo frame.
                let len = if rng.bool() {
                    rng.usize(0..=HEADER_BYTES)
                } else {
                    rng.usize(0..=LONGEST)
                };
                let random: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                (random, format!("{len} random bytes"))
            }
        };
        if rng.u32(0..CUT_EVERYWHERE_ONE_IN) == 0 {
            for end in 0..bytes.len().min(HEADER_BYTES) {
                self.queued.push_back(Fuzzed {
                    bytes: bytes[..end].to_vec(),
                    how: format!("{kind}, {mutation}, cut at every offset: {end}"),
                });
            }
        }
        Fuzzed {
            bytes,
            how: format!("{kind}, {mutation}"),
        }
    }

    /// A well-formed frame of a random kind, and what it is.
    fn base_frame(&mut self) -> (Frame, String) {
        let rng = &mut self.rng;
        let (frame, network) = match rng.u32(0..100) {
            0..45 => ipv4(rng),
            45..90 => ipv6(rng),
            90..94 => (
                Frame::arp_request(address(rng), address(rng)),
                "arp".to_owned(),
            ),
            _ => {
                let ethertype = *pick(
                    rng,
                    &[
                        ETHERTYPE_LLDP,
                        ETHERTYPE_ARP,
                        0x9100,
                        0x88e5,
                        0x0842,
                        0x05dc,
                    ],
                );
                let body: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
                (
                    Frame::ethertype(ethertype, &body),
                    format!("ethertype {ethertype:#06x}"),
                )
            }
        };
        let (frame, tags) = vlan_tags(rng, frame);
        (frame, format!("{tags}{network}"))
    }
}

fn pick<'a, T>(rng: &mut fastrand::Rng, choices: &'a [T]) -> &'a T {
    &choices[rng.usize(0..choices.len())]
}

fn address<const N: usize>(rng: &mut fastrand::Rng) -> [u8; N] {
    std::array::from_fn(|_| rng.u8(..))
}

/// 0-3 tags, most often none; now and then the old QinQ TPID 0x9100, which flowmeter
/// does not take for a tag.
fn vlan_tags(rng: &mut fastrand::Rng, mut frame: Frame) -> (Frame, String) {
    let count = *pick(rng, &[0, 0, 0, 0, 1, 1, 2, 3]);
    let mut tpids = Vec::new();
    for _ in 0..count {
        let tpid = *pick(
            rng,
            &[
                TPID_8021Q,
                TPID_8021Q,
                TPID_8021Q,
                TPID_8021AD,
                TPID_8021AD,
                0x9100,
            ],
        );
        frame = frame.vlan(tpid, rng.u16(0..4096));
        tpids.push(format!("{tpid:#06x}"));
    }
    let tags = if tpids.is_empty() {
        String::new()
    } else {
        format!("tags [{}] ", tpids.join(" "))
    };
    (frame, tags)
}

fn ipv4(rng: &mut fastrand::Rng) -> (Frame, String) {
    let mut frame = Frame::ipv4(address(rng), address(rng));
    let mut what = "ipv4".to_owned();
    if rng.u32(0..4) == 0 {
        let options: Vec<u8> = (0..4 * rng.usize(1..=10)).map(|_| rng.u8(..)).collect();
        what += &format!(" {}B options", options.len());
        frame = frame.ipv4_options(&options);
    }
    if rng.u32(0..5) == 0 {
        let offset = if rng.bool() { 0 } else { rng.u16(0..0x2000) };
        let more = rng.bool();
        what += &format!(" fragment {offset}{}", if more { "+" } else { "" });
        frame = frame.ipv4_fragment(offset, more);
    }
    transport(rng, frame, what)
}

fn ipv6(rng: &mut fastrand::Rng) -> (Frame, String) {
    let mut frame = Frame::ipv6(address(rng), address(rng));
    let mut what = "ipv6".to_owned();
    // Most often none; up to eight, beyond the six flowmeter follows.
    let chain = *pick(rng, &[0, 0, 0, 1, 1, 2, 3, 5, 6, 7, 8]);
    for _ in 0..chain {
        let len8 = *pick(rng, &[0, 0, 1, 2, 5]);
        let extension = match rng.u32(0..4) {
            0 => Extension::HopByHop { len8 },
            1 => Extension::Routing { len8 },
            2 => Extension::DestOptions { len8 },
            _ => Extension::Fragment {
                offset: if rng.bool() { 0 } else { rng.u16(0..0x2000) },
                more: rng.bool(),
            },
        };
        what += &format!(" {extension:?}");
        frame = frame.extension(extension);
    }
    transport(rng, frame, what)
}

fn transport(rng: &mut fastrand::Rng, frame: Frame, what: String) -> (Frame, String) {
    let (frame, proto) = match rng.u32(0..100) {
        0..30 => (
            frame.tcp(rng.u16(..), rng.u16(..), rng.u8(..)),
            "tcp".to_owned(),
        ),
        30..60 => (frame.udp(rng.u16(..), rng.u16(..)), "udp".to_owned()),
        60..70 => (frame.icmp(), "icmp".to_owned()),
        70..80 => (frame.icmpv6(), "icmpv6".to_owned()),
        _ => {
            let proto = if rng.bool() {
                *pick(rng, &[IPPROTO_GRE, IPPROTO_SCTP, IPPROTO_NONE, 51, 0, 44])
            } else {
                rng.u8(..)
            };
            (frame.protocol(proto), format!("protocol {proto}"))
        }
    };
    // Mostly small, sometimes a full or a jumbo frame.
    let payload = match rng.u32(0..10) {
        0..7 => rng.usize(0..64),
        7..9 => rng.usize(0..1_500),
        _ => rng.usize(0..LONGEST),
    };
    (
        frame.payload(payload),
        format!("{what} {proto} +{payload}B"),
    )
}

/// 1-4 bits flipped, most of them where the headers lie.
fn flip_bits(rng: &mut fastrand::Rng, mut bytes: Vec<u8>) -> (Vec<u8>, String) {
    if bytes.is_empty() {
        return (bytes, "empty, nothing to flip".to_owned());
    }
    let mut flipped = Vec::new();
    for _ in 0..rng.usize(1..=4) {
        let at = if rng.u32(0..8) == 0 {
            rng.usize(0..bytes.len())
        } else {
            rng.usize(0..bytes.len().min(HEADER_BYTES))
        };
        let bit = rng.u8(0..8);
        bytes[at] ^= 1 << bit;
        flipped.push(format!("{at}.{bit}"));
    }
    (bytes, format!("bits flipped at {}", flipped.join(" ")))
}

/// Values that parsers branch on: ethertypes' and TPIDs' bytes, IP versions and header
/// lengths, extension and protocol numbers, and the extremes.
const BRANCHED_ON: [u8; 16] = [
    0x00, 0xff, 0x81, 0x88, 0xa8, 0x86, 0xdd, 0x08, 0x45, 0x60, 0x4f, 6, 17, 43, 44, 60,
];

/// 1-3 header bytes set to values parsers branch on.
fn set_bytes(rng: &mut fastrand::Rng, mut bytes: Vec<u8>) -> (Vec<u8>, String) {
    if bytes.is_empty() {
        return (bytes, "empty, nothing to set".to_owned());
    }
    let mut set = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        let at = rng.usize(0..bytes.len().min(HEADER_BYTES));
        bytes[at] = *pick(rng, &BRANCHED_ON);
        set.push(format!("{at}={:#04x}", bytes[at]));
    }
    (bytes, format!("bytes set: {}", set.join(" ")))
}
