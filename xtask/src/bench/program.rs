//! The whole program under load: `flowmeter log` meters the receiver's end of the veth
//! pair, idle and under 64-byte UDP frames at full speed from 1 to 1,000,000 flows, and
//! the bench reads its cycle time (read → enrich → sinks) from the log's own `summary`
//! records, its own CPU and peak RSS from /proc, and how long SIGINT takes to end it.
//! The records go to results.json and the whole-program table of docs/benchmarks.md.
//!
//! The log writes a summary every `--summary` seconds, counted from its start. The
//! first period is the warm-up (the traffic starts and the table fills); the second is
//! the measured window, and CPU and packet counters are read at its two ends, so that
//! every figure of a row describes the same seconds.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    Plan, json,
    lab::Lab,
    procs::{self, SIGINT, Spawned},
    results::Record,
    traffic::{self, Flows},
};

/// One row of the table.
pub struct Load {
    pub id: &'static str,
    pub label: &'static str,
    pub flows: Option<Flows>,
    /// `--flows`: kernel table entries (per family), when the default (65,536) is too few.
    pub table: Option<u32>,
}

pub const LOADS: [Load; 6] = [
    Load {
        id: "idle",
        label: "idle (no traffic)",
        flows: None,
        table: None,
    },
    Load {
        id: "1-flow",
        label: "1 flow",
        flows: Some(Flows::One),
        table: None,
    },
    Load {
        id: "1k-flows",
        label: "1,000 flows",
        flows: Some(Flows::Thousand),
        table: None,
    },
    Load {
        id: "10k-flows",
        label: "10,000 flows",
        flows: Some(Flows::TenThousand),
        table: None,
    },
    Load {
        id: "100k-flows",
        label: "100,010 flows",
        flows: Some(Flows::HundredThousand),
        table: Some(262_144),
    },
    Load {
        id: "1m-flows",
        label: "1,000,100 flows",
        flows: Some(Flows::Million),
        table: Some(1_048_576),
    },
];

/// How much longer than a period the log may take to write its summary: it writes it
/// after the first cycle that ends past the period, and a cycle at 1M flows takes
/// seconds.
const SLOW_CYCLES: Duration = Duration::from_secs(60);

/// How long SIGINT may take before the bench kills the log (and says so).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// One measured window.
pub struct Sample {
    pub cpu_pct: f64,
    pub kpps: f64,
    pub rss_mib: f64,
    pub cycle: Option<Cycle>,
    pub stop_secs: f64,
    /// It did not exit within [`STOP_GRACE`] of SIGINT.
    pub killed: bool,
    /// When the window began and ended.
    pub window: (Instant, Instant),
}

/// The log's cycle summary of the window, in ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cycle {
    pub cycles: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn run(plan: &Plan, flowmeter: &Path, dir: &Path) -> Result<Vec<Record>> {
    let lab = Lab::new()?;
    let mut samples: Vec<Vec<Sample>> = LOADS.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Vec<String>> = LOADS.iter().map(|_| Vec::new()).collect();
    for round in 1..=plan.runs {
        for (i, load) in LOADS.iter().enumerate() {
            let name = format!("program-{}-{round}", load.id);
            match measure(&lab, load, &[], plan, flowmeter, dir, &name) {
                Ok(s) => {
                    println!("bench: {name}: {}", summary(&s));
                    if s.killed {
                        failures[i].push(format!(
                            "run {round}: killed {STOP_GRACE:?} after SIGINT (its window counts)"
                        ));
                    }
                    samples[i].push(s);
                }
                Err(e) => {
                    procs::check()?;
                    eprintln!("warning: bench {name} failed: {e:#}");
                    failures[i].push(format!("run {round}: {e:#}"));
                }
            }
        }
    }
    let mut records = Vec::new();
    for (i, load) in LOADS.iter().enumerate() {
        let command = format!(
            "{} in the receiver's namespace; {}",
            shown_flowmeter(load, plan),
            load.flows.map_or("no traffic".into(), |f| format!(
                "trafgen --conf '{}' (one worker per CPU) in the sender's namespace",
                traffic::shown_config(f)
            ))
        );
        let s = &samples[i];
        let pick = |f: fn(&Sample) -> Option<f64>| s.iter().filter_map(f).collect::<Vec<_>>();
        let record = |what: &str, unit: &str, values: &[f64]| {
            Record::new(format!("{what}/{}", load.id), "flowmeter", unit)
                .hook(Some("auto"))
                .traffic(load.label)
                .command(command.clone())
                .samples(values)
        };
        records.push(
            record("own-cpu", "% of one core", &pick(|s| Some(s.cpu_pct)))
                .note(failures[i].join("; ")),
        );
        records.push(record("own-cpu-load", "kpps", &pick(|s| Some(s.kpps))));
        records.push(record("own-rss", "MiB (VmHWM)", &pick(|s| Some(s.rss_mib))));
        records.push(record("cycle-p50", "ms", &pick(|s| s.cycle.map(|c| c.p50))));
        records.push(record("cycle-p99", "ms", &pick(|s| s.cycle.map(|c| c.p99))));
        records.push(record("cycle-max", "ms", &pick(|s| s.cycle.map(|c| c.max))));
        records.push(record(
            "cycles",
            "cycles in the window",
            &pick(|s| s.cycle.map(|c| c.cycles)),
        ));
        records.push(record(
            "stop",
            "s from SIGINT to exit",
            &pick(|s| Some(s.stop_secs)),
        ));
    }
    Ok(records)
}

pub fn summary(s: &Sample) -> String {
    let cycle = s.cycle.map_or("no cycle summary".into(), |c| {
        format!(
            "cycle p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} cycles",
            c.p50, c.p99, c.max, c.cycles
        )
    });
    format!(
        "{cycle}; CPU {:.2}% of one core at {:.1} kpps, peak RSS {:.1} MiB, SIGINT to exit {:.2} s",
        s.cpu_pct, s.kpps, s.rss_mib, s.stop_secs
    )
}

/// The command line, as the table shows it.
pub fn shown_flowmeter(load: &Load, plan: &Plan) -> String {
    let table = load
        .table
        .map_or(String::new(), |n| format!(" --flows {n}"));
    format!(
        "flowmeter log --iface IF --interval 1 --summary {} --output FILE{table}",
        plan.cpu_secs
    )
}

/// One window of `flowmeter log` under `load`, with `extra` options after the table's.
pub fn measure(
    lab: &Lab,
    load: &Load,
    extra: &[String],
    plan: &Plan,
    flowmeter: &Path,
    dir: &Path,
    name: &str,
) -> Result<Sample> {
    lab.wait_quiet()?;
    let log = dir.join(format!("{name}.jsonl"));
    let _ = fs::remove_file(&log);
    let mut cmd = lab.receiver.command(&flowmeter.to_string_lossy());
    cmd.args(["log", "--iface", &lab.receiver_if, "--interval", "1"])
        .args(["--summary", &plan.cpu_secs.to_string(), "--output"])
        .arg(&log)
        // The flight recorder runs as in the service, but records beside the log, never
        // in the host's /var/lib/flowmeter.
        .arg("--record-dir")
        .arg(dir.join("recordings"));
    if let Some(n) = load.table {
        cmd.args(["--flows", &n.to_string()]);
    }
    cmd.args(extra);
    let mut meter = Spawned::start(&mut cmd, dir, name)?;
    meter.wait_for_output(": ingress ", Duration::from_secs(30))?;
    let trafgen = match load.flows {
        Some(f) => {
            // Two summary periods, the time to start and stop, and slow cycles.
            let max = 2.0 * (plan.cpu_secs + SLOW_CYCLES.as_secs_f64()) + 10.0;
            Some(traffic::start_trafgen(
                lab,
                f,
                max,
                dir,
                &format!("{name}-trafgen"),
            )?)
        }
        None => None,
    };
    let period = procs::secs(plan.cpu_secs);
    wait_for_cycle_summaries(&mut meter, &log, 1, period + SLOW_CYCLES)?;
    let (c0, t0, u0) = (lab.counters()?, Instant::now(), meter.usage()?);
    let summaries = wait_for_cycle_summaries(&mut meter, &log, 2, period + SLOW_CYCLES)?;
    let (c1, t1, u1) = (lab.counters()?, Instant::now(), meter.usage()?);
    if let Some(t) = trafgen {
        traffic::stop_trafgen(t);
    }
    let stopping = Instant::now();
    // A log that outlives the grace is killed; its window still counts, and the row
    // says so (`stop` is then at least the grace).
    let killed = !meter.stop(SIGINT, STOP_GRACE);
    let stop_secs = stopping.elapsed().as_secs_f64();
    Ok(Sample {
        killed,
        cpu_pct: u1.cpu_percent_since(&u0),
        kpps: (c1.rx_packets - c0.rx_packets) as f64 / (t1 - t0).as_secs_f64() / 1e3,
        rss_mib: u1.peak_rss_mib,
        cycle: summaries.get(1).copied(),
        stop_secs,
        window: (t0, t1),
    })
}

/// Waits until the log holds `count` cycle summaries, and returns them.
fn wait_for_cycle_summaries(
    meter: &mut Spawned,
    log: &Path,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Cycle>> {
    let end = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let found = cycle_summaries(&text)?;
        if found.len() >= count {
            return Ok(found);
        }
        if let Some(status) = meter.exited()? {
            bail!(
                "`{}` exited ({status}): {}",
                meter.line(),
                meter.stderr().trim()
            );
        }
        if Instant::now() >= end {
            bail!(
                "`{}` wrote {} cycle summaries, not {count}, within {timeout:?}",
                meter.line(),
                found.len()
            );
        }
        procs::sleep(Duration::from_millis(50))?;
    }
}

/// The `summary` records of `scope: "cycle"` in a log, in ms. A last line still being
/// written is left for the next read.
fn cycle_summaries(text: &str) -> Result<Vec<Cycle>> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| l.contains("\"cycle_us_p50\"")) {
        let Ok(v) = json::parse(line) else {
            continue;
        };
        let field = |k: &str| {
            v.get(k)
                .and_then(json::Value::as_f64)
                .with_context(|| format!("no {k} in {line}"))
        };
        found.push(Cycle {
            cycles: field("cycles")?,
            p50: field("cycle_us_p50")? / 1e3,
            p99: field("cycle_us_p99")? / 1e3,
            max: field("cycle_us_max")? / 1e3,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::{Cycle, cycle_summaries};

    #[test]
    fn reads_cycle_summaries() {
        let log = "{\"v\":2,\"type\":\"summary\",\"scope\":\"interface\",\"iface\":\"x\"}\n\
                   {\"v\":2,\"type\":\"summary\",\"scope\":\"cycle\",\"cycles\":10,\
                   \"cycle_us_p50\":1500,\"cycle_us_p95\":1900,\"cycle_us_p99\":2000,\
                   \"cycle_us_max\":2500}\n\
                   {\"v\":2,\"type\":\"summary\",\"scope\":\"cycle\",\"cycle_us_p50\":";
        assert_eq!(
            cycle_summaries(log).unwrap(),
            vec![Cycle {
                cycles: 10.0,
                p50: 1.5,
                p99: 2.0,
                max: 2.5
            }]
        );
    }
}
