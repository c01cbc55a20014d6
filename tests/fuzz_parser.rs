//! The parser fuzzed through BPF_PROG_TEST_RUN, against an oracle: seeded random and
//! mutated frames (`common/fuzz_frames.rs`) run through the three programs, on Ethernet
//! and raw-IP links, and every run must pass the packet, leave the totals exactly as the
//! frames injected (packets, bytes, and per reason), and leave exactly the flows whose
//! keys and counters a userspace parser derives (`common/oracle.rs`, etherparse).
//!
//! Frames go in batches, compared as aggregates; a batch that disagrees is replayed one
//! frame at a time, and the first frame that disagrees alone is written to
//! `tests/fixtures/frames/` (which the crafted-frame table then runs every time) before
//! the test fails.
//!
//! `cargo test` runs 100,000 frames from a fixed seed; `cargo xtask fuzz` sets
//! `FLOWMETER_FUZZ_FRAMES` and `FLOWMETER_FUZZ_SEED` for longer runs. Needs root.

#[path = "common/frames.rs"]
mod frames;
#[path = "common/fuzz_frames.rs"]
mod fuzz_frames;
#[path = "common/kept_frames.rs"]
mod kept_frames;
#[path = "common/oracle.rs"]
mod oracle;
#[path = "common/tally.rs"]
mod tally;
#[path = "common/test_run.rs"]
mod test_run;

use std::{env, time::Instant};

use aya::Ebpf;
use flowmeter_common::{LINK_ETHERNET, LINK_RAW_IP};
use fuzz_frames::{FrameFuzzer, Fuzzed};
use oracle::Expect;
use tally::{Outcome, Tally};
use test_run::{PROGRAMS, Program, clear_maps, load_sized};

const DEFAULT_FRAMES: u64 = 100_000;
const DEFAULT_SEED: u64 = 12;
const FRAMES_VAR: &str = "FLOWMETER_FUZZ_FRAMES";
const SEED_VAR: &str = "FLOWMETER_FUZZ_SEED";

/// Frames checked together: one read of the maps per batch and program.
const BATCH: usize = 1_000;
/// Room for every flow of a batch and more: an LRU map may evict before it is full
/// (each CPU holds back free entries), and an eviction would lose a flow.
const FLOW_CAPACITY: u32 = 4 * BATCH as u32 + 1_024;
/// One batch in this many runs on a raw-IP link.
const RAW_IP_ONE_IN: u64 = 8;

const OUTCOMES: [Outcome; 4] = [
    Outcome::Flow,
    Outcome::NonIp,
    Outcome::Malformed,
    Outcome::Refused,
];

fn from_env(name: &str, default: u64) -> u64 {
    match env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

fn link_of_batch(batch: u64) -> u32 {
    if batch % RAW_IP_ONE_IN == RAW_IP_ONE_IN - 1 {
        LINK_RAW_IP
    } else {
        LINK_ETHERNET
    }
}

/// One loaded object per program and link kind.
struct Objects(Vec<(Program, u32, Ebpf)>);

impl Objects {
    fn load() -> Self {
        let mut objects = Vec::new();
        for link in [LINK_ETHERNET, LINK_RAW_IP] {
            for program in PROGRAMS {
                let ebpf = load_sized(&[program], link, None, FLOW_CAPACITY);
                objects.push((program, link, ebpf));
            }
        }
        Self(objects)
    }

    fn get(&mut self, program: Program, link: u32) -> &mut Ebpf {
        let (_, _, ebpf) = self
            .0
            .iter_mut()
            .find(|(p, l, _)| *p == program && *l == link)
            .expect("an object for every program and link");
        ebpf
    }
}

#[test]
fn every_fuzzed_frame_is_counted_as_the_oracle_says_by_every_program() {
    let frames = from_env(FRAMES_VAR, DEFAULT_FRAMES);
    let seed = from_env(SEED_VAR, DEFAULT_SEED);
    eprintln!("fuzzing the parser: {frames} frames, seed {seed} ({SEED_VAR}={seed} replays it)");
    let started = Instant::now();
    let mut fuzzer = FrameFuzzer::new(seed);
    let mut objects = Objects::load();
    // Outcomes by program (in PROGRAMS' order) and kind (in OUTCOMES' order).
    let mut outcomes = [[0_u64; OUTCOMES.len()]; PROGRAMS.len()];
    let (mut first, mut batch) = (0_u64, 0_u64);
    while first < frames {
        let link = link_of_batch(batch);
        let count = (frames - first).min(BATCH as u64);
        let fuzzed: Vec<Fuzzed> = (0..count)
            .map(|_| fuzzer.next_frame(link == LINK_RAW_IP))
            .collect();
        for (p, program) in PROGRAMS.into_iter().enumerate() {
            let expects: Vec<Expect> = fuzzed
                .iter()
                .map(|frame| oracle::expect(program.visible(&frame.bytes), link))
                .collect();
            let ebpf = objects.get(program, link);
            let mut tally = Tally::new(program);
            for (frame, expect) in fuzzed.iter().zip(&expects) {
                let outcome = tally.run(ebpf, &frame.bytes, *expect);
                outcomes[p][OUTCOMES.iter().position(|o| *o == outcome).unwrap()] += 1;
            }
            let problems = tally.compare(ebpf);
            if !problems.is_empty() {
                let found = Found {
                    seed,
                    first,
                    program,
                    link,
                };
                found.fail(ebpf, &fuzzed, &expects, &problems);
            }
            clear_maps(ebpf);
        }
        first += count;
        batch += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fuzzed {frames} frames (seed {seed}) through {} programs in {seconds:.1} s: \
         every run passed the packet and was counted as the oracle says",
        PROGRAMS.len()
    );
    for (program, counts) in PROGRAMS.iter().zip(outcomes) {
        let by_outcome: Vec<String> = OUTCOMES
            .iter()
            .zip(counts)
            .map(|(outcome, n)| format!("{outcome:?} {n}"))
            .collect();
        println!("  {program}: {}", by_outcome.join(", "));
    }
}

/// A batch that disagreed with the oracle.
struct Found {
    seed: u64,
    /// The run's index of the batch's first frame.
    first: u64,
    program: Program,
    link: u32,
}

impl Found {
    /// Replays the batch one frame at a time, keeps the first frame that disagrees
    /// alone, and fails the test.
    fn fail(&self, ebpf: &mut Ebpf, fuzzed: &[Fuzzed], expects: &[Expect], problems: &[String]) {
        let program = self.program;
        for (n, (frame, expect)) in fuzzed.iter().zip(expects).enumerate() {
            clear_maps(ebpf);
            let mut tally = Tally::new(program);
            tally.run(ebpf, &frame.bytes, *expect);
            let alone = tally.compare(ebpf);
            if alone.is_empty() {
                continue;
            }
            let index = self.first + n as u64;
            let comments = [
                format!(
                    "Found by the parser fuzzer (tests/fuzz_parser.rs): seed {}, frame {index}, \
                     on {program}.",
                    self.seed
                ),
                format!("Made as: {}.", frame.how),
                format!("The oracle says: {expect:?}"),
                format!("The kernel counted otherwise:\n{}", alone.join("\n")),
            ];
            let name = format!("fuzz-seed{}-frame{index}", self.seed);
            let path = kept_frames::write(&name, self.link, &comments, &frame.bytes);
            panic!(
                "frame {index} ({} bytes, {}) on {program}, kept as {}:\n  oracle: {expect:?}\n  {}",
                frame.bytes.len(),
                frame.how,
                path.display(),
                alone.join("\n  ")
            );
        }
        panic!(
            "the batch of frames {}.. on {program} disagreed with the oracle, but no frame \
             of it does alone:\n  {}",
            self.first,
            problems.join("\n  ")
        );
    }
}
