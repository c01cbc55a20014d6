//! `flowmeter top` (and `flowmeter` with no command): the console.
//!
//! With `flowmeter log` running on the host (its `--control-socket` answers), top
//! attaches nothing and shows the service's view instead (`replay::follow`), unless
//! `--standalone`. Otherwise it meters on its own:
//!
//! Data flows one way, through two threads. The metering thread reads the kernel's maps,
//! enriches the flows (process, country, verdict) and sends each interval over a bounded
//! channel; the screen thread (this one) aggregates, draws and answers keys. The first
//! numbers arrive half a second after the programs attach, then one interval every
//! `--interval`. With `--metrics`, the metering thread also hands each interval to the
//! Prometheus endpoint (`sinks::metrics`), which answers scrapes on a thread of its own.
//!
//! Everything that can fail at start (interfaces, database, privileges, the verifier)
//! fails before the terminal is touched, as one line on stderr. Once the screen is up,
//! every way out (q, Ctrl-C, SIGINT/SIGTERM, an error, a panic) restores the terminal,
//! stops the metering thread and detaches the programs.
//!
//! An interface deleted while the console runs drops out of its totals (and comes back
//! into them if it is created again and attached anew, `datapath::presence`); what
//! happened is said on stderr once the screen is closed, where it can be read.

use std::{
    thread::{self, JoinHandle},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, Sender, after, bounded, select};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::{
    build, replay,
    session::{self, Plan, signals_that_stop},
};
use crate::{
    cli::{self, TopArgs},
    console::{
        Console, Inputs, Setup, State, Units, Update, app,
        resolver::{self, Resolver},
        terminal::{InputThread, TerminalGuard},
    },
    datapath::{Attachment, Datapath, Interface, Options, Reader, presence::Presence},
    enrich::Enricher,
    flow::FORGET_AFTER,
    recorder::live::{self, Live},
    sinks::metrics::Metrics,
};

/// When the first numbers are read after the programs attach: soon enough that the
/// screen has them within a second of starting.
const FIRST_READ: Duration = Duration::from_millis(500);

pub fn run(args: &TopArgs, verbose: bool) -> Result<()> {
    // The terminal hanging up (its window closed, the SSH or VNC session gone) stops the
    // console as SIGINT and SIGTERM do, even where SIGHUP was ignored by whoever started it.
    if let Some(live) = service_view(args)? {
        return replay::follow(live, args.bytes);
    }
    let stop = signals_that_stop(&[SIGINT, SIGTERM, SIGHUP])?;
    let plan = Plan::new(&args.datapath, verbose)?;
    let enricher = build::enricher(&args.enrich)?;
    let geo = enricher.geo().description();
    let attribution = enricher.geo().attribution();
    let home = enricher.home().clone();
    let options = Options {
        // The programs' debug lines would scribble over the screen.
        kernel_log: false,
        ..plan.options
    };
    let metrics = build::metrics(
        &args.metrics,
        &plan.interfaces,
        options.flow_capacity,
        false,
    )?;
    let metering = Metering::start(plan.interfaces, options, enricher, args.interval, metrics)?;

    let setup = Setup {
        interfaces: metering
            .attachments
            .iter()
            .map(|a| format!("{} {}", a.interface.name, a.ingress))
            .collect(),
        geo,
        attribution,
        home,
        recording: None,
    };
    let units = if args.bytes {
        Units::Bytes
    } else {
        Units::Bits
    };
    let resolver = args.resolve.then(|| Resolver::start(resolver::system()));
    let mut console = Console::new(setup, State::new(units), resolver);

    let result = TerminalGuard::enter()
        .context("cannot set up the terminal for the console (run it in a terminal)")
        .and_then(|mut guard| {
            let (keys, terminal) = InputThread::start().context("reading the keyboard")?;
            let inputs = Inputs {
                updates: metering.updates.clone(),
                terminal,
                stop,
            };
            let result = app::run(guard.terminal(), &mut console, &inputs);
            // The keys thread ends first, within a poll, while the terminal is still raw:
            // a read it had begun would otherwise wait for a whole line once the
            // terminal is cooked again (seen: `q` then end of input under `script`).
            // Then the screen comes back, so that whatever is said next can be read.
            keys.stop();
            drop(guard);
            result
        });
    let stopped = metering.stop().map(|interface_events| {
        for event in interface_events {
            eprintln!("flowmeter: {event}");
        }
    });
    result.and(stopped)
}

/// The running service's view, unless `--standalone`; `None` (silently) when no
/// service answers.
fn service_view(args: &TopArgs) -> Result<Option<Live>> {
    match cli::control_socket(&args.control_socket) {
        Some(path) if !args.standalone => live::connect(path).map_err(|e| anyhow!(e)),
        _ => Ok(None),
    }
}

/// The metering thread: datapath, reader, enricher.
struct Metering {
    attachments: Vec<Attachment>,
    updates: Receiver<Update>,
    stop: Sender<()>,
    /// Ends with what happened to interfaces meanwhile, one stderr line each.
    handle: JoinHandle<Vec<String>>,
}

impl Metering {
    /// Attaches the programs (on the thread that will read them) and returns once they
    /// are attached, or with the reason they could not be. `metrics` (`--metrics`) is
    /// given every interval the thread reads.
    fn start(
        interfaces: Vec<Interface>,
        options: Options,
        enricher: Enricher,
        interval: Duration,
        mut metrics: Option<Metrics>,
    ) -> Result<Self> {
        let (started, attached) = bounded(1);
        // Two intervals of slack: a slow screen delays reads instead of piling them up.
        let (updates_out, updates) = bounded(2);
        let (stop, stopped) = bounded(1);
        let handle = thread::Builder::new()
            .name("metering".into())
            .spawn(move || {
                let (mut datapath, maps) = match Datapath::start(&interfaces, &options) {
                    Ok(running) => running,
                    Err(error) => {
                        let _ = started.send(Err(error));
                        return Vec::new();
                    }
                };
                let enricher = enricher.with_socket_records(session::socket_records(&datapath));
                let _ = started.send(Ok(datapath.attachments().to_vec()));
                // A flow the console has forgotten leaves the kernel table too, so a
                // flood's flows give their room and memory back a minute after it ends.
                let reader =
                    Reader::new(maps, &interfaces, Instant::now()).with_idle_timeout(FORGET_AFTER);
                let mut followed = Followed {
                    datapath: &mut datapath,
                    presence: Presence::new(&interfaces),
                    events: Vec::new(),
                };
                meter(
                    reader,
                    enricher,
                    interval,
                    &updates_out,
                    &stopped,
                    &mut followed,
                    &mut metrics,
                );
                let events = followed.events;
                datapath.detach();
                events
            })
            .context("starting the metering thread")?;
        let attachments = match attached.recv() {
            Ok(result) => result?,
            Err(_) => {
                let _ = handle.join();
                return Err(anyhow!("the metering thread ended while attaching"));
            }
        };
        Ok(Self {
            attachments,
            updates,
            stop,
            handle,
        })
    }

    /// Stops reading and detaches the programs; returns what happened to interfaces.
    fn stop(self) -> Result<Vec<String>> {
        let _ = self.stop.try_send(());
        self.handle
            .join()
            .map_err(|_| anyhow!("the metering thread panicked"))
    }
}

/// The attached datapath, and the interfaces it follows as they come and go.
struct Followed<'a> {
    datapath: &'a mut Datapath,
    presence: Presence,
    /// Said on stderr after the screen closes.
    events: Vec<String>,
}

/// Reads, enriches and sends one interval at a time until told to stop, the screen
/// is gone, or a read fails (the error is sent on).
fn meter<S: crate::datapath::FlowSource>(
    mut reader: Reader<S>,
    mut enricher: Enricher,
    interval: Duration,
    updates: &Sender<Update>,
    stop: &Receiver<()>,
    followed: &mut Followed,
    metrics: &mut Option<Metrics>,
) {
    let mut next = Instant::now() + FIRST_READ.min(interval);
    loop {
        let wait = after(next.saturating_duration_since(Instant::now()));
        select! {
            recv(wait) -> _ => {}
            recv(stop) -> _ => return,
        }
        // Keep the cadence, but after a stall start again from now rather than in a burst.
        next = (next + interval).max(Instant::now());
        let began = Instant::now();
        let events = followed.presence.follow(followed.datapath, &mut reader);
        followed
            .events
            .extend(events.iter().map(ToString::to_string));
        let update = match reader.read(SystemTime::now(), Instant::now()) {
            Ok(snapshot) => Update::Interval(enricher.enrich(snapshot, Instant::now())),
            Err(error) => Update::Failed(anyhow::Error::new(error).context("reading the counters")),
        };
        if let (Some(metrics), Update::Interval(interval)) = (metrics.as_mut(), &update) {
            metrics.record(interval);
            metrics.record_table(reader.flows_in_table(), reader.gone().len());
            metrics.record_cycle(began.elapsed());
            metrics.publish();
        }
        let failed = matches!(update, Update::Failed(_));
        select! {
            send(updates, update) -> sent => if sent.is_err() { return },
            recv(stop) -> _ => return,
        }
        if failed {
            return;
        }
    }
}
