//! Processes the bench starts, and Ctrl-C.
//!
//! Every tool runs in a process group of its own, so that a Ctrl-C at the terminal reaches
//! only xtask, which notices it at its next wait, returns an error and so drops every guard:
//! the guards stop their process groups (trafgen forks workers) and delete the namespaces.
//! A [`Spawned`] guard always ends its whole group and reaps the process.

use std::{
    fs::{self, File},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

// The C library that std links anyway; xtask has no libc crate.
unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn kill(pid: i32, sig: i32) -> i32;
}

extern "C" fn on_interrupt(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only mark the run as interrupted (see [`check`]).
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(SIGINT, on_interrupt);
        signal(SIGTERM, on_interrupt);
    }
}

/// Fails once Ctrl-C (or SIGTERM) was received.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps, failing early on Ctrl-C.
pub fn sleep(duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    loop {
        check()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        thread::sleep(left.min(Duration::from_millis(50)));
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A started process (and its process group), ended and reaped when dropped.
pub struct Spawned {
    child: Child,
    line: String,
    out: PathBuf,
    err: PathBuf,
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Starts `cmd` in a new process group, its stdout and stderr going to
    /// `DIR/NAME.out` and `DIR/NAME.err`.
    pub fn start(cmd: &mut Command, dir: &Path, name: &str) -> Result<Self> {
        check()?;
        let line = cmd::display(cmd);
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let create =
            |p: &Path| File::create(p).with_context(|| format!("creating {}", p.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(create(&out)?)
            .stderr(create(&err)?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        Ok(Self {
            child,
            line,
            out,
            err,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Its exit status, once it has exited. The leader is reaped only after the rest of
    /// its group is killed (trafgen's workers can outlive a failed parent): until it is
    /// reaped, its pid cannot name another process group.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() && !self.alive() {
            self.signal_group(SIGKILL);
            self.status = Some(self.child.wait().context("reaping a child")?);
        }
        Ok(self.status)
    }

    /// Whether the leader still runs (not a zombie), from /proc/PID/stat.
    fn alive(&self) -> bool {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.child.id()));
        let state = stat.ok().and_then(|s| {
            let (_, rest) = s.rsplit_once(')')?;
            rest.split_whitespace().next().map(str::to_owned)
        });
        !matches!(state.as_deref(), None | Some("Z" | "X"))
    }

    /// Waits at most `timeout` for it to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            sleep(Duration::from_millis(20))?;
        }
    }

    /// Waits until `marker` shows in its stdout or stderr; fails if it exits first or
    /// `timeout` passes.
    pub fn wait_for_output(&mut self, marker: &str, timeout: Duration) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if self.stdout().contains(marker) || self.stderr().contains(marker) {
                return Ok(());
            }
            if let Some(status) = self.exited()? {
                bail!(
                    "`{}` exited ({status}): {}",
                    self.line,
                    self.stderr().trim()
                );
            }
            if Instant::now() >= end {
                bail!(
                    "`{}` did not print {marker:?} within {timeout:?}",
                    self.line
                );
            }
            sleep(Duration::from_millis(20))?;
        }
    }

    /// Sends `sig` to its process group, waits at most `grace`, then kills the group.
    /// Returns whether it exited within the grace period.
    pub fn stop(&mut self, sig: i32, grace: Duration) -> bool {
        if self.status.is_some() {
            return true;
        }
        self.signal_group(sig);
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if !self.alive() {
                let _ = self.exited();
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.signal_group(SIGKILL);
        self.status = self.child.wait().ok();
        false
    }

    /// Only while the leader is not reaped: until then its pid cannot name another group.
    fn signal_group(&self, sig: i32) {
        if self.status.is_none()
            && let Ok(pgid) = i32::try_from(self.child.id())
        {
            // SAFETY: kill has no memory-safety preconditions; a negative pid names our group.
            unsafe { kill(-pgid, sig) };
        }
    }

    /// CPU time used so far and peak RSS, from /proc.
    pub fn usage(&self) -> Result<Usage> {
        Usage::of(self.pid())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop(SIGTERM, Duration::from_secs(2));
    }
}

/// A process's CPU time (user + system, all threads) and peak RSS at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub cpu_secs: f64,
    pub at: Instant,
    pub peak_rss_mib: f64,
}

impl Usage {
    pub fn of(pid: u32) -> Result<Self> {
        let at = Instant::now();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // Fields after the command name, which ends with the last ')': state is field 3,
        // utime 14 and stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("no ')' in /proc/PID/stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks = |i: usize| -> Result<u64> {
            let field = fields.get(i).context("short /proc/PID/stat")?;
            Ok(field.parse()?)
        };
        let cpu_secs = (ticks(11)? + ticks(12)?) as f64 / clock_ticks()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(Self {
            cpu_secs,
            at,
            peak_rss_mib: hwm_kib / 1024.0,
        })
    }

    /// CPU used between `earlier` and `self`, in percent of one core.
    pub fn cpu_percent_since(&self, earlier: &Usage) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        100.0 * (self.cpu_secs - earlier.cpu_secs) / wall
    }
}

/// `getconf CLK_TCK`: the unit of /proc/PID/stat's times.
fn clock_ticks() -> Result<f64> {
    static TICKS: OnceLock<f64> = OnceLock::new();
    if let Some(&t) = TICKS.get() {
        return Ok(t);
    }
    let t: f64 = cmd::output(Command::new("getconf").arg("CLK_TCK"))?
        .trim()
        .parse()
        .context("`getconf CLK_TCK` is not a number")?;
    Ok(*TICKS.get_or_init(|| t))
}
