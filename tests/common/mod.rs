//! Shared harness for the integration tests: namespaces and veth pairs (`netns`), the
//! `flowmeter` binary run as a child inside a namespace, and its JSON-lines log read
//! back into typed records.
#![allow(dead_code)] // each test file uses its own part of the harness

pub mod attach;
pub mod bpf;
pub mod cgroup;
pub mod console;
pub mod geo;
pub mod netns;
pub mod offloads;
pub mod packets;
pub mod scene;
pub mod talkers;
pub mod tmux;
pub mod traffic;

use std::{
    io::{BufRead, BufReader, Read},
    net::{IpAddr, SocketAddr},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use serde::Deserialize;

use netns::{Counters, Netns};

/// The binary under test.
pub const FLOWMETER: &str = env!("CARGO_BIN_EXE_flowmeter");

/// Longest wait for the `start` record (loading and verifying the programs).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `flowmeter` process running inside a namespace. Dropping it kills and reaps the
/// process if it is still running.
pub struct Flowmeter {
    child: Child,
    /// Lines of standard output, as they arrive.
    lines: Receiver<String>,
    received: Vec<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a `flowmeter` run ended and what it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Flowmeter {
    /// Spawns `ip netns exec NS flowmeter ARGS` (`ip` execs flowmeter, so the child's
    /// pid is flowmeter's) without waiting for anything. `args`: words separated by
    /// spaces, no quoting.
    pub fn spawn(netns: &Netns, args: &str) -> Self {
        Self::spawn_under(netns, &[], args)
    }

    /// [`Self::spawn`], flowmeter run by `wrapper` (see [`spawn_piped_under`]).
    fn spawn_under(netns: &Netns, wrapper: &[&str], args: &str) -> Self {
        let mut child = spawn_piped_under(netns, wrapper, args.split_whitespace());
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        let stdout = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            received: Vec::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Spawns `flowmeter log ARGS` in the namespace and waits for its `start` record,
    /// written once everything is attached.
    pub fn start_log(netns: &Netns, args: &str) -> Self {
        Self::start_log_under(netns, &[], args)
    }

    /// [`Self::start_log`] without CAP_SYS_PTRACE. Run by `ip netns exec`, which
    /// mounts a /sys of its own without the cgroup mounts, flowmeter then cannot reach
    /// the cgroup v2 root through init's (`/proc/1/root`): its socket hooks are
    /// unavailable, and owners come from /proc alone.
    pub fn start_log_without_socket_hooks(netns: &Netns, args: &str) -> Self {
        Self::start_log_under(netns, &["setpriv", "--bounding-set=-sys_ptrace"], args)
    }

    fn start_log_under(netns: &Netns, wrapper: &[&str], args: &str) -> Self {
        let full = format!("log {args}");
        let mut flowmeter = Self::spawn_under(netns, wrapper, &full);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match flowmeter.lines.recv_timeout(left) {
                Ok(line) => {
                    let is_start = line.contains("\"type\":\"start\"");
                    flowmeter.received.push(line);
                    if is_start {
                        return flowmeter;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let finished = flowmeter.wait(Duration::from_secs(5));
                    panic!("`flowmeter {full}` ended before its start record: {finished:?}");
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("`flowmeter {full}` wrote no start record in {START_TIMEOUT:?}");
                }
            }
        }
    }

    /// Waits at most `timeout` for a line of standard output that `wanted` accepts, and
    /// returns it (every line read is kept for [`Self::wait`]). `None` on timeout or if
    /// the output ends.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let record: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a line is not JSON ({e}): {line}"));
            self.received.push(line);
            if wanted(&record) {
                return Some(record);
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(
            rc,
            0,
            "kill({}, {signal}): {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("asking whether flowmeter exited")
            .is_none()
    }

    /// SIGTERM, then waits (at most 30 s: a hang guard, not a bound on the stop, which
    /// `stop_flood.rs` holds to its own) for the process to finish. A debug build that
    /// writes out tens of thousands of open flows on a loaded 2-core machine was seen to
    /// need more than 10 s.
    pub fn stop(self) -> Finished {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(30))
    }

    /// Once `pair`'s link is quiet, stops and checks that flowmeter succeeded; returns
    /// what it wrote and what a's interface counted since `before`, for the caller to
    /// hold the log to.
    pub fn stop_when_quiet(
        self,
        pair: &netns::VethPair,
        before: &Counters,
    ) -> (Finished, Counters) {
        pair.wait_quiet();
        let finished = self.stop();
        let counted = pair.a_counters().since(before);
        assert!(
            finished.status.success(),
            "flowmeter failed: {}",
            finished.stderr
        );
        (finished, counted)
    }

    /// Waits at most `timeout` for the process to exit on its own (panics after that,
    /// and the drop kills it), then collects everything it wrote.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for flowmeter") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "flowmeter (pid {}) still running after {timeout:?}",
                self.pid()
            );
            thread::sleep(Duration::from_millis(10));
        };
        if let Some(stdout) = self.stdout.take() {
            let _ = stdout.join();
        }
        let stderr = self
            .stderr
            .take()
            .map(|stderr| stderr.join().unwrap_or_default())
            .unwrap_or_default();
        let mut stdout = std::mem::take(&mut self.received);
        stdout.extend(self.lines.try_iter());
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Flowmeter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `flowmeter ARGS` in the namespace to its end (at most `timeout`).
pub fn run_flowmeter(netns: &Netns, args: &str, timeout: Duration) -> Finished {
    Flowmeter::spawn(netns, args).wait(timeout)
}

impl Finished {
    /// Every line parsed as JSON; panics on the first line that is not.
    pub fn log(&self) -> Log {
        let records = self
            .stdout
            .iter()
            .enumerate()
            .map(|(n, line)| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", n + 1))
            })
            .collect();
        Log { records }
    }

    /// The stderr lines, without empty ones.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// A parsed JSON-lines log.
#[derive(Debug)]
pub struct Log {
    pub records: Vec<serde_json::Value>,
}

/// A `flow` record (schema v1), the fields the tests check.
#[derive(Clone, Debug, Deserialize)]
pub struct FlowRecord {
    pub iface: String,
    pub proto: serde_json::Value,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tcp_flags: Option<u8>,
}

/// A `totals` record (schema v1).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TotalsRecord {
    pub iface: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_unattributed_packets: u64,
    pub rx_unattributed_bytes: u64,
    pub tx_unattributed_packets: u64,
    pub tx_unattributed_bytes: u64,
    pub rx_non_ip_packets: u64,
    pub tx_non_ip_packets: u64,
    pub rx_malformed_packets: u64,
    pub tx_malformed_packets: u64,
    pub rx_table_full_packets: u64,
    pub tx_table_full_packets: u64,
}

impl TotalsRecord {
    /// The interface's packet and byte counts, comparable with its own counters.
    pub fn counters(&self) -> Counters {
        Counters {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            tx_packets: self.tx_packets,
            tx_bytes: self.tx_bytes,
        }
    }

    /// The part counted in no flow.
    pub fn unattributed(&self) -> Counters {
        Counters {
            rx_packets: self.rx_unattributed_packets,
            rx_bytes: self.rx_unattributed_bytes,
            tx_packets: self.tx_unattributed_packets,
            tx_bytes: self.tx_unattributed_bytes,
        }
    }
}

impl Log {
    /// Records of one `type`; every record must carry `v`, `type` and `ts`.
    pub fn of_type(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.records
            .iter()
            .inspect(|record| {
                assert!(record["v"].is_u64(), "no version: {record}");
                assert!(record["type"].is_string(), "no type: {record}");
                assert!(record["ts"].is_string(), "no timestamp: {record}");
            })
            .filter(|record| record["type"] == kind)
            .collect()
    }

    pub fn flows(&self) -> Vec<FlowRecord> {
        self.of_type("flow")
            .into_iter()
            .map(|record| {
                FlowRecord::deserialize(record)
                    .unwrap_or_else(|e| panic!("bad flow record ({e}): {record}"))
            })
            .collect()
    }

    pub fn totals(&self) -> Vec<TotalsRecord> {
        self.of_type("totals")
            .into_iter()
            .map(|record| {
                TotalsRecord::deserialize(record)
                    .unwrap_or_else(|e| panic!("bad totals record ({e}): {record}"))
            })
            .collect()
    }

    /// The sum of every interval's totals for `iface`.
    pub fn totals_sum(&self, iface: &str) -> TotalsRecord {
        self.totals().into_iter().filter(|t| t.iface == iface).fold(
            TotalsRecord::default(),
            |sum, t| TotalsRecord {
                iface: t.iface,
                rx_packets: sum.rx_packets + t.rx_packets,
                rx_bytes: sum.rx_bytes + t.rx_bytes,
                tx_packets: sum.tx_packets + t.tx_packets,
                tx_bytes: sum.tx_bytes + t.tx_bytes,
                rx_unattributed_packets: sum.rx_unattributed_packets + t.rx_unattributed_packets,
                rx_unattributed_bytes: sum.rx_unattributed_bytes + t.rx_unattributed_bytes,
                tx_unattributed_packets: sum.tx_unattributed_packets + t.tx_unattributed_packets,
                tx_unattributed_bytes: sum.tx_unattributed_bytes + t.tx_unattributed_bytes,
                rx_non_ip_packets: sum.rx_non_ip_packets + t.rx_non_ip_packets,
                tx_non_ip_packets: sum.tx_non_ip_packets + t.tx_non_ip_packets,
                rx_malformed_packets: sum.rx_malformed_packets + t.rx_malformed_packets,
                tx_malformed_packets: sum.tx_malformed_packets + t.tx_malformed_packets,
                rx_table_full_packets: sum.rx_table_full_packets + t.rx_table_full_packets,
                tx_table_full_packets: sum.tx_table_full_packets + t.tx_table_full_packets,
            },
        )
    }

    /// The sum of every interval's flow counts on `iface`.
    pub fn flows_sum(&self, iface: &str) -> Counters {
        self.flows()
            .iter()
            .filter(|f| f.iface == iface)
            .fold(Counters::default(), |sum, f| Counters {
                rx_packets: sum.rx_packets + f.rx_packets,
                rx_bytes: sum.rx_bytes + f.rx_bytes,
                tx_packets: sum.tx_packets + f.tx_packets,
                tx_bytes: sum.tx_bytes + f.tx_bytes,
            })
    }

    /// One flow's records on `iface`, summed over the intervals (`tcp_flags` OR-ed), or
    /// `None` if it never appeared. `proto` is the wire name ("tcp", "udp", ...).
    pub fn flow(
        &self,
        iface: &str,
        proto: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<FlowRecord> {
        self.flows()
            .into_iter()
            .filter(|f| {
                f.iface == iface
                    && f.proto == proto
                    && (f.local_ip, f.local_port) == (local.ip(), local.port())
                    && (f.remote_ip, f.remote_port) == (remote.ip(), remote.port())
            })
            .reduce(|sum, f| FlowRecord {
                rx_packets: sum.rx_packets + f.rx_packets,
                rx_bytes: sum.rx_bytes + f.rx_bytes,
                tx_packets: sum.tx_packets + f.tx_packets,
                tx_bytes: sum.tx_bytes + f.tx_bytes,
                tcp_flags: match (sum.tcp_flags, f.tcp_flags) {
                    (Some(a), Some(b)) => Some(a | b),
                    (a, b) => a.or(b),
                },
                ..sum
            })
    }

    /// Checks the log's central promise for `iface`: over the run, the totals equal
    /// what the interface itself counted (`counted`), and the flows plus the
    /// unattributed part equal the totals. Returns the summed totals.
    pub fn assert_exact(&self, iface: &str, counted: Counters) -> TotalsRecord {
        let totals = self.totals_sum(iface);
        assert_eq!(
            totals.counters(),
            counted,
            "{iface}: the totals (left) differ from the interface's own counters (right)"
        );
        let flows = self.flows_sum(iface);
        let unattributed = totals.unattributed();
        let attributed_plus_rest = Counters {
            rx_packets: flows.rx_packets + unattributed.rx_packets,
            rx_bytes: flows.rx_bytes + unattributed.rx_bytes,
            tx_packets: flows.tx_packets + unattributed.tx_packets,
            tx_bytes: flows.tx_bytes + unattributed.tx_bytes,
        };
        assert_eq!(
            attributed_plus_rest,
            totals.counters(),
            "{iface}: flows {flows:?} + unattributed {unattributed:?} (left) differ from the totals (right)"
        );
        totals
    }
}

/// `ip netns exec NS flowmeter ARGS` with its stderr read line by line: returns once a
/// line contains `ready` (e.g. "run your load now": the programs are attached), with the
/// child and the thread that collects all of stderr. Panics, the child killed, if no such
/// line comes within `timeout`.
pub fn spawn_until_stderr(
    netns: &Netns,
    args: &[&str],
    ready: &'static str,
    timeout: Duration,
) -> (Child, JoinHandle<String>) {
    let mut child = spawn_piped(netns, args.iter().copied());
    let stderr = child.stderr.take().expect("piped stderr");
    let (sender, seen) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(ready) {
                let _ = sender.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    if seen.recv_timeout(timeout).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`flowmeter {}` never said {ready:?}: {}",
            args.join(" "),
            reader.join().unwrap_or_default()
        );
    }
    (child, reader)
}

/// Where the flight recorder of a test's `flowmeter log` writes, unless the test says:
/// never the host's /var/lib/flowmeter.
pub const RECORDINGS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/recordings");

/// `ip netns exec NS flowmeter ARGS`, stdout and stderr piped (`ip` execs flowmeter, so
/// the child's pid is flowmeter's). A `log` records under [`RECORDINGS`] unless ARGS
/// name a `--record-dir`, and serves no control socket unless they name one.
fn spawn_piped<'a>(netns: &Netns, args: impl IntoIterator<Item = &'a str>) -> Child {
    spawn_piped_under(netns, &[], args)
}

/// [`spawn_piped`], with flowmeter run by `wrapper` (a command that execs its
/// arguments, e.g. `setpriv` with its options).
fn spawn_piped_under<'a>(
    netns: &Netns,
    wrapper: &[&str],
    args: impl IntoIterator<Item = &'a str>,
) -> Child {
    let mut args: Vec<&str> = args.into_iter().collect();
    if args.contains(&"log") && !args.iter().any(|arg| arg.starts_with("--record-dir")) {
        args.extend(["--record-dir", RECORDINGS]);
    }
    // Tests run side by side: a test's log must not become the service every other
    // test's `top` finds on the default socket.
    if args.contains(&"log") && !args.iter().any(|arg| arg.starts_with("--control-socket")) {
        args.extend(["--control-socket", "none"]);
    }
    Command::new("ip")
        .args(["netns", "exec", netns.name()])
        .args(wrapper)
        .arg(FLOWMETER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {FLOWMETER}: {e}"))
}

/// Waits at most `timeout` for the `start` record in the log file at `path` (`log
/// --output`): everything is attached.
pub fn wait_for_start_record(path: &std::path::Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !std::fs::read_to_string(path).is_ok_and(|text| text.contains("\"type\":\"start\"")) {
        assert!(Instant::now() < deadline, "no start record in {timeout:?}");
        thread::sleep(Duration::from_millis(50));
    }
}
