//! `cargo xtask bench [--quick] [--only PARTS]`: the criterion benches, the kernel bench,
//! throughput and accuracy of flowmeter, iftop, nethogs and bandwhich on a veth pair
//! between two namespaces, the same under a spoofed-source flood, and the whole
//! program's cycle, CPU and memory from 1 to 1,000,000 flows, and what the metrics
//! endpoint and the IPFIX exporter add to it at 100,000 flows. Everything lands in
//! `target/bench/results.json`, and the generated tables in docs/benchmarks.md.
//!
//! Traffic flows only inside the two network namespaces the bench creates; both are
//! deleted, and every process it started is ended, however it stops (Ctrl-C included).

mod criterion;
mod docs;
mod exports;
mod json;
mod kernel;
mod lab;
mod meters;
mod procs;
mod program;
mod reports;
mod results;
mod throughput;
mod tools;
mod traffic;

use std::{
    fs,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::{Project, cmd, setup};
use meters::Tools;
use results::{Header, Record};
use traffic::Kind;

/// A part of the bench that `--only` can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Every criterion bench.
    Criterion,
    Reader,
    Aggregate,
    Enrich,
    #[value(name = "flow_table_read")]
    FlowTableRead,
    #[value(name = "log_cycle")]
    LogCycle,
    /// The console: a key's answer and an interval's cost, 10k to 1M flows.
    Console,
    /// `log`'s flight recorder: its work per interval and its ring's memory.
    Recorder,
    /// What the socket-owner hooks add to a TCP connection and a UDP datagram.
    #[value(name = "socket_hooks")]
    SocketHooks,
    Kernel,
    Throughput,
    Flood,
    /// The whole program: cycle, own CPU and RSS from idle to 1,000,000 flows.
    Cycle,
    /// The exports at 100,000 flows: the cycle plain, scraped, and sending IPFIX.
    Exports,
}

/// What `--only` asked for: everything when empty.
struct Selection<'a>(&'a [Part]);

impl Selection<'_> {
    fn runs(&self, part: Part) -> bool {
        self.0.is_empty() || self.0.contains(&part)
    }

    /// The criterion benches to run, by name.
    fn criterion_benches(&self) -> Vec<&'static str> {
        let named = [
            (Part::Reader, "reader"),
            (Part::Aggregate, "aggregate"),
            (Part::Enrich, "enrich"),
            (Part::FlowTableRead, "flow_table_read"),
            (Part::LogCycle, "log_cycle"),
            (Part::Console, "console"),
            (Part::Recorder, "recorder"),
            (Part::SocketHooks, "socket_hooks"),
        ];
        named
            .iter()
            .filter(|&&(part, _)| self.runs(Part::Criterion) || self.0.contains(&part))
            .map(|&(_, name)| name)
            .collect()
    }
}

/// How long and how often.
pub struct Plan {
    quick: bool,
    runs: usize,
    /// Load before the measured window starts.
    warm_secs: f64,
    udp_secs: f64,
    tcp_secs: u32,
    cpu_secs: f64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                runs: 1,
                warm_secs: 0.5,
                udp_secs: 3.0,
                tcp_secs: 3,
                cpu_secs: 4.0,
            }
        } else {
            Self {
                quick,
                runs: 3,
                warm_secs: 1.0,
                udp_secs: 6.0,
                tcp_secs: 6,
                cpu_secs: 10.0,
            }
        }
    }

    fn command(&self) -> &'static str {
        if self.quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} run{} of each, interleaved; UDP: {} s windows after {} s of load; TCP: {} s \
             iperf3 tests; whole program: {} s summary periods, one to warm up and one \
             measured; median (min–max) over runs",
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            self.udp_secs,
            self.warm_secs,
            self.tcp_secs,
            self.cpu_secs
        )
    }

    /// How long a meter with a fixed lifetime (iftop -s, nethogs -c) must run to outlast
    /// one load, counted from its start.
    fn meter_secs(&self) -> u32 {
        let load = self.udp_secs.max(f64::from(self.tcp_secs) + 1.0);
        (self.warm_secs + load + 3.5).ceil() as u32
    }
}

pub fn run(project: &Project, quick: bool, only: &[Part]) -> Result<()> {
    let only = Selection(only);
    procs::catch_interrupts();
    if !setup::is_root()? {
        bail!("the bench needs root (network namespaces, eBPF programs, packet sockets)");
    }
    let plan = Plan::new(quick);
    project.setup(true)?;
    project.build(true)?;
    let target = project.target_dir()?;
    let out = target.join("bench");
    let dir = out.join("run");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut header = Header::collect(plan.command())?;
    let tools = Tools {
        flowmeter: target.join("release/flowmeter"),
        bandwhich: tools::bandwhich(&project.cache, &out)?,
    };
    if let Err(why) = &tools.bandwhich {
        header.notes.push(why.clone());
    }

    let mut records = Vec::new();
    let mut failed = Vec::new();
    let mut phase = |name: &str, result: Result<Vec<Record>>| -> Result<()> {
        match result {
            Ok(r) => records.extend(r),
            Err(e) => {
                procs::check()?;
                eprintln!("warning: {name} failed: {e:#}");
                failed.push(format!("{name}: {e:#}"));
            }
        }
        Ok(())
    };
    let benches = only.criterion_benches();
    if !benches.is_empty() {
        phase(
            "criterion benches",
            criterion::run(project, &target, quick, &benches),
        )?;
    }
    if only.runs(Part::Kernel) {
        phase("kernel bench", kernel::run(project))?;
    }
    let kinds: Vec<Kind> = [
        (Part::Throughput, Kind::Udp),
        (Part::Throughput, Kind::Tcp),
        (Part::Flood, Kind::Flood),
    ]
    .iter()
    .filter(|&&(part, _)| only.runs(part))
    .map(|&(_, kind)| kind)
    .collect();
    if !kinds.is_empty() {
        phase(
            "throughput on veth",
            throughput::run(&plan, &tools, &dir, &kinds),
        )?;
    }
    if only.runs(Part::Cycle) {
        phase(
            "the whole program from idle to 1,000,000 flows",
            program::run(&plan, &tools.flowmeter, &dir),
        )?;
    }
    if only.runs(Part::Exports) {
        phase(
            "the exports at 100,000 flows",
            exports::run(&plan, &tools.flowmeter, &dir),
        )?;
    }
    header.notes.extend(failed.iter().cloned());

    let json = out.join("results.json");
    results::write(&json, &header, &records)?;
    let doc = project.root.join("docs/benchmarks.md");
    let blocks = docs::update(&doc, &header, &records, &plan, &throughput::meters(&tools))?;
    for (name, text) in &blocks {
        println!("\n<!-- bench:{name} -->\n{text}");
    }
    println!(
        "wrote {} ({} records) and the tables in {}; each run's output is in {}",
        json.display(),
        records.len(),
        doc.display(),
        dir.display()
    );
    if !failed.is_empty() {
        bail!("{} part(s) failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

/// Runs `command` as `cmd::run` does, its stdout shown line by line and returned.
fn run_teed(command: &mut Command) -> Result<String> {
    let line = cmd::display(command);
    eprintln!("$ {line}");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut text = String::new();
    for l in BufReader::new(stdout).lines() {
        let l = l.with_context(|| format!("reading the output of `{line}`"))?;
        println!("{l}");
        text.push_str(&l);
        text.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(text)
}
