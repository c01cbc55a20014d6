//! What a run of frames through one program must leave in the maps, kept as the frames
//! go ([`Tally::run`]), then compared with what the kernel counted ([`Tally::compare`]):
//! every totals slot exactly, and every flow's key and counters. One frame or a whole
//! batch alike; used by the crafted-frame table and the fuzzer, with the oracle's or the
//! table's [`Expect`].

#![allow(dead_code)] // each test file uses its own part of it

use std::collections::BTreeMap;

use aya::Ebpf;
use flowmeter_common::{DIR_TX, FlowKey, Totals, totals_index};

use super::{
    oracle::Expect,
    test_run::{IFINDEX, Program, SLOT, TOTALS_SLOTS, flows, is_einval, kernel_refusal, totals},
};

/// What happened to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Flow,
    NonIp,
    Malformed,
    /// BPF_PROG_TEST_RUN refused the frame (see `kernel_refusal`): nothing ran.
    Refused,
}

/// A flow's expected counters: (rx packets, rx bytes), (tx packets, tx bytes), TCP flags.
type FlowCount = ((u64, u64), (u64, u64), u8);

/// The counts a run of frames must leave, and the problems seen while running them.
pub struct Tally {
    program: Program,
    totals: Vec<Totals>,
    flows: BTreeMap<FlowKey, FlowCount>,
    problems: Vec<String>,
}

impl Tally {
    /// Nothing counted yet, on `program`, whose maps must be empty too.
    pub fn new(program: Program) -> Self {
        Self {
            program,
            totals: vec![Totals::default(); TOTALS_SLOTS as usize],
            flows: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// Runs `frame` once on the program (loaded in `ebpf`) and adds what `expect` says
    /// it must count; `expect` is of the part of the frame the program sees
    /// ([`Program::visible`]).
    pub fn run(&mut self, ebpf: &Ebpf, frame: &[u8], expect: Expect) -> Outcome {
        let program = self.program;
        match program.run(ebpf, frame) {
            Ok(returned) => {
                if !program.passed(returned) {
                    self.problems
                        .push(format!("did not pass the packet: returned {returned:#x}"));
                }
                self.count(program.visible(frame).len() as u64, expect)
            }
            Err(error) if is_einval(&error) && kernel_refusal(program, frame).is_some() => {
                // Nothing ran, so nothing may have been counted.
                Outcome::Refused
            }
            Err(error) => {
                self.problems
                    .push(format!("BPF_PROG_TEST_RUN failed: {error:?}"));
                Outcome::Refused
            }
        }
    }

    fn count(&mut self, len: u64, expect: Expect) -> Outcome {
        let direction = self.program.direction();
        let slot = &mut self.totals[totals_index(SLOT, direction) as usize];
        slot.packets += 1;
        slot.bytes += len;
        match expect {
            Expect::NonIp => {
                slot.non_ip_packets += 1;
                slot.non_ip_bytes += len;
                Outcome::NonIp
            }
            Expect::Malformed => {
                slot.malformed_packets += 1;
                slot.malformed_bytes += len;
                Outcome::Malformed
            }
            Expect::Flow(seen) => {
                let (rx, tx, flags) = self.flows.entry(seen.key(IFINDEX, direction)).or_default();
                let counted = if direction == DIR_TX { tx } else { rx };
                counted.0 += 1;
                counted.1 += len;
                *flags |= seen.tcp_flags;
                Outcome::Flow
            }
        }
    }

    /// Every way in which what the kernel counted differs from what the frames run so
    /// far must have left.
    pub fn compare(&self, ebpf: &Ebpf) -> Vec<String> {
        let mut problems = self.problems.clone();
        for (slot, (got, want)) in totals(ebpf).iter().zip(&self.totals).enumerate() {
            if got != want {
                let direction = if slot % 2 == DIR_TX as usize {
                    "tx"
                } else {
                    "rx"
                };
                problems.push(format!(
                    "totals slot {slot} (interface slot {}, {direction}):\n     got {got:?}\n    \
                     want {want:?}",
                    slot / 2,
                ));
            }
        }
        let got: BTreeMap<FlowKey, FlowCount> = flows(ebpf)
            .into_iter()
            .map(|(key, c)| {
                if c.first_seen_ns == 0 {
                    problems.push(format!("flow timestamp not set: {key:?} {c:?}"));
                }
                let count = (
                    (c.rx_packets, c.rx_bytes),
                    (c.tx_packets, c.tx_bytes),
                    c.tcp_flags,
                );
                (key, count)
            })
            .collect();
        if got != self.flows {
            let missing: Vec<_> = self
                .flows
                .iter()
                .filter(|f| !got.contains_key(f.0))
                .collect();
            let unexpected: Vec<_> = got
                .iter()
                .filter(|f| !self.flows.contains_key(f.0))
                .collect();
            let differing: Vec<_> = got
                .iter()
                .filter_map(|(key, count)| {
                    let want = self.flows.get(key)?;
                    (want != count).then_some((key, count, want))
                })
                .collect();
            problems.push(format!(
                "flows ((rx packets, bytes), (tx packets, bytes), tcp flags):\n     \
                 missing {missing:?}\n    unexpected {unexpected:?}\n    \
                 differing (key, got, want) {differing:?}"
            ));
        }
        problems
    }
}
