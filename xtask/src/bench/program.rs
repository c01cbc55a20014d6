//! flowmeter's own CPU while it meters the receiver's end of the veth pair: idle, and
//! under 64-byte UDP frames at full speed from one flow, 10,000 and 110,000 flows. It
//! reads the kernel's tables once per interval, so its cost should follow the number of
//! flows, not the packet rate.

use std::{path::Path, time::Duration, time::Instant};

use anyhow::{Result, bail};

use super::{
    Plan,
    lab::Lab,
    procs::{self, SIGINT, Spawned, secs},
    results::Record,
    traffic::{self, Flows},
};

/// One row of the table: its id, its label, the load, and the flow table size it needs.
pub const LOADS: [(&str, &str, Option<Flows>); 4] = [
    ("idle", "idle (no traffic)", None),
    ("1-flow", "1 flow", Some(Flows::One)),
    ("10k-flows", "10,000 flows", Some(Flows::TenThousand)),
    (
        "110k-flows",
        "110,000 flows (--flows 262144)",
        Some(Flows::HundredThousand),
    ),
];

struct Sample {
    cpu_pct: f64,
    kpps: f64,
    rss_mib: f64,
}

pub fn run(plan: &Plan, flowmeter: &Path, dir: &Path) -> Result<Vec<Record>> {
    let lab = Lab::new()?;
    let mut samples: Vec<Vec<Sample>> = LOADS.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Vec<String>> = LOADS.iter().map(|_| Vec::new()).collect();
    for round in 1..=plan.runs {
        for (i, &(id, _, flows)) in LOADS.iter().enumerate() {
            let name = format!("own-cpu-{id}-{round}");
            match measure(&lab, flows, plan, flowmeter, dir, &name) {
                Ok(s) => {
                    println!(
                        "bench: {name}: CPU {:.2}% of one core at {:.1} kpps, peak RSS {:.1} MiB",
                        s.cpu_pct, s.kpps, s.rss_mib
                    );
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
    for (i, &(id, label, flows)) in LOADS.iter().enumerate() {
        let command = format!(
            "{}; {}",
            shown_flowmeter(flows),
            flows.map_or("no traffic".into(), |f| format!(
                "trafgen --conf '{}' (one worker per CPU) in the sender's namespace",
                traffic::shown_config(f)
            ))
        );
        let s = &samples[i];
        let pick = |f: fn(&Sample) -> f64| s.iter().map(f).collect::<Vec<_>>();
        let record = |what: &str, unit: &str, values: &[f64]| {
            Record::new(format!("{what}/{id}"), "flowmeter", unit)
                .hook(Some("auto"))
                .traffic(label)
                .command(command.clone())
                .samples(values)
        };
        records.push(
            record("own-cpu", "% of one core", &pick(|s| s.cpu_pct)).note(failures[i].join("; ")),
        );
        records.push(record("own-cpu-load", "kpps", &pick(|s| s.kpps)));
        records.push(record("own-rss", "MiB (VmHWM)", &pick(|s| s.rss_mib)));
    }
    Ok(records)
}

fn shown_flowmeter(flows: Option<Flows>) -> String {
    let table = match flows {
        Some(Flows::HundredThousand) => " --flows 262144",
        _ => "",
    };
    format!(
        "flowmeter log --iface IF --interval 1 --output /dev/null{table} in the receiver's namespace"
    )
}

fn measure(
    lab: &Lab,
    flows: Option<Flows>,
    plan: &Plan,
    flowmeter: &Path,
    dir: &Path,
    name: &str,
) -> Result<Sample> {
    lab.wait_quiet()?;
    let mut cmd = lab.receiver.command(&flowmeter.to_string_lossy());
    cmd.args([
        "log",
        "--iface",
        &lab.receiver_if,
        "--interval",
        "1",
        "--output",
        "/dev/null",
    ]);
    if matches!(flows, Some(Flows::HundredThousand)) {
        cmd.args(["--flows", "262144"]);
    }
    let mut meter = Spawned::start(&mut cmd, dir, name)?;
    meter.wait_for_output(": ingress ", Duration::from_secs(15))?;
    // Past its first interval, and past trafgen's start.
    procs::sleep(Duration::from_secs(1))?;
    let trafgen = match flows {
        Some(f) => {
            let max = plan.warm_secs + plan.cpu_secs + 5.0;
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
    procs::sleep(secs(plan.warm_secs))?;
    let (c0, t0, u0) = (lab.counters()?, Instant::now(), meter.usage()?);
    procs::sleep(secs(plan.cpu_secs))?;
    let (c1, t1, u1) = (lab.counters()?, Instant::now(), meter.usage()?);
    if let Some(status) = meter.exited()? {
        bail!(
            "`{}` exited ({status}): {}",
            meter.line(),
            meter.stderr().trim()
        );
    }
    if let Some(t) = trafgen {
        traffic::stop_trafgen(t);
    }
    meter.stop(SIGINT, Duration::from_secs(10));
    Ok(Sample {
        cpu_pct: u1.cpu_percent_since(&u0),
        kpps: (c1.rx_packets - c0.rx_packets) as f64 / (t1 - t0).as_secs_f64() / 1e3,
        rss_mib: u1.peak_rss_mib,
    })
}
