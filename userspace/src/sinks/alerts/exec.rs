//! `--alert-exec CMD`: runs a shell command for each alert, in the background, and
//! reports its failures as values ([`ExecReport`]) for the caller to print.

use std::{
    fmt,
    io::Write as _,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use super::Alert;
use crate::units;

/// How often a running command is checked for having finished.
const EXEC_POLL: Duration = Duration::from_millis(20);

/// Runs `--alert-exec CMD` for each alert: `/bin/sh -c CMD` with the alert's JSON line
/// ([`Alert::to_json_line`], newline-terminated) on stdin and its text line in the
/// environment variable `FLOWMETER_ALERT`; stdout is discarded (it must not mix with a
/// log on stdout), stderr is flowmeter's. Each command runs on a thread of its own, in
/// its own process group, and the whole group is killed at the time limit. At most
/// `max_running` run at once: alerts beyond that are dropped and counted, never queued.
/// [`run`](Self::run) never waits for a command.
///
/// Failures come back through [`take_reports`](Self::take_reports): the first failure
/// in a row is reported, later ones only counted until a command succeeds again.
pub struct AlertExec {
    command: Arc<str>,
    /// The log's schema version, for the JSON line on the command's stdin.
    schema_version: u32,
    timeout: Duration,
    max_running: usize,
    running: Arc<AtomicUsize>,
    dropped: u64,
    outcomes: Arc<Mutex<Outcomes>>,
}

/// What a caller should log about `--alert-exec`, e.g. `flowmeter: {report}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecReport {
    /// The command could not be started.
    SpawnFailed { error: String },
    /// The command exited unsuccessfully (a status, or a signal).
    Exited { status: ExitStatus },
    /// The command still ran at the time limit and was killed with its process group.
    TimedOut { limit: Duration },
    /// `count` alerts were not passed to the command: `max_running` were still running.
    Dropped { count: u64, max_running: usize },
    /// A command succeeded again, after `unreported` failures beyond the one reported.
    Recovered { unreported: u64 },
}

impl fmt::Display for ExecReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LATER: &str = "later failures are counted, not shown, until one succeeds";
        match self {
            ExecReport::SpawnFailed { error } => {
                write!(f, "--alert-exec: cannot run /bin/sh: {error}; {LATER}")
            }
            ExecReport::Exited { status } => {
                write!(f, "--alert-exec: the command failed ({status}); {LATER}")
            }
            ExecReport::TimedOut { limit } => write!(
                f,
                "--alert-exec: the command still ran after {} and was killed; {LATER}",
                units::clock(*limit)
            ),
            ExecReport::Dropped { count, max_running } => write!(
                f,
                "--alert-exec: {count} alert(s) not passed to the command, because \
                 {max_running} commands were still running"
            ),
            ExecReport::Recovered { unreported } => write!(
                f,
                "--alert-exec: the command works again ({unreported} more failure(s) since \
                 the one reported)"
            ),
        }
    }
}

/// Outcomes of finished commands, not yet taken by the caller.
#[derive(Default)]
struct Outcomes {
    pending: Vec<ExecReport>,
    failing: bool,
    unreported: u64,
}

impl Outcomes {
    fn record(&mut self, outcome: Result<(), ExecReport>) {
        match (outcome, self.failing) {
            (Ok(()), false) => {}
            (Ok(()), true) => {
                self.pending.push(ExecReport::Recovered {
                    unreported: self.unreported,
                });
                self.failing = false;
                self.unreported = 0;
            }
            (Err(report), false) => {
                self.pending.push(report);
                self.failing = true;
            }
            (Err(_), true) => self.unreported += 1,
        }
    }
}

/// Frees a running slot when its thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl AlertExec {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_MAX_RUNNING: usize = 4;

    /// `command` runs through `/bin/sh -c`, with the default limits.
    pub fn new(command: impl Into<String>, schema_version: u32) -> Self {
        Self {
            command: Arc::from(command.into()),
            schema_version,
            timeout: Self::DEFAULT_TIMEOUT,
            max_running: Self::DEFAULT_MAX_RUNNING,
            running: Arc::new(AtomicUsize::new(0)),
            dropped: 0,
            outcomes: Arc::default(),
        }
    }

    /// Kill a command still running after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Run at most `max_running` (at least 1) commands at once.
    pub fn with_max_running(mut self, max_running: usize) -> Self {
        self.max_running = max_running.max(1);
        self
    }

    pub fn command(&self) -> &str {
        &self.command
    }

    /// Commands running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Starts the command for `alert` in the background, or drops the alert (counted)
    /// if `max_running` commands are still running. Returns at once.
    pub fn run(&mut self, alert: &Alert) {
        // Only this method adds to `running` (it takes `&mut self`); finished commands
        // only subtract, so the check cannot let one too many through.
        if self.running() >= self.max_running {
            self.dropped += 1;
            return;
        }
        self.running.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.running));
        let command = Arc::clone(&self.command);
        let outcomes = Arc::clone(&self.outcomes);
        let mut json = alert.to_json_line(self.schema_version);
        json.push('\n');
        let text = alert.to_string();
        let timeout = self.timeout;
        let spawned = thread::Builder::new()
            .name("alert-exec".into())
            .spawn(move || {
                // Dropped last: the outcome is recorded before the slot is freed, so
                // `wait_idle` sees it.
                let _slot = slot;
                let outcome = run_command(&command, json, &text, timeout);
                lock(&outcomes).record(outcome);
            });
        if let Err(error) = spawned {
            // The closure, and with it the slot, is dropped with the error.
            lock(&self.outcomes).record(Err(ExecReport::SpawnFailed {
                error: format!("cannot start a thread: {error}"),
            }));
        }
    }

    /// What to log since the last call: failures (the first of a row), recoveries, and
    /// how many alerts were dropped.
    pub fn take_reports(&mut self) -> Vec<ExecReport> {
        let mut reports = std::mem::take(&mut lock(&self.outcomes).pending);
        if self.dropped > 0 {
            reports.push(ExecReport::Dropped {
                count: self.dropped,
                max_running: self.max_running,
            });
            self.dropped = 0;
        }
        reports
    }

    /// Waits up to `limit` for every running command to finish; true if they did.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.running() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(EXEC_POLL);
        }
        true
    }
}

fn lock(outcomes: &Mutex<Outcomes>) -> std::sync::MutexGuard<'_, Outcomes> {
    // A panicking command thread leaves the counts usable.
    outcomes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one command to completion or to the time limit.
fn run_command(
    command: &str,
    json: String,
    text: &str,
    timeout: Duration,
) -> Result<(), ExecReport> {
    use std::os::unix::process::CommandExt as _;

    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("FLOWMETER_ALERT", text)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Its own group, so that the time limit reaches what sh starts as well.
        .process_group(0)
        .spawn()
        .map_err(|error| ExecReport::SpawnFailed {
            error: error.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // Written from another thread: a command that never reads must not hold this
        // one past the time limit. Dropping `stdin` closes it, so the command sees EOF;
        // a command that exits without reading makes the write fail, which is fine.
        let _ = thread::Builder::new()
            .name("alert-exec-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(json.as_bytes());
            });
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(ExecReport::Exited { status }),
            Ok(None) if Instant::now() < deadline => thread::sleep(EXEC_POLL),
            Ok(None) => {
                kill_group(&mut child);
                return Err(ExecReport::TimedOut { limit: timeout });
            }
            Err(error) => {
                kill_group(&mut child);
                return Err(ExecReport::SpawnFailed {
                    error: format!("cannot wait for the command: {error}"),
                });
            }
        }
    }
}

/// Kills the command's process group and reaps the shell.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory
        // is involved. The group is the child's own (process_group(0)), which cannot
        // have been reused while the child is unreaped.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}
