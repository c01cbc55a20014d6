//! One metering session, as `log`, `bench` and `audit --watch` run it: resolve the
//! interfaces ([`Plan`]), attach the datapath and say where ([`Plan::start`]), read the
//! counters on every beat of a [`Clock`] until a stop signal or the deadline, detach
//! ([`Session::detach`]) and read once more, so that every packet counted is reported.
//! Before each read while attached, interfaces deleted or created again are followed
//! (`datapath::presence`) and told on stderr. The snapshots, and those interface
//! events, go on to the command's own stages (enrichers, sinks, reports).
//!
//! `top` takes the [`Plan`] and [`stop_signals`] only: it attaches and reads on a
//! metering thread of its own.

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, after, bounded, never, select, tick};
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

use super::build;
use crate::{
    cli::DatapathArgs,
    datapath::{
        Attachment, Datapath, FlowId, Interface, KernelMaps, Options, Reader, Snapshot,
        SocketRecords, interfaces,
        presence::{InterfaceEvent, Presence},
    },
};

/// A channel that receives once SIGINT or SIGTERM arrives.
pub fn stop_signals() -> Result<Receiver<()>> {
    signals_that_stop(&[SIGINT, SIGTERM])
}

/// A channel that receives once one of `stopping` arrives (`top` adds SIGHUP: a console
/// whose terminal hung up has nobody left to look at it).
pub fn signals_that_stop(stopping: &[libc::c_int]) -> Result<Receiver<()>> {
    let mut signals = Signals::new(stopping).context("installing signal handlers")?;
    let (sender, receiver) = bounded(1);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = sender.send(());
            }
        })
        .context("starting the signal thread")?;
    Ok(receiver)
}

/// What a session will attach to, and how: checked before anything is attached, so an
/// unknown interface fails before a command creates its output.
pub struct Plan {
    pub interfaces: Vec<Interface>,
    pub options: Options,
}

impl Plan {
    /// The interfaces `--iface` names (default: every up, non-loopback one) and the
    /// datapath options; `verbose` also lets the kernel programs log.
    pub fn new(args: &DatapathArgs, verbose: bool) -> Result<Self> {
        let interfaces = interfaces::resolve(&args.ifaces)?;
        for interface in &interfaces {
            // Metered all the same: it may come up later, and its totals then count.
            if interfaces::is_up(&interface.name) == Some(false) {
                eprintln!(
                    "flowmeter: warning: {} is down; metering it anyway, it counts nothing \
                     until it is up (ip link set {} up)",
                    interface.name, interface.name
                );
            }
        }
        Ok(Self {
            interfaces,
            options: build::datapath_options(args, verbose),
        })
    }

    /// Attaches the programs and says on stderr, one line per interface, which hooks
    /// and why; `note` ends each line (`bench` asks for the load there).
    pub fn start(self, note: &str) -> Result<Session> {
        let (datapath, maps) = Datapath::start(&self.interfaces, &self.options)?;
        for attachment in datapath.attachments() {
            eprintln!(
                "flowmeter: {}: ingress {} ({}), egress tc{note}",
                attachment.interface.name, attachment.ingress, attachment.reason
            );
        }
        let socket_records = socket_records(&datapath);
        Ok(Session {
            socket_records,
            reader: Reader::new(maps, &self.interfaces, Instant::now()),
            presence: Some(Presence::new(&self.interfaces)),
            events: Vec::new(),
            datapath,
        })
    }
}

/// The kernel's records of socket owners, for the enricher; `None`, after one line on
/// stderr that says why, if the kernel records none (owners then come from /proc).
pub fn socket_records(datapath: &Datapath) -> Option<Arc<dyn SocketRecords>> {
    match datapath.socket_records() {
        Ok(records) => Some(records),
        Err(reason) => {
            eprintln!("flowmeter: process attribution falls back to /proc: {reason}");
            None
        }
    }
}

/// The attached programs and the reader of their maps. Dropping it detaches.
pub struct Session {
    datapath: Datapath,
    socket_records: Option<Arc<dyn SocketRecords>>,
    reader: Reader<KernelMaps>,
    /// Which interfaces are attached where; `None` once detached (nothing to follow).
    presence: Option<Presence>,
    /// The interfaces gone or back at the last read.
    events: Vec<InterfaceEvent>,
}

impl Session {
    /// Where the kernel's records of socket owners are read (`None`: it records none).
    pub fn socket_records(&self) -> Option<Arc<dyn SocketRecords>> {
        self.socket_records.clone()
    }

    /// What is attached where, and why.
    pub fn attachments(&self) -> &[Attachment] {
        self.datapath.attachments()
    }

    /// What the kernel counted since the previous read (the first: since attaching).
    /// Passes on what the programs logged first (under `-v`), and says on stderr which
    /// interfaces are gone or back (see [`interface_events`](Self::interface_events)).
    pub fn read(&mut self) -> Result<Snapshot> {
        self.datapath.flush_kernel_log();
        self.events.clear();
        if let Some(presence) = &mut self.presence {
            self.events = presence.follow(&mut self.datapath, &mut self.reader);
        }
        for event in &self.events {
            eprintln!("flowmeter: {event}");
        }
        Ok(self.reader.read(SystemTime::now(), Instant::now())?)
    }

    /// The interfaces the last read found gone or back, for the log's records.
    pub fn interface_events(&self) -> &[InterfaceEvent] {
        &self.events
    }

    /// Removes a flow from the kernel table once it has been idle for `timeout` rather
    /// than [`IDLE_FLOW_TIMEOUT`](crate::datapath::IDLE_FLOW_TIMEOUT).
    pub fn remove_idle_flows_after(&mut self, timeout: Duration) {
        self.reader.set_idle_timeout(timeout);
    }

    /// The flows the last read no longer found: the kernel let them go.
    pub fn gone(&self) -> impl ExactSizeIterator<Item = FlowId> + '_ {
        self.reader.gone()
    }

    /// The flows in the kernel table after the last read.
    pub fn flows_in_table(&self) -> usize {
        self.reader.flows_in_table()
    }

    /// Detaches the programs; the maps stay readable, for the last [`read`](Self::read).
    pub fn detach(&mut self) {
        self.presence = None;
        self.datapath.detach();
        self.reader.programs_detached();
        self.datapath.flush_kernel_log();
    }
}

/// The beats of a metering loop: one per interval, until SIGINT or SIGTERM (the
/// [`stop_signals`] channel) or the deadline ends the iteration.
pub struct Clock {
    intervals: Receiver<Instant>,
    timer: Receiver<Instant>,
    deadline: Receiver<Instant>,
    stop: Receiver<()>,
}

/// What a [`Clock`] woke for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// An interval ended: time to read.
    Interval,
    /// The command's own timer ([`Clock::with_timer`]) fired.
    Timer,
}

impl Clock {
    /// Beats every `interval` from now, for `deadline` if given (else until stopped).
    pub fn new(interval: Duration, deadline: Option<Duration>, stop: &Receiver<()>) -> Self {
        Self {
            intervals: tick(interval),
            timer: never(),
            deadline: deadline.map(after).unwrap_or_else(never),
            stop: stop.clone(),
        }
    }

    /// Also beats [`Beat::Timer`] every `period` (`log`'s summaries).
    pub fn with_timer(mut self, period: Duration) -> Self {
        self.timer = tick(period);
        self
    }
}

impl Iterator for Clock {
    type Item = Beat;

    fn next(&mut self) -> Option<Beat> {
        // A stop comes first: when a cycle ran longer than the interval, its beat is
        // ready too, and a fair choice could start a whole cycle more before stopping.
        if self.stop.try_recv().is_ok() {
            return None;
        }
        select! {
            recv(self.intervals) -> _ => Some(Beat::Interval),
            recv(self.timer) -> _ => Some(Beat::Timer),
            recv(self.stop) -> _ => None,
            recv(self.deadline) -> _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_beats_until_the_deadline() {
        let (_keep, stop) = bounded::<()>(1);
        let clock = Clock::new(
            Duration::from_millis(10),
            Some(Duration::from_millis(55)),
            &stop,
        );
        // The deadline ends the beats (at most the five ticks before it, and one that
        // raced it); how many came first depends on how busy the machine is.
        let beats = clock.count();
        assert!(beats <= 6, "{beats} beats");
    }

    #[test]
    fn a_stop_wins_over_a_beat_that_is_ready_too() {
        let (stopping, stop) = bounded(1);
        let mut clock = Clock::new(Duration::from_millis(1), None, &stop);
        std::thread::sleep(Duration::from_millis(20));
        stopping.send(()).unwrap();
        assert_eq!(
            clock.next(),
            None,
            "the beat was ready, the stop came first"
        );
    }

    #[test]
    fn a_stop_ends_the_beats_at_once_and_the_timer_beats_on_its_own() {
        let (stopping, stop) = bounded(1);
        let mut clock =
            Clock::new(Duration::from_secs(3600), None, &stop).with_timer(Duration::from_millis(5));
        assert_eq!(clock.next(), Some(Beat::Timer));
        stopping.send(()).unwrap();
        let began = Instant::now();
        // A timer beat may be ready at the same time; the stop comes within a few.
        let beats = clock.by_ref().take(10).count();
        assert!(beats < 10, "still beating after the stop");
        assert!(began.elapsed() < Duration::from_secs(1));
    }
}
