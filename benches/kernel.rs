//! Kernel nanoseconds per packet of each eBPF program, as the kernel itself times them
//! (BPF_PROG_TEST_RUN), next to empty programs that only pass the packet
//! (`xdp/src/bin/baseline.rs`): the difference is what metering costs per packet.
//!
//! Run as root: `cargo bench --bench kernel`. Prints markdown tables.
//!
//! The flowmeter object meters the interface that BPF_PROG_TEST_RUN runs on (the netns
//! loopback, ifindex 1) as an Ethernet link, as userspace would configure it, and every
//! measurement checks that the packets really landed in the totals and the flow table:
//! an unmetered interface takes the programs' early exit and would measure nothing.
//!
//! - Existing flow: one call repeats the same frame 1,000,000 times, so after the first
//!   packet the flow exists and every later packet takes the lookup-and-add path. The
//!   kernel reports the average per packet; min and median over 7 calls.
//! - New flow every packet: one call per frame, each frame a different flow (another
//!   source address and port), into a table emptied before each of the 7 rounds of
//!   20,000 frames. The kernel's time of a single run includes one read of its clock,
//!   so this table has its own single-run baselines and existing-flow rows.

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
    FLOWS_MAP, FlowCounters, FlowKey, IFACES_MAP, IfaceConfig, LINK_ETHERNET, TC_EGRESS_PROG,
    TC_INGRESS_PROG, TOTALS_MAP, Totals, XDP_INGRESS_PROG,
};
use frames::{Frame, TCP_ACK};

static FLOWMETER: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowmeter"));
static BASELINE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));

const BASELINE_XDP: &str = "baseline_xdp_pass";
const BASELINE_TC: &str = "baseline_tc_unspec";

const REPEAT: u32 = 1_000_000;
const RUNS: usize = 7;
const NEW_FLOWS_PER_RUN: u16 = 20_000;

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

impl Hook {
    fn baseline(self) -> &'static str {
        match self {
            Hook::Xdp => BASELINE_XDP,
            Hook::Tc => BASELINE_TC,
        }
    }
}

/// Every program measured, baselines first so that the others can refer to them.
const PROGRAMS: [(&str, Hook); 5] = [
    (BASELINE_XDP, Hook::Xdp),
    (XDP_INGRESS_PROG, Hook::Xdp),
    (BASELINE_TC, Hook::Tc),
    (TC_INGRESS_PROG, Hook::Tc),
    (TC_EGRESS_PROG, Hook::Tc),
];

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
    let mut flowmeter = load(FLOWMETER, &PROGRAMS[1..])?;
    meter_test_run_interface(&mut flowmeter)?;
    let baseline = load(BASELINE, &PROGRAMS)?;

    println!("## Existing flow: {REPEAT} packets per call, {RUNS} calls\n");
    print_header();
    for workload in &WORKLOADS {
        let frame = (workload.flow)(0);
        let mut baselines = Vec::new();
        for &(name, hook) in &PROGRAMS {
            let program = find(&[&baseline, &flowmeter], name);
            let before = flow_packets(&flowmeter)?;
            let times = (0..RUNS)
                .map(|_| run(program, hook, &frame, REPEAT))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if name != hook.baseline() {
                check_counted(&flowmeter, before, RUNS as u64 * u64::from(REPEAT), name)?;
            }
            print_row(name, workload.name, &times, &mut baselines, hook);
        }
    }

    println!(
        "\n## New flow every packet: 1 packet per call, {NEW_FLOWS_PER_RUN} calls per round, \
         {RUNS} rounds\n"
    );
    print_header();
    for workload in &WORKLOADS {
        let frames: Vec<Vec<u8>> = (0..NEW_FLOWS_PER_RUN).map(workload.flow).collect();
        let mut baselines = Vec::new();
        for &(name, hook) in &PROGRAMS {
            // The same frame every call: the flow exists after the first.
            let program = find(&[&baseline, &flowmeter], name);
            let before = flow_packets(&flowmeter)?;
            let existing = (0..RUNS)
                .map(|_| single_runs(program, hook, frames.iter().take(1).cycle()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if name == hook.baseline() {
                print_row(name, workload.name, &existing, &mut baselines, hook);
                continue;
            }
            let expected = RUNS as u64 * u64::from(NEW_FLOWS_PER_RUN);
            check_counted(&flowmeter, before, expected, name)?;
            let label = format!("{name}, existing flow");
            print_row(&label, workload.name, &existing, &mut baselines, hook);
            let mut new = Vec::new();
            for _ in 0..RUNS {
                clear_flows(&mut flowmeter)?;
                let before = flow_packets(&flowmeter)?;
                let program = find(&[&flowmeter], name);
                new.push(single_runs(program, hook, frames.iter())?);
                check_counted(&flowmeter, before, NEW_FLOWS_PER_RUN.into(), name)?;
                let flows = flow_count(&mut flowmeter)?;
                if flows != usize::from(NEW_FLOWS_PER_RUN) {
                    bail!("{name}: {flows} flows in the table after {NEW_FLOWS_PER_RUN} new ones");
                }
            }
            let label = format!("{name}, new flow");
            print_row(&label, workload.name, &new, &mut baselines, hook);
        }
        clear_flows(&mut flowmeter)?;
    }
    Ok(())
}

/// The program called `name`, in whichever object holds it.
fn find<'a>(objects: &[&'a Ebpf], name: &str) -> &'a Program {
    objects
        .iter()
        .find_map(|ebpf| ebpf.program(name))
        .expect("every program is loaded")
}

/// Loads the object and those of `programs` that it holds.
fn load(object: &[u8], programs: &[(&str, Hook)]) -> anyhow::Result<Ebpf> {
    let mut ebpf = EbpfLoader::new()
        .load(object)
        .context("loading an eBPF object (this bench needs root: run it with sudo)")?;
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
/// them that have no flow (unparsed, or no room in the table).
fn flow_packets(ebpf: &Ebpf) -> anyhow::Result<(u64, u64)> {
    let map: PerCpuArray<_, Totals> =
        PerCpuArray::try_from(ebpf.map(TOTALS_MAP).context("TOTALS map")?)?;
    let (mut packets, mut without_flow) = (0, 0);
    for slot in 0..TOTALS_SLOTS {
        for cpu in map.get(&slot, 0)?.iter() {
            packets += cpu.packets;
            without_flow += cpu.non_ip_packets + cpu.malformed_packets + cpu.insert_failed_packets;
        }
    }
    Ok((packets, without_flow))
}

/// Fails unless exactly `expected` packets were counted since `before`, all in flows.
fn check_counted(ebpf: &Ebpf, before: (u64, u64), expected: u64, name: &str) -> anyhow::Result<()> {
    let after = flow_packets(ebpf)?;
    let (counted, without_flow) = (after.0 - before.0, after.1 - before.1);
    if counted != expected || without_flow != 0 {
        bail!(
            "{name}: counted {counted} packets ({without_flow} without a flow) instead of \
             {expected} in flows: is the test-run interface metered?"
        );
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

fn flow_count(ebpf: &mut Ebpf) -> anyhow::Result<usize> {
    let flows: PerCpuHashMap<_, FlowKey, FlowCounters> =
        PerCpuHashMap::try_from(ebpf.map_mut(FLOWS_MAP).context("FLOWS map")?)?;
    Ok(flows.keys().collect::<Result<Vec<_>, _>>()?.len())
}

fn clear_flows(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let mut flows: PerCpuHashMap<_, FlowKey, FlowCounters> =
        PerCpuHashMap::try_from(ebpf.map_mut(FLOWS_MAP).context("FLOWS map")?)?;
    let keys = flows.keys().collect::<Result<Vec<_>, _>>()?;
    for key in keys {
        flows.remove(&key)?;
    }
    Ok(())
}

fn duration_ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

fn print_header() {
    println!("| program | frame | min ns | median ns | median / baseline | median − baseline ns |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
}

/// Prints one row; a baseline's row also records its median for the rows that follow.
fn print_row(
    label: &str,
    frame: &str,
    times: &[f64],
    baselines: &mut Vec<(Hook, f64)>,
    hook: Hook,
) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (min, median) = (sorted[0], sorted[sorted.len() / 2]);
    if label == hook.baseline() {
        baselines.push((hook, median));
    }
    let base = baselines
        .iter()
        .find(|(h, _)| *h == hook)
        .map(|&(_, median)| median)
        .expect("the baseline is measured first");
    println!(
        "| {label} | {frame} | {min:.1} | {median:.1} | {:.2} | {:+.1} |",
        median / base,
        median - base
    );
}
