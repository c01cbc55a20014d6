//! `flowmeter audit`: the checks of `crate::audit` over `--root`, then with `--watch` the
//! datapath metering the host's traffic for that long, so that findings whose process is
//! talking now come first. Prints the report (or one JSON object) and returns the exit
//! status: 0 nothing above low, 3 medium or worse found.

use std::{
    io::{self, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use crossbeam_channel::{after, select, tick};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::build;
use crate::{
    audit::{self, Report, Watched},
    cli::AuditArgs,
    datapath::{Datapath, Reader, interfaces},
};

/// Width the report is laid out for: a VNC console.
const REPORT_WIDTH: usize = 80;
/// How often the counters are read while watching.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: &AuditArgs, verbose: bool) -> Result<u8> {
    let rules = build::rules(&args.enrich)?;
    let mut report = audit::audit(&args.root, &rules)?;
    if let Some(duration) = args.watch {
        if !report.live {
            bail!(
                "--watch meters this host's traffic, which a tree on disk has none of; \
                 leave out --root (or --watch)"
            );
        }
        let watched = watch(args, verbose, duration)?;
        watched.mark(&mut report, duration);
    }
    print(&report, args.json)?;
    Ok(report.exit_status())
}

/// Meters the host's traffic for `duration` (less if SIGINT or SIGTERM comes) and
/// attributes it to processes, remote hosts and countries.
fn watch(args: &AuditArgs, verbose: bool, duration: Duration) -> Result<Watched> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let interfaces = interfaces::resolve(&args.datapath.ifaces)?;
    let mut enricher =
        build::enricher(&args.enrich)?.with_persistence(audit::persistence(&args.root));
    let (mut datapath, maps) = Datapath::start(
        &interfaces,
        &build::datapath_options(&args.datapath, verbose),
    )?;
    for attachment in datapath.attachments() {
        eprintln!(
            "flowmeter: {}: ingress {} ({}), egress tc",
            attachment.interface.name, attachment.ingress, attachment.reason
        );
    }
    eprintln!(
        "flowmeter: watching traffic for {} s",
        duration.as_secs_f64()
    );
    let mut reader = Reader::new(maps, &interfaces, Instant::now());
    let mut watched = Watched::default();
    let ticks = tick(WATCH_INTERVAL.min(duration));
    let deadline = after(duration);
    while !stop.load(Ordering::Relaxed) {
        select! {
            recv(ticks) -> _ => {
                datapath.flush_kernel_log();
                let snapshot = reader.read(SystemTime::now(), Instant::now())?;
                watched.add(&snapshot.flows, &enricher.enrich(&snapshot.flows, Instant::now()));
            }
            recv(deadline) -> _ => break,
        }
    }
    // Detach first, then read what was counted until then.
    datapath.detach();
    datapath.flush_kernel_log();
    let last = reader.read(SystemTime::now(), Instant::now())?;
    watched.add(&last.flows, &enricher.enrich(&last.flows, Instant::now()));
    Ok(watched)
}

fn print(report: &Report, json: bool) -> Result<()> {
    let text = if json {
        let mut line = audit::to_json(report);
        line.push('\n');
        line
    } else {
        audit::render(report, REPORT_WIDTH)
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the report")
}
