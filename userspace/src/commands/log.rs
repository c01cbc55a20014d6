//! `flowmeter log`: datapath → reader → enrichers → alerts → JSON lines, until the
//! duration ends or a signal asks to stop. On stop the programs are detached first and
//! the maps read once more, so every packet counted is written, then a last summary.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{after, never, select, tick};
use signal_hook::consts::SIGHUP;

use super::stop_signals;
use crate::{
    cli::LogArgs,
    datapath::{Datapath, KernelMaps, Reader, interfaces},
    enrich::Enricher,
    sinks::{
        alerts::{ALERT_TYPE, AlertEngine, AlertExec},
        log::LogSink,
        summary::Summaries,
    },
};

pub fn run(args: &LogArgs, verbose: bool) -> Result<()> {
    let stop = stop_signals()?;
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGHUP, hangup.clone()).context("handling SIGHUP")?;
    let interfaces = interfaces::resolve(&args.datapath.ifaces)?;
    let mut sink = LogSink::open(&args.destination()).map_err(|e| {
        anyhow!(
            "cannot open {} for the log ({e}); choose a writable file with --output, or - \
             for standard output",
            args.output
        )
    })?;
    let enricher = args.enrich.enricher()?;
    let mut alerts = AlertEngine::new(args.alert_config());
    let mut summaries = Summaries::new(SystemTime::now());
    for interface in &interfaces {
        let speed = interfaces::link_speed_bps(Path::new(interfaces::SYSFS_ROOT), &interface.name);
        alerts.set_link_speed(&interface.name, speed);
        summaries.set_link_speed(&interface.name, speed);
    }

    let options = args.datapath.options(verbose);
    let (mut datapath, maps) = Datapath::start(&interfaces, &options)?;
    for attachment in datapath.attachments() {
        eprintln!(
            "flowmeter: {}: ingress {} ({}), egress tc",
            attachment.interface.name, attachment.ingress, attachment.reason
        );
    }
    sink.push_start(
        SystemTime::now(),
        datapath.attachments(),
        args.interval,
        options.flow_capacity,
        &enricher.geo().description(),
    )?;
    commit(&mut sink)?;

    let mut cycle = Cycle {
        reader: Reader::new(maps, &interfaces, Instant::now()),
        enricher,
        alerts,
        exec: args.alert_exec.as_deref().map(AlertExec::new),
        summaries,
        sink,
    };
    let ticks = tick(args.interval);
    let summary_ticks = tick(args.summary);
    let deadline = args.duration.map(after).unwrap_or_else(never);
    loop {
        select! {
            recv(ticks) -> _ => {
                datapath.flush_kernel_log();
                if hangup.swap(false, Ordering::Relaxed) {
                    // A failure shows in the next batch's outcome.
                    let _ = cycle.sink.reopen();
                }
                cycle.run()?;
            }
            recv(summary_ticks) -> _ => cycle.summarise()?,
            recv(stop) -> _ => break,
            recv(deadline) -> _ => break,
        }
    }
    datapath.detach();
    datapath.flush_kernel_log();
    cycle.run()?;
    cycle.summarise()?;
    cycle.finish();
    Ok(())
}

/// One interval's work, from the maps to the log, and what it keeps between intervals.
struct Cycle {
    reader: Reader<KernelMaps>,
    enricher: Enricher,
    alerts: AlertEngine,
    exec: Option<AlertExec>,
    summaries: Summaries,
    sink: LogSink,
}

impl Cycle {
    fn run(&mut self) -> Result<()> {
        let began = Instant::now();
        let snapshot = self.reader.read(SystemTime::now(), began)?;
        let facts = self.enricher.enrich(&snapshot.flows, Instant::now());
        // The interval's lines: flows, alerts, then the totals that close it.
        self.sink.push_flows(&snapshot, &facts)?;
        for alert in self.alerts.observe(&snapshot, &facts) {
            eprintln!("flowmeter: {alert}");
            self.sink
                .push_record(ALERT_TYPE, alert.at, alert.record())?;
            if let Some(exec) = &mut self.exec {
                exec.run(&alert);
            }
        }
        for warning in self.alerts.take_warnings() {
            eprintln!("flowmeter: {warning}");
        }
        if let Some(exec) = &mut self.exec {
            for report in exec.take_reports() {
                eprintln!("flowmeter: --alert-exec: {report}");
            }
        }
        self.sink.push_totals(&snapshot)?;
        self.summaries.record_interval(&snapshot);
        commit(&mut self.sink)?;
        self.summaries.record_cycle(began.elapsed());
        Ok(())
    }

    fn summarise(&mut self) -> Result<()> {
        let now = SystemTime::now();
        let records = self.summaries.take(now);
        self.sink.push_summaries(now, &records)?;
        commit(&mut self.sink)
    }

    /// Last words: running alert commands get a moment, an unfinished outage is told.
    fn finish(&mut self) {
        if let Some(exec) = &self.exec {
            exec.wait_idle(Duration::from_secs(1));
        }
        if let Some(outage) = self.sink.outage() {
            eprintln!("flowmeter: {outage}");
        }
    }
}

/// Writes the batch; a failing disk is told once on stderr while metering goes on.
fn commit(sink: &mut LogSink) -> Result<()> {
    if let Some(notice) = sink.commit().context("writing the log")? {
        eprintln!("flowmeter: {notice}");
    }
    Ok(())
}
