//! `flowmeter log`: a metering session (`session.rs`) → enrichers → flow records, alerts,
//! top talkers, totals → JSON lines (and the flow records as IPFIX, `--ipfix`), until the
//! duration ends or a signal asks to stop. On stop the programs are detached first and
//! the maps read once more, and every open flow record is written, so every packet
//! counted is written, then a last summary. With `--metrics`, each interval once written
//! goes to the Prometheus endpoint too (`sinks::metrics`). The flight recorder
//! (`crate::recorder`) keeps each interval's second and writes a recording when an alert
//! starts; the alert's record names its file. Each second also goes to the service's
//! view on `--control-socket` (`recorder::serve`), which `top` on the host shows.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow, bail};
use signal_hook::consts::SIGHUP;

use super::{
    build,
    session::{Beat, Clock, Plan, Session, stop_signals},
};
use crate::{
    cli::{self, FlowRecordMode, LogArgs},
    datapath::{IDLE_FLOW_TIMEOUT, interfaces},
    enrich::{EnrichedSnapshot, Enricher},
    recorder::{self, Recorder, Told, serve::Server, writer::Notice},
    sinks::{
        alerts::{ALERT_TYPE, Alert, AlertEngine, AlertExec, Phase},
        ipfix::IpfixExporter,
        log::{FlowLines, LogSink},
        metrics::Metrics,
        moment::Moment,
        records::Timeouts,
        schema::{RECORDER_TYPE, RecorderRecord},
        summary::Summaries,
    },
};

pub fn run(args: &LogArgs, verbose: bool) -> Result<()> {
    let stop = stop_signals()?;
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGHUP, hangup.clone()).context("handling SIGHUP")?;
    let plan = Plan::new(&args.datapath, verbose)?;
    let mut sink = LogSink::open(&build::log_destination(args), flow_lines(args)).map_err(|e| {
        anyhow!(
            "cannot open {} for the log ({e}); choose a writable file with --output, or - \
             for standard output",
            args.output
        )
    })?;
    if let Some(options) = build::ipfix_options(args) {
        if flow_lines(args) == FlowLines::EveryInterval {
            bail!("--ipfix exports flow records: it needs --flow-records timeouts");
        }
        sink.tap_records(Box::new(IpfixExporter::open(&options)?));
    }
    let enricher = build::enricher(&args.enrich)?;
    let mut alerts = AlertEngine::new(build::alert_config(args));
    let mut summaries = Summaries::new(Moment::now());
    for interface in &plan.interfaces {
        let speed = interfaces::link_speed_bps(Path::new(interfaces::SYSFS_ROOT), &interface.name);
        alerts.set_link_speed(&interface.name, speed);
        summaries.set_link_speed(&interface.name, speed);
    }

    let flow_capacity = plan.options.flow_capacity;
    let names: Vec<String> = plan.interfaces.iter().map(|i| i.name.clone()).collect();
    let metrics = build::metrics(&args.metrics, &plan.interfaces, flow_capacity, true)?;
    let mut session = plan.start("")?;
    let enricher = enricher.with_socket_records(session.socket_records());
    if let FlowLines::Records { timeouts, .. } = flow_lines(args) {
        // A flow whose record ended idle leaves the kernel table too (by 120 s at most):
        // its room and the memory it held are given back as soon as it has ended.
        session.remove_idle_flows_after(timeouts.idle.min(IDLE_FLOW_TIMEOUT));
    }
    sink.push_start(
        SystemTime::now(),
        session.attachments(),
        args.interval,
        flow_capacity,
        &enricher.geo().description(),
    )?;
    let recorder = Recorder::new(recorder::Options {
        window: args.record.record_window,
        after: args.record.record_after,
        dir: args.record.record_dir.clone(),
        keep: args.record.record_keep as usize,
        max_size: args.record.record_max_size,
        interval: args.interval,
        interfaces: names,
        top: args.top,
    })
    .context("starting the flight recorder's writer")?;
    let view = recorder
        .as_ref()
        .and_then(|recorder| serve_view(args, recorder));
    // The start record says the log is ready: its socket is served by now.
    commit(&mut sink)?;

    let mut cycle = Cycle {
        enricher,
        alerts,
        exec: args
            .alert_exec
            .as_deref()
            .map(|command| AlertExec::new(command, sink.version())),
        summaries,
        sink,
        metrics,
        recorder,
        view,
    };
    let clock = Clock::new(args.interval, args.duration, &stop).with_timer(args.summary);
    for beat in clock {
        match beat {
            Beat::Interval => {
                if hangup.swap(false, Ordering::Relaxed) {
                    // A failure shows in the next batch's outcome.
                    let _ = cycle.sink.reopen();
                }
                cycle.run(&mut session, Read::Interval)?;
            }
            Beat::Timer => cycle.summarise()?,
        }
    }
    session.detach();
    cycle.run(&mut session, Read::Last)?;
    cycle.close_recording()?;
    cycle.summarise()?;
    cycle.finish();
    // Clients see the end of the view, and the socket goes.
    drop(cycle.view.take());
    // Everything is written and the process exits next: freeing every flow's facts and
    // caches one by one would only delay the exit (by seconds at a million flows).
    std::mem::forget(cycle);
    Ok(())
}

/// The service's view for `top` on `--control-socket`, unless `none`; a socket that
/// cannot be served is one warning, and the log goes on without it.
fn serve_view(args: &LogArgs, recorder: &Recorder) -> Option<Server> {
    let path = cli::control_socket(&args.control_socket)?;
    Server::open(path, recorder.view_header(), recorder.capacity())
        .inspect_err(|error| eprintln!("flowmeter: {error}"))
        .ok()
}

/// `--flow-records` and its timeouts, as the log sink takes them.
fn flow_lines(args: &LogArgs) -> FlowLines {
    match args.flow_records {
        FlowRecordMode::Timeouts => FlowLines::Records {
            timeouts: Timeouts {
                idle: args.idle_timeout,
                active: args.active_timeout,
            },
            top: args.top,
        },
        FlowRecordMode::Interval => FlowLines::EveryInterval,
    }
}

/// Which read a cycle takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// On a beat of the clock.
    Interval,
    /// The last one, after detaching: every open flow record is written too.
    Last,
}

/// One interval's work, from the maps to the log, and what it keeps between intervals.
struct Cycle {
    enricher: Enricher,
    alerts: AlertEngine,
    exec: Option<AlertExec>,
    summaries: Summaries,
    sink: LogSink,
    /// `--metrics`: the Prometheus endpoint, given each interval once it is written.
    metrics: Option<Metrics>,
    /// The flight recorder, unless `--record-window 0`.
    recorder: Option<Recorder>,
    /// The recorder's seconds served to `top` (`--control-socket`).
    view: Option<Server>,
}

impl Cycle {
    fn run(&mut self, session: &mut Session, read: Read) -> Result<()> {
        let began = Instant::now();
        let interval = self.enricher.enrich(session.read()?, Instant::now());
        // The interval's lines: interfaces gone or back, flows, alerts, top, then the
        // totals that close it.
        self.sink
            .push_interfaces(interval.snapshot().at, session.interface_events())?;
        self.sink.push_flows(&interval)?;
        self.sink
            .push_evicted(interval.snapshot().at, session.gone())?;
        if read == Read::Last {
            self.sink.push_open_flows(interval.snapshot().at)?;
        }
        let mut alerts = self.alerts.observe(&interval);
        let kept = self
            .recorder
            .as_mut()
            .map(|recorder| recorder.record(&interval, &alerts));
        if let (Some(view), Some(kept)) = (&self.view, &kept) {
            view.publish(kept.second.clone());
        }
        // A start names its recording, in the log and for --alert-exec alike.
        for alert in alerts
            .iter_mut()
            .filter(|alert| alert.phase == Phase::Start)
        {
            alert.recording = kept.as_ref().and_then(|kept| kept.recording.clone());
        }
        for alert in &alerts {
            eprintln!("flowmeter: {alert}");
            self.sink
                .push_record(ALERT_TYPE, alert.at, alert.record())?;
            if let Some(exec) = &mut self.exec {
                exec.run(alert);
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
        if let Some(recorder) = &mut self.recorder {
            let told = recorder.take_told();
            tell(&mut self.sink, interval.snapshot().at, told)?;
        }
        // The recorder selected the top talkers already: once for both.
        match &kept {
            Some(kept) => self.sink.push_top_of(interval.snapshot().at, &kept.top)?,
            None => self.sink.push_top(&interval)?,
        }
        self.sink.push_totals(&interval)?;
        self.summaries.record_interval(interval.snapshot());
        commit(&mut self.sink)?;
        let took = self.export(session, &interval, &alerts, began);
        self.summaries.record_cycle(took);
        Ok(())
    }

    /// Hands the interval to the Prometheus endpoint, if there is one, and returns the
    /// cycle's time since `began`, the metrics' own work included.
    fn export(
        &mut self,
        session: &Session,
        interval: &EnrichedSnapshot,
        alerts: &[Alert],
        began: Instant,
    ) -> Duration {
        let Some(metrics) = &mut self.metrics else {
            return began.elapsed();
        };
        metrics.record(interval);
        metrics.record_table(session.flows_in_table(), session.gone().len());
        metrics.record_alerts(alerts);
        let took = began.elapsed();
        metrics.record_cycle(took);
        metrics.publish();
        took
    }

    /// On stop: the open recording is written whole and closed.
    fn close_recording(&mut self) -> Result<()> {
        let Some(recorder) = &mut self.recorder else {
            return Ok(());
        };
        let told = recorder.finish();
        tell(&mut self.sink, SystemTime::now(), told)?;
        commit(&mut self.sink)
    }

    fn summarise(&mut self) -> Result<()> {
        let now = Moment::now();
        let records = self.summaries.take(now);
        self.sink.push_summaries(now.wall, &records)?;
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

/// The recorder's news, on stderr and as `recorder` records.
fn tell(sink: &mut LogSink, at: SystemTime, told: Vec<Told>) -> Result<()> {
    for told in told {
        eprintln!("flowmeter: {told}");
        let (event, path, error) = match &told {
            Told::OpenFailed { dir, error } => ("open_failed", dir.as_path(), Some(error.as_str())),
            Told::OpenResumed { dir } => ("resumed", dir.as_path(), None),
            Told::Writer(notice) => match notice {
                Notice::Failed { path, error } => ("write_failed", &**path, Some(error.as_str())),
                Notice::Resumed { path } => ("resumed", &**path, None),
                Notice::Full { path, .. } => ("full", &**path, None),
                Notice::Behind { path, .. } => ("behind", &**path, None),
            },
        };
        let record = RecorderRecord {
            event,
            path: path.display().to_string(),
            error,
            message: told.to_string(),
        };
        sink.push_record(RECORDER_TYPE, at, record)?;
    }
    Ok(())
}

/// Writes the batch; a failing disk is told once on stderr while metering goes on.
fn commit(sink: &mut LogSink) -> Result<()> {
    for notice in sink.commit().context("writing the log")? {
        eprintln!("flowmeter: {notice}");
    }
    Ok(())
}
