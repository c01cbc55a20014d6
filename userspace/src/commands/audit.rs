//! `flowmeter audit`: the checks of `crate::audit` over `--root`, then with `--watch` the
//! datapath metering the host's traffic for that long, so that findings whose process is
//! talking now come first. Prints the report (or one JSON object) and returns the exit
//! status: 0 nothing above low, 3 medium or worse found.

use std::{
    io::{self, Write},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    build,
    session::{Clock, Plan, stop_signals},
};
use crate::{
    audit::{self, Report, Watched},
    cli::AuditArgs,
};

/// Width the report is laid out for: a VNC console.
const REPORT_WIDTH: usize = 80;
/// How often the counters are read while watching.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: &AuditArgs, verbose: bool) -> Result<u8> {
    let rules = build::rules(&args.enrich)?;
    let mut report = audit::audit(&args.root, &rules, &args.allow)?;
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
    let stop = stop_signals()?;
    let plan = Plan::new(&args.datapath, verbose)?;
    let mut enricher =
        build::enricher(&args.enrich)?.with_persistence(audit::persistence(&args.root));
    let mut session = plan.start("")?;
    enricher = enricher.with_socket_records(session.socket_records());
    eprintln!(
        "flowmeter: watching traffic for {} s",
        duration.as_secs_f64()
    );
    let mut watched = Watched::default();
    for _ in Clock::new(WATCH_INTERVAL.min(duration), Some(duration), &stop) {
        watched.add(&enricher.enrich(session.read()?, Instant::now()));
    }
    // Detach first, then read what was counted until then.
    session.detach();
    watched.add(&enricher.enrich(session.read()?, Instant::now()));
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
