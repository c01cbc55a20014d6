//! The flight recorder of `flowmeter log`: a ring of the last `--record-window` of
//! seconds ([`second`], [`ring`]), written to a file under `--record-dir` when an alert
//! starts, with the next `--record-after` seconds ([`store`], [`writer`], in the
//! [`file`] format). An alert that starts while a recording is open extends it. `replay`
//! reads recordings back through a [`source::Source`].
//!
//! The metering thread makes one call per interval, [`Recorder::record`], after the
//! alerts: the second is summed from the interval's top talkers and serialised once;
//! files are written on the writer's thread.

pub mod file;
pub mod live;
pub mod ring;
pub mod second;
pub mod serve;
pub mod source;
pub mod store;
pub mod writer;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use self::{
    file::{AlertMark, Entry, Header},
    ring::{Line, Ring, seconds_in},
    second::{SECOND_MAX_BYTES, Second, TOP_PROCESSES, TOP_REMOTES},
    store::Store,
    writer::{Notice, Writer},
};
use crate::{
    enrich::EnrichedSnapshot,
    sinks::{
        alerts::{Alert, Phase},
        top::{Top, TopTalkers},
    },
};

/// The recorder's options (`--record-*` of `log`).
#[derive(Clone, Debug)]
pub struct Options {
    pub window: Duration,
    pub after: Duration,
    pub dir: PathBuf,
    pub keep: usize,
    pub max_size: u64,
    pub interval: Duration,
    pub interfaces: Vec<String>,
    /// The log's `--top`: the interval's top talkers are selected once, for the ring
    /// and the `top` record alike.
    pub top: usize,
}

/// What the recorder has to say: a write failed, resumed, or a file is full.
pub enum Told {
    Writer(Notice),
    /// A recording could not be opened (the directory or the file).
    OpenFailed {
        dir: PathBuf,
        error: String,
    },
    /// Recordings open again after failing to.
    OpenResumed {
        dir: PathBuf,
    },
}

/// What [`Recorder::record`] hands back.
pub struct Kept {
    /// The recording this interval's start alerts are in.
    pub recording: Option<Arc<Path>>,
    /// The interval's top talkers, the most bytes first.
    pub top: Top,
    /// The interval's second, as the ring keeps it (for the service's view).
    pub second: Line,
}

pub struct Recorder {
    options: Options,
    ring: Ring,
    talkers: TopTalkers,
    store: Store,
    writer: Writer,
    /// The open recording and how many more seconds it takes.
    open: Option<(Arc<Path>, usize)>,
    open_failing: bool,
    told: Vec<Told>,
}

impl Recorder {
    /// `None` when `--record-window 0` turns it off. The directory is made with the
    /// first recording (a host that never alerts gets none); if it cannot be, that is
    /// told (by [`take_told`](Self::take_told)) and tried again at the next alert.
    pub fn new(options: Options) -> std::io::Result<Option<Self>> {
        if options.window.is_zero() {
            return Ok(None);
        }
        let ring = Ring::new(options.window, options.interval);
        let writer = Writer::start(ring.capacity())?;
        let store = Store::new(options.dir.clone(), options.keep, options.max_size);
        Ok(Some(Self {
            talkers: TopTalkers::new(TOP_REMOTES.max(TOP_PROCESSES).max(options.top)),
            ring,
            store,
            writer,
            open: None,
            open_failing: false,
            told: Vec::new(),
            options,
        }))
    }

    /// Keeps the interval's second; when `alerts` has a start, opens a recording (the
    /// ring, this second included) or extends the open one. Returns the path of the
    /// recording this interval's start alerts are in, and the interval's top talkers (as
    /// many as the ring and `--top` need) for the log's `top` record.
    pub fn record(&mut self, interval: &EnrichedSnapshot, alerts: &[Alert]) -> Kept {
        let top = self.talkers.of(interval);
        let line = line_of(Second::of(interval, &top));
        self.ring.push(line.clone());
        let second = line.clone();
        let starts: Vec<&Alert> = alerts.iter().filter(|a| a.phase == Phase::Start).collect();
        let after = seconds_in(self.options.after, self.options.interval);
        match (&mut self.open, starts.first()) {
            (Some((_, left)), _) => {
                self.writer.line(line);
                for alert in &starts {
                    self.writer
                        .line(entry_line(&Entry::Alert(AlertMark::of(alert))));
                }
                if starts.is_empty() {
                    *left = left.saturating_sub(1);
                } else {
                    *left = after;
                }
            }
            (None, Some(first)) => self.open(first, &starts, after),
            (None, None) => {}
        }
        let recording = self.open.as_ref().map(|(path, _)| path.clone());
        if matches!(self.open, Some((_, 0))) {
            self.writer.close();
            self.open = None;
        }
        self.told
            .extend(self.writer.notices().into_iter().map(Told::Writer));
        Kept {
            recording: recording.filter(|_| !starts.is_empty()),
            top,
            second,
        }
    }

    fn open(&mut self, first: &Alert, starts: &[&Alert], after: usize) {
        let opened = match self.store.create(first.at, first.kind.label()) {
            Ok(opened) => opened,
            Err(error) => {
                self.open_failed(&error);
                return;
            }
        };
        let mut header = Header::new(
            self.options.interval.as_secs_f64(),
            self.options.window.as_secs_f64(),
            self.options.after.as_secs_f64(),
            self.options.interfaces.clone(),
        );
        header.alerts = starts.iter().map(|alert| AlertMark::of(alert)).collect();
        let mut lines = vec![entry_line(&Entry::Header(header))];
        lines.extend(self.ring.lines());
        let path: Arc<Path> = Arc::from(opened.path);
        if !self
            .writer
            .open(opened.file, path.clone(), opened.limit, lines)
        {
            let _ = std::fs::remove_file(&path);
            let busy = std::io::Error::other("the writer is a whole window behind");
            self.open_failed(&busy);
            return;
        }
        if std::mem::take(&mut self.open_failing) {
            self.told.push(Told::OpenResumed {
                dir: self.store.dir().to_path_buf(),
            });
        }
        self.open = Some((path, after));
    }

    fn open_failed(&mut self, error: &std::io::Error) {
        if !std::mem::replace(&mut self.open_failing, true) {
            self.told.push(Told::OpenFailed {
                dir: self.store.dir().to_path_buf(),
                error: error.to_string(),
            });
        }
    }

    /// What happened since the last call, each said once.
    pub fn take_told(&mut self) -> Vec<Told> {
        std::mem::take(&mut self.told)
    }

    /// The header of the service's view ([`serve`]): what a recording's says, and the
    /// log's pid.
    pub fn view_header(&self) -> Header {
        let mut header = Header::new(
            self.options.interval.as_secs_f64(),
            self.options.window.as_secs_f64(),
            self.options.after.as_secs_f64(),
            self.options.interfaces.clone(),
        );
        header.pid = Some(std::process::id());
        header
    }

    /// Seconds the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's memory now, and its bound.
    pub fn memory(&self) -> (usize, usize) {
        (self.ring.memory(), self.ring.bound())
    }

    /// On stop: the open recording is written to its last whole line and closed.
    pub fn finish(&mut self) -> Vec<Told> {
        let notices = self.writer.finish();
        self.told.extend(notices.into_iter().map(Told::Writer));
        self.open = None;
        self.take_told()
    }
}

fn entry_line(entry: &Entry) -> Line {
    Arc::from(serde_json::to_string(entry).expect("a recording's lines serialise"))
}

/// The second's line, within [`SECOND_MAX_BYTES`]: the caps keep it there; should texts
/// full of escapes take it past, the smallest remotes and processes are left out.
fn line_of(mut second: Second) -> Line {
    loop {
        let entry = Entry::Second(second);
        let text = serde_json::to_string(&entry).expect("a second serialises");
        let Entry::Second(back) = entry else {
            unreachable!("made above")
        };
        second = back;
        if text.len() <= SECOND_MAX_BYTES
            || (second.remotes.is_empty() && second.processes.is_empty())
        {
            return Arc::from(text);
        }
        if second.remotes.len() >= second.processes.len() {
            second.remotes.pop();
        } else {
            second.processes.pop();
        }
    }
}

impl std::fmt::Display for Told {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Told::Writer(notice) => notice.fmt(f),
            Told::OpenFailed { dir, error } => write!(
                f,
                "cannot make a recording in {} ({error}); metering and the log go on, and \
                 the next alert tries again (check --record-dir and its free space)",
                dir.display()
            ),
            Told::OpenResumed { dir } => {
                write!(f, "recordings in {} can be made again", dir.display())
            }
        }
    }
}

#[cfg(test)]
mod tests;
