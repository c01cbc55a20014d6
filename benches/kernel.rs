//! Kernel nanoseconds per packet of each eBPF program, as the kernel itself times them
//! (BPF_PROG_TEST_RUN), next to empty programs that only pass the packet
//! (`xdp/src/bin/baseline.rs`): the difference is what metering costs per packet.
//!
//! Run as root: `cargo bench --bench kernel`. Prints markdown tables.
//!
//! Other builds of the programs can run beside the embedded one, in the same run, so
//! that a change is measured against what it replaces on the same noisy machine:
//! `FLOWMETER_BENCH_OBJECTS=before=/tmp/before.o,other=/tmp/other.o cargo bench --bench
//! kernel` (an object built from an older commit with `cargo +nightly build --release
//! --target bpfel-unknown-none -Z build-std=core` in its `xdp/`; its flow maps may have
//! another layout: only its totals, whose layout is the same, are checked).
//!
//! Each object meters the interface that BPF_PROG_TEST_RUN runs on (the netns loopback,
//! ifindex 1) as an Ethernet link, as userspace would configure it, and every
//! measurement checks that the packets really landed in the totals and in flows: an
//! unmetered interface takes the programs' early exit and would measure nothing.
//!
//! - Known flow: one call repeats the same frame 1,000,000 times, so after the first
//!   packet the flow exists and every later packet takes the lookup-and-add path. The
//!   kernel reports the average per packet; min and median over 7 calls.
//! - New flow every packet: one call per frame, each frame a different flow (another
//!   source address and port), into a fresh object (empty maps) in each of the 7 rounds
//!   of 10,000 frames. The kernel's time of a single run includes one read of its
//!   clock, so this table has its own single-run baselines and known-flow rows.
//! - Table full: the same, into flow maps of 1,024 entries that an unmeasured round has
//!   filled: every packet's flow is new and its insert evicts the least recently used.
//! - The new-flow budget (received packets only, so not on the egress program): "under
//!   budget" is a new flow every packet with a budget larger than the round (the cost of
//!   the budget's bookkeeping on an insert); "over budget" the same with the budget spent
//!   by one packet before the round, so every packet is counted per source prefix
//!   instead of inserted (a flood, held back).
//!
//! Known flows are measured with the default budget set, as userspace loads the object:
//! a known flow's packet never looks at it. Other objects without the budget ignore it;
//! one whose totals have another layout is measured but not checked (a note says so).

#[path = "../tests/common/frames.rs"]
mod frames;

use std::time::Duration;

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, PerCpuArray, PerCpuHashMap},
    programs::{Program, SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use flowmeter_common::{
    DEFAULT_FLOW_CAPACITY, FLOWS_MAP, FLOWS_V4_MAP, FlowCounters, FlowKey, FlowKeyV4, IFACES_MAP,
    IfaceConfig, LINK_ETHERNET, NEW_FLOW_BUDGET_GLOBAL, TC_EGRESS_PROG, TC_INGRESS_PROG,
    TOTALS_MAP, Totals, XDP_INGRESS_PROG,
};
use frames::{Frame, TCP_ACK};

static FLOWMETER: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowmeter"));
static BASELINE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));

/// Extra objects to measure beside the embedded one: `label=path,label=path`.
const OBJECTS_ENV: &str = "FLOWMETER_BENCH_OBJECTS";

const BASELINE_XDP: &str = "baseline_xdp_pass";
const BASELINE_TC: &str = "baseline_tc_unspec";

const REPEAT: u32 = 1_000_000;
const RUNS: usize = 7;
const NEW_FLOWS_PER_RUN: u16 = 10_000;
/// Entries of each flow map in the table-full rounds: far fewer than a round's flows.
const FULL_TABLE: u32 = 1024;
/// The budget userspace sets by default (`--flows` / 32).
const DEFAULT_BUDGET: u64 = DEFAULT_FLOW_CAPACITY as u64 / 32;
/// No budget: every new flow is inserted.
const NO_BUDGET: u64 = 0;
/// A budget no round spends.
const AMPLE_BUDGET: u64 = 1 << 40;
/// A budget the first packet spends.
const SPENT_BUDGET: u64 = 1;

/// BPF_PROG_TEST_RUN without a context runs on the netns loopback (ifindex 1, for
/// XDP's ingress_ifindex and the skb's ifindex alike); it gets totals slot 0.
const IFINDEX: u32 = 1;
/// Totals slots of that interface: rx and tx.
const TOTALS_SLOTS: u32 = 2;

const XDP_PASS: u32 = 2;
const TC_ACT_UNSPEC: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hook {
    Xdp,
    Tc,
}

/// The baselines, each with its hook.
const BASELINES: [(&str, Hook); 2] = [(BASELINE_XDP, Hook::Xdp), (BASELINE_TC, Hook::Tc)];
/// flowmeter's programs, in every object measured.
const PROGRAMS: [(&str, Hook); 3] = [
    (XDP_INGRESS_PROG, Hook::Xdp),
    (TC_INGRESS_PROG, Hook::Tc),
    (TC_EGRESS_PROG, Hook::Tc),
];

/// A build of flowmeter's programs, and what the tables call it.
struct Object {
    label: String,
    bytes: Vec<u8>,
}

/// A frame to measure on, and how to make the n-th of many different flows like it.
struct Workload {
    name: &'static str,
    flow: fn(u16) -> Vec<u8>,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "IPv4/UDP 64 B",
        flow: |n| {
            Frame::ipv4([10, 1, (n >> 8) as u8, n as u8], [10, 0, 0, 1])
                .udp(1024 + n, 53)
                .frame_len(64)
                .build()
        },
    },
    Workload {
        name: "802.1Q IPv4/UDP 64 B",
        flow: |n| {
            Frame::ipv4([10, 1, (n >> 8) as u8, n as u8], [10, 0, 0, 1])
                .dot1q(100)
                .udp(1024 + n, 53)
                .frame_len(64)
                .build()
        },
    },
    Workload {
        name: "IPv4/TCP 1514 B",
        flow: |n| {
            Frame::ipv4([10, 1, (n >> 8) as u8, n as u8], [10, 0, 0, 1])
                .tcp(1024 + n, 443, TCP_ACK)
                .frame_len(1514)
                .build()
        },
    },
    Workload {
        name: "IPv6/TCP 1514 B",
        flow: |n| {
            let mut src = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            src[14..].copy_from_slice(&n.to_be_bytes());
            let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            Frame::ipv6(src, dst)
                .tcp(1024 + n, 443, TCP_ACK)
                .frame_len(1514)
                .build()
        },
    },
];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this bench takes no arguments.
    let objects = objects()?;
    let baseline = load(BASELINE, &BASELINES, DEFAULT_FLOW_CAPACITY, NO_BUDGET)?;
    // Every program of every object, measured in turn within each round, so that what
    // else the machine does falls on all of them alike.
    let measured: Vec<(&Object, &str, Hook)> = objects
        .iter()
        .flat_map(|object| {
            PROGRAMS
                .iter()
                .map(move |&(name, hook)| (object, name, hook))
        })
        .collect();
    let load_each = |capacity, budget| {
        measured
            .iter()
            .map(|&(object, name, hook)| load(&object.bytes, &[(name, hook)], capacity, budget))
            .collect::<anyhow::Result<Vec<_>>>()
    };

    println!("## Known flow: {REPEAT} packets per call, {RUNS} rounds\n");
    print_header();
    for workload in &WORKLOADS {
        let frame = (workload.flow)(0);
        let ebpfs = load_each(DEFAULT_FLOW_CAPACITY, DEFAULT_BUDGET)?;
        let mut base_times = vec![Vec::new(); BASELINES.len()];
        let mut times = vec![Vec::new(); measured.len()];
        for _ in 0..RUNS {
            for (i, &(name, hook)) in BASELINES.iter().enumerate() {
                base_times[i].push(run(program(&baseline, name), hook, &frame, REPEAT)?);
            }
            for (i, &(_, name, hook)) in measured.iter().enumerate() {
                times[i].push(run(program(&ebpfs[i], name), hook, &frame, REPEAT)?);
            }
        }
        let baselines = print_baselines(workload.name, &base_times);
        for (i, &(object, name, hook)) in measured.iter().enumerate() {
            check_counted(
                &ebpfs[i],
                Some((0, 0)),
                RUNS as u64 * u64::from(REPEAT),
                Without::None,
                name,
            )?;
            print_row(
                &object.label,
                name,
                workload.name,
                &times[i],
                &baselines,
                hook,
            );
        }
    }

    println!(
        "\n## One packet per call: {NEW_FLOWS_PER_RUN} calls per round, {RUNS} rounds \
         (known flow, new flow every packet: without a budget, under budget, over budget; \
         table of {FULL_TABLE} full)\n"
    );
    print_header();
    let expected = u64::from(NEW_FLOWS_PER_RUN);
    for workload in &WORKLOADS {
        let frames: Vec<Vec<u8>> = (0..NEW_FLOWS_PER_RUN).map(workload.flow).collect();
        let same_frame = || frames.iter().take(1).cycle();
        let known_ebpfs = load_each(DEFAULT_FLOW_CAPACITY, DEFAULT_BUDGET)?;
        let full_ebpfs = load_each(FULL_TABLE, NO_BUDGET)?;
        // Fills the small tables: from now on every new flow evicts one.
        for (i, &(_, name, hook)) in measured.iter().enumerate() {
            single_runs(program(&full_ebpfs[i], name), hook, frames.iter())?;
        }
        let mut base_times = vec![Vec::new(); BASELINES.len()];
        let mut times = vec![[const { Vec::new() }; 5]; measured.len()];
        // Spends a budget of one: a flow no round's frames have.
        let spender = (workload.flow)(u16::MAX);
        for _ in 0..RUNS {
            for (i, &(name, hook)) in BASELINES.iter().enumerate() {
                base_times[i].push(single_runs(program(&baseline, name), hook, same_frame())?);
            }
            for (i, &(object, name, hook)) in measured.iter().enumerate() {
                let [known, new, under, over, full] = &mut times[i];
                let ebpf = &known_ebpfs[i];
                let before = flow_packets(ebpf)?;
                known.push(single_runs(program(ebpf, name), hook, same_frame())?);
                check_counted(ebpf, before, expected, Without::None, name)?;

                for (budget, times) in [(NO_BUDGET, new), (AMPLE_BUDGET, under)] {
                    let ebpf = load(
                        &object.bytes,
                        &[(name, hook)],
                        DEFAULT_FLOW_CAPACITY,
                        budget,
                    )?;
                    times.push(single_runs(program(&ebpf, name), hook, frames.iter())?);
                    check_counted(&ebpf, Some((0, 0)), expected, Without::None, name)?;
                    if let Some(flows) = flow_count(&ebpf)?
                        && flows != usize::from(NEW_FLOWS_PER_RUN)
                    {
                        bail!(
                            "{name}: {flows} flows in the maps after {NEW_FLOWS_PER_RUN} new ones"
                        );
                    }
                }

                let ebpf = load(
                    &object.bytes,
                    &[(name, hook)],
                    DEFAULT_FLOW_CAPACITY,
                    SPENT_BUDGET,
                )?;
                run(program(&ebpf, name), hook, &spender, 1)?;
                let before = flow_packets(&ebpf)?;
                over.push(single_runs(program(&ebpf, name), hook, frames.iter())?);
                // Sent packets always make flows; received ones are over budget, but for
                // a window that ends during the round (about one in a second's worth).
                let without = match hook_direction(name) {
                    Direction::Rx => Without::Most,
                    Direction::Tx => Without::None,
                };
                check_counted(&ebpf, before, expected, without, name)?;

                let ebpf = &full_ebpfs[i];
                let before = flow_packets(ebpf)?;
                full.push(single_runs(program(ebpf, name), hook, frames.iter())?);
                check_counted(ebpf, before, expected, Without::Some, name)?;
                if let Some(flows) = flow_count(ebpf)?
                    && flows > 2 * FULL_TABLE as usize
                {
                    bail!("{name}: {flows} flows in maps of {FULL_TABLE} entries");
                }
            }
        }
        let baselines = print_baselines(workload.name, &base_times);
        for (i, &(object, name, hook)) in measured.iter().enumerate() {
            for (case, times) in [
                "known flow",
                "new flow",
                "new flow, under budget",
                "new flow, over budget",
                "table full",
            ]
            .iter()
            .zip(&times[i])
            {
                let label = format!("{name}, {case}");
                print_row(
                    &object.label,
                    &label,
                    workload.name,
                    times,
                    &baselines,
                    hook,
                );
            }
        }
    }
    Ok(())
}

/// Prints the baselines' rows; returns each hook's median.
fn print_baselines(frame: &str, times: &[Vec<f64>]) -> Vec<(Hook, f64)> {
    let baselines: Vec<(Hook, f64)> = BASELINES
        .iter()
        .zip(times)
        .map(|(&(_, hook), times)| (hook, median(times)))
        .collect();
    for (&(name, hook), times) in BASELINES.iter().zip(times) {
        print_row("", name, frame, times, &baselines, hook);
    }
    baselines
}

/// The embedded object, then those named in [`OBJECTS_ENV`].
fn objects() -> anyhow::Result<Vec<Object>> {
    let mut objects = vec![Object {
        label: "this build".into(),
        bytes: FLOWMETER.to_vec(),
    }];
    let listed = std::env::var(OBJECTS_ENV).unwrap_or_default();
    for entry in listed.split(',').filter(|e| !e.is_empty()) {
        let (label, path) = entry
            .split_once('=')
            .with_context(|| format!("{OBJECTS_ENV}: '{entry}' is not label=path"))?;
        let bytes = std::fs::read(path).with_context(|| format!("{OBJECTS_ENV}: {path}"))?;
        objects.push(Object {
            label: label.into(),
            bytes,
        });
    }
    Ok(objects)
}

/// The loaded program called `name`.
fn program<'a>(ebpf: &'a Ebpf, name: &str) -> &'a Program {
    ebpf.program(name)
        .expect("every program measured is loaded")
}

/// Which way the program's packets go, from the host's side.
enum Direction {
    Rx,
    Tx,
}

fn hook_direction(program: &str) -> Direction {
    if program == TC_EGRESS_PROG {
        Direction::Tx
    } else {
        Direction::Rx
    }
}

/// Loads the object with flow maps of `flow_capacity` entries and a new-flow budget of
/// `budget` (if the object has one), meters the test-run interface, and loads those of
/// `programs` that it holds.
fn load(
    object: &[u8],
    programs: &[(&str, Hook)],
    flow_capacity: u32,
    budget: u64,
) -> anyhow::Result<Ebpf> {
    let mut ebpf = EbpfLoader::new()
        .override_global(NEW_FLOW_BUDGET_GLOBAL, &budget, false)
        .map_max_entries(FLOWS_MAP, flow_capacity)
        .map_max_entries(FLOWS_V4_MAP, flow_capacity)
        .load(object)
        .context("loading an eBPF object (this bench needs root: run it with sudo)")?;
    if ebpf.map(IFACES_MAP).is_some() {
        meter_test_run_interface(&mut ebpf)?;
    }
    for &(name, hook) in programs {
        let Some(program) = ebpf.program_mut(name) else {
            continue;
        };
        match hook {
            Hook::Xdp => <&mut Xdp>::try_from(program)?.load(),
            Hook::Tc => <&mut SchedClassifier>::try_from(program)?.load(),
        }
        .with_context(|| format!("loading {name}"))?;
    }
    Ok(ebpf)
}

/// Meters the test-run interface, as userspace would configure an Ethernet interface.
fn meter_test_run_interface(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let mut ifaces: Array<_, IfaceConfig> =
        Array::try_from(ebpf.map_mut(IFACES_MAP).context("IFACES map")?)?;
    let iface = IfaceConfig {
        slot: 0,
        link: LINK_ETHERNET,
    };
    ifaces.set(IFINDEX, iface, 0)?;
    Ok(())
}

/// Packets of the test-run interface's totals (both directions, all CPUs), and those of
/// them that have no flow (unparsed, no room in the table, over the new-flow budget);
/// `None` for an object whose totals have another layout than this build's.
fn flow_packets(ebpf: &Ebpf) -> anyhow::Result<Option<(u64, u64)>> {
    let Ok(map) = PerCpuArray::<_, Totals>::try_from(ebpf.map(TOTALS_MAP).context("TOTALS map")?)
    else {
        return Ok(None);
    };
    let (mut packets, mut without_flow) = (0, 0);
    for slot in 0..TOTALS_SLOTS {
        for cpu in map.get(&slot, 0)?.iter() {
            packets += cpu.packets;
            without_flow += cpu.non_ip_packets
                + cpu.malformed_packets
                + cpu.insert_failed_packets
                + cpu.over_budget_packets;
        }
    }
    Ok(Some((packets, without_flow)))
}

/// How many of a round's packets may have no flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Without {
    /// None: all in flows.
    None,
    /// Some (a full table): said, not failed.
    Some,
    /// All but a few (the new-flow budget spent): fewer is a failure.
    Most,
}

/// Fails unless exactly `expected` packets were counted since `before`, and as many of
/// them in flows as `without` says. Objects whose totals have another layout are not
/// checked (`before` is `None`).
fn check_counted(
    ebpf: &Ebpf,
    before: Option<(u64, u64)>,
    expected: u64,
    without: Without,
    name: &str,
) -> anyhow::Result<()> {
    let (Some(before), Some(after)) = (before, flow_packets(ebpf)?) else {
        eprintln!("note: {name}: another totals layout, not checked");
        return Ok(());
    };
    let (counted, without_flow) = (after.0 - before.0, after.1 - before.1);
    let wrong = match without {
        Without::None => without_flow != 0,
        Without::Some => false,
        Without::Most => without_flow + 10 < expected,
    };
    if counted != expected || wrong {
        bail!(
            "{name}: counted {counted} packets ({without_flow} without a flow) instead of \
             {expected}: is the test-run interface metered?"
        );
    }
    if without == Without::Some && without_flow != 0 {
        eprintln!("note: {name}: {without_flow} of {expected} packets found the table full");
    }
    Ok(())
}

/// One BPF_PROG_TEST_RUN call of `repeat` packets: the kernel's mean ns per packet.
fn run(program: &Program, hook: Hook, frame: &[u8], repeat: u32) -> anyhow::Result<f64> {
    let options = TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..Default::default()
    };
    let result = match hook {
        Hook::Xdp => <&Xdp>::try_from(program)?.test_run(options),
        Hook::Tc => <&SchedClassifier>::try_from(program)?.test_run(options),
    }
    .context("BPF_PROG_TEST_RUN")?;
    let pass = match hook {
        Hook::Xdp => XDP_PASS,
        Hook::Tc => TC_ACT_UNSPEC,
    };
    if result.return_value != pass {
        bail!(
            "returned {:#x} instead of passing the packet",
            result.return_value
        );
    }
    Ok(duration_ns(result.duration))
}

/// One call per frame: the mean of the kernel's single-run times.
fn single_runs<'a>(
    program: &Program,
    hook: Hook,
    frames: impl Iterator<Item = &'a Vec<u8>>,
) -> anyhow::Result<f64> {
    let (mut total, mut calls) = (0.0, 0);
    for frame in frames.take(NEW_FLOWS_PER_RUN.into()) {
        total += run(program, hook, frame, 1)?;
        calls += 1;
    }
    Ok(total / f64::from(calls))
}

/// Flows in the object's maps, if they have this build's layout (an older object's may
/// not: then `None`).
fn flow_count(ebpf: &Ebpf) -> anyhow::Result<Option<usize>> {
    let mut count = None;
    if let Some(Ok(map)) = ebpf
        .map(FLOWS_V4_MAP)
        .map(PerCpuHashMap::<_, FlowKeyV4, FlowCounters>::try_from)
    {
        *count.get_or_insert(0) += map.keys().collect::<Result<Vec<_>, _>>()?.len();
    }
    if let Some(Ok(map)) = ebpf
        .map(FLOWS_MAP)
        .map(PerCpuHashMap::<_, FlowKey, FlowCounters>::try_from)
    {
        *count.get_or_insert(0) += map.keys().collect::<Result<Vec<_>, _>>()?.len();
    }
    Ok(count)
}

fn duration_ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn print_header() {
    println!(
        "| object | program | frame | min ns | median ns | median / baseline | median − baseline ns |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: |");
}

/// Prints one row, against the baseline of its hook.
fn print_row(
    object: &str,
    label: &str,
    frame: &str,
    times: &[f64],
    baselines: &[(Hook, f64)],
    hook: Hook,
) {
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median = median(times);
    let base = baselines
        .iter()
        .find(|(h, _)| *h == hook)
        .map(|&(_, median)| median)
        .expect("the baseline is measured first");
    println!(
        "| {object} | {label} | {frame} | {min:.1} | {median:.1} | {:.2} | {:+.1} |",
        median / base,
        median - base
    );
}
