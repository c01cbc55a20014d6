//! Throughput, CPU, memory and accuracy of each meter on the veth pair: 64-byte UDP
//! frames (trafgen) from one flow, TCP (iperf3), and a flood of 64-byte UDP frames from
//! random source addresses and ports (every packet a new flow), every meter in turn
//! within each round, so that a busy moment of the machine touches all of them alike.
//! The records feed the throughput and flood tables of docs/benchmarks.md.

use std::{collections::BTreeMap, path::Path, time::Instant};

use anyhow::{Result, bail};

use super::{
    Plan,
    lab::Lab,
    meters::{Accuracy, Meter, Running, Tools},
    procs::{self, Usage, secs},
    results::Record,
    traffic::{self, Flows, Kind},
};

/// What one run of one meter under one load gave.
struct Measurement {
    rate: f64,
    cpu_pct: Option<f64>,
    rss_mib: Option<f64>,
    accuracy: Accuracy,
}

#[derive(Default)]
struct Series {
    rate: Vec<f64>,
    ratio: Vec<f64>,
    cpu: Vec<f64>,
    rss: Vec<f64>,
    packets: Vec<f64>,
    bytes: Vec<f64>,
    failures: Vec<String>,
}

/// Whether `meter` runs under this load: the flood compares no meter, flowmeter on the
/// hook auto picks, iftop and nethogs (bandwhich is left out to keep the run short).
fn measures(kind: Kind, meter: Meter) -> bool {
    use super::meters::Hook::Tc;
    // Where a second flowmeter row may go once `--new-flow-budget` exists: the
    // default (budget on) is `Flowmeter(Tc)`; "budget off" would be a variant run
    // with `--new-flow-budget 0`.
    kind != Kind::Flood
        || matches!(
            meter,
            Meter::None | Meter::Flowmeter(Tc) | Meter::Iftop | Meter::Nethogs
        )
}

/// The meters in the order of the tables.
pub fn meters(tools: &Tools) -> Vec<Meter> {
    use super::meters::Hook::*;
    let mut meters = vec![
        Meter::None,
        Meter::Flowmeter(Tc),
        Meter::Flowmeter(XdpGeneric),
        Meter::Flowmeter(Xdp),
        Meter::Iftop,
        Meter::Nethogs,
    ];
    if tools.bandwhich.is_ok() {
        meters.push(Meter::Bandwhich);
    }
    meters
}

pub fn run(plan: &Plan, tools: &Tools, dir: &Path, kinds: &[Kind]) -> Result<Vec<Record>> {
    let meters = meters(tools);
    let lab = Lab::new()?;
    let mut series: BTreeMap<(Meter, Kind), Series> = BTreeMap::new();
    for round in 1..=plan.runs {
        let mut none = BTreeMap::new();
        for &meter in &meters {
            for &kind in kinds.iter().filter(|&&k| measures(k, meter)) {
                let name = format!("{}-{}-{round}", meter.id(), kind.id());
                let s = series.entry((meter, kind)).or_default();
                match measure(&lab, meter, kind, plan, tools, dir, &name) {
                    Ok(m) => {
                        if meter == Meter::None {
                            none.insert(kind, m.rate);
                        }
                        let ratio = none.get(&kind).map(|base| 100.0 * m.rate / base);
                        println!("bench: {name}: {}", summary(&m, kind, ratio));
                        s.rate.push(m.rate);
                        s.ratio.extend(ratio);
                        s.cpu.extend(m.cpu_pct);
                        s.rss.extend(m.rss_mib);
                        s.packets.extend(m.accuracy.packets_pct);
                        s.bytes.extend(m.accuracy.bytes_pct);
                    }
                    Err(e) => {
                        procs::check()?;
                        eprintln!("warning: bench {name} failed: {e:#}");
                        s.failures.push(format!("run {round}: {e:#}"));
                    }
                }
            }
        }
    }
    Ok(records(&series, plan))
}

fn summary(m: &Measurement, kind: Kind, ratio: Option<f64>) -> String {
    let mut s = format!("{:.1} {}", m.rate, kind.unit());
    if let Some(r) = ratio {
        s += &format!(" ({r:.1}% of no meter)");
    }
    if let Some(cpu) = m.cpu_pct {
        s += &format!(", CPU {cpu:.1}%");
    }
    if let Some(rss) = m.rss_mib {
        s += &format!(", peak RSS {rss:.1} MiB");
    }
    for (what, pct) in [
        ("packets", m.accuracy.packets_pct),
        ("bytes", m.accuracy.bytes_pct),
    ] {
        if let Some(pct) = pct {
            s += &format!(", {what} {pct:.3}%");
        }
    }
    s
}

/// One run: the meter starts on a quiet link, the load runs, the meter stops; the
/// interface's counters over the meter's whole run are the truth it is held to.
fn measure(
    lab: &Lab,
    meter: Meter,
    kind: Kind,
    plan: &Plan,
    tools: &Tools,
    dir: &Path,
    name: &str,
) -> Result<Measurement> {
    let before = lab.wait_quiet()?;
    let mut running = Running::start(meter, lab, tools, plan.meter_secs(), dir, name)?;
    let (rate, window, tcp_bytes) = match kind {
        Kind::Udp => udp_window(lab, &running, Flows::One, plan, dir, name)?,
        Kind::Flood => udp_window(lab, &running, Flows::Flood, plan, dir, name)?,
        Kind::Tcp => {
            let (rate, window, bytes) = tcp_window(lab, &running, plan, dir, name)?;
            (rate, window, Some(bytes))
        }
    };
    running.ensure_running()?;
    let reported = running.finish(lab, dir)?;
    let after = lab.wait_quiet()?;
    Ok(Measurement {
        rate,
        cpu_pct: window.map(|(u0, u1)| u1.cpu_percent_since(&u0)),
        rss_mib: window.map(|(_, u1)| u1.peak_rss_mib),
        accuracy: meter.accuracy(reported, after.since(&before), tcp_bytes),
    })
}

type Window = Option<(Usage, Usage)>;

/// trafgen at full speed; the receiver's rx packets/s over `udp_secs` after `warm_secs`.
fn udp_window(
    lab: &Lab,
    running: &Running,
    flows: Flows,
    plan: &Plan,
    dir: &Path,
    name: &str,
) -> Result<(f64, Window, Option<f64>)> {
    let max_secs = plan.warm_secs + plan.udp_secs + 5.0;
    let mut trafgen =
        traffic::start_trafgen(lab, flows, max_secs, dir, &format!("{name}-trafgen"))?;
    procs::sleep(secs(plan.warm_secs))?;
    let (c0, t0, u0) = (
        lab.counters()?,
        Instant::now(),
        running.usage().transpose()?,
    );
    procs::sleep(secs(plan.udp_secs))?;
    let (c1, t1, u1) = (
        lab.counters()?,
        Instant::now(),
        running.usage().transpose()?,
    );
    if let Some(status) = trafgen.exited()? {
        let stderr = trafgen.stderr();
        let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        bail!(
            "trafgen stopped during the window ({status}): {}",
            why.trim()
        );
    }
    traffic::stop_trafgen(trafgen);
    let kpps = (c1.rx_packets - c0.rx_packets) as f64 / (t1 - t0).as_secs_f64() / 1e3;
    Ok((kpps, u0.zip(u1), None))
}

/// One iperf3 test; its received Gbit/s and payload bytes.
fn tcp_window(
    lab: &Lab,
    running: &Running,
    plan: &Plan,
    dir: &Path,
    name: &str,
) -> Result<(f64, Window, f64)> {
    let _server = traffic::start_iperf_server(lab, dir, &format!("{name}-iperf3-server"))?;
    let u0 = running.usage().transpose()?;
    let tcp = traffic::run_iperf_client(lab, plan.tcp_secs, dir, &format!("{name}-iperf3"))?;
    let u1 = running.usage().transpose()?;
    Ok((tcp.gbit_per_s, u0.zip(u1), tcp.bytes))
}

/// The records of every meter and load, in the tables' order.
fn records(series: &BTreeMap<(Meter, Kind), Series>, plan: &Plan) -> Vec<Record> {
    let mut out = Vec::new();
    for (&(meter, kind), s) in series {
        let id = format!("{}/{}", meter.id(), kind.id());
        let command = format!(
            "{}; meter in the receiver's namespace: {}",
            traffic::shown_load(kind, plan.udp_secs, plan.tcp_secs),
            meter.shown_command()
        );
        let record = |what: &str, unit: &str, samples: &[f64]| {
            Record::new(format!("{what}/{id}"), meter.tool(), unit)
                .hook(meter.hook())
                .traffic(kind.traffic())
                .command(command.clone())
                .samples(samples)
        };
        out.push(record("throughput", kind.unit(), &s.rate).note(s.failures.join("; ")));
        out.push(record("ratio", "% of no meter", &s.ratio));
        if meter != Meter::None {
            out.push(record("cpu", "% of one core", &s.cpu));
            out.push(record("rss", "MiB (VmHWM)", &s.rss));
            if !s.packets.is_empty() {
                out.push(
                    record("accuracy-packets", "% of the interface's count", &s.packets)
                        .note(meter.counts()),
                );
            }
            out.push(
                record("accuracy-bytes", "% of the interface's count", &s.bytes)
                    .note(meter.counts()),
            );
        }
    }
    out
}
