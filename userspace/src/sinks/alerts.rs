//! Alerts: the conditions an administrator wants to hear about, raised from each
//! interval's snapshot and the enrichers' facts, de-duplicated, and handed on as values.
//!
//! [`AlertEngine::observe`] is pure and deterministic: time comes only from the
//! snapshots (`at`, `interval`), never from a clock. It watches three conditions, each
//! under a key so that one condition is one story:
//!
//! - **foreign** (key: the remote address): more than [`AlertConfig::foreign_bytes`]
//!   bytes, rx + tx summed over every flow to or from that one remote during one
//!   interval, when the remote is in a known country outside the home countries. Only
//!   when a home is declared (`--home`); local and unknown addresses are never foreign.
//! - **suspicious** (key: the process, pid and executable; for a flow with no local
//!   process, the remote address and port): at least one flow judged
//!   [`Verdict::Suspicious`] moved traffic during the interval.
//! - **rate** (key: interface and direction): an interface's rx or tx rate,
//!   `bytes * 8 / interval seconds` over the interface's exact totals, above the
//!   `--alert-rate` limit. A `PCT%` limit needs the link speed
//!   ([`AlertEngine::set_link_speed`], [`link_speed_bps`]); where it is unknown the limit
//!   does not apply, and [`AlertEngine::take_warnings`] says so once per interface.
//!
//! "Over" is strict everywhere: exactly the threshold raises nothing.
//!
//! # Start, reminder, end
//!
//! A condition *holds* in an interval when that interval's snapshot shows it. It
//! *starts* in the first interval in which it holds: one `start` alert, whose `since` is
//! the beginning of that interval (`at - interval`). While it keeps holding, a `reminder`
//! follows once at least [`AlertConfig::repeat`] of metered time (the sum of the
//! intervals' real lengths, so a wall-clock step neither hurries nor delays it) has
//! passed since the start or the last reminder. It *ends* once it has not held for
//! [`AlertConfig::clear`] of metered time (`--alert-clear`, default 10 s; at least one
//! whole interval): one `end` alert stamped with the end of the interval that completed
//! that time, carrying the subject as last seen and that interval's figures. If it holds
//! again before, the episode simply goes on; after, that is a new start with a new
//! `since`.
//!
//! Only flows that moved appear in a snapshot, so a suspicious process that sends in
//! bursts is absent between them; `clear` keeps such a process one episode.
//!
//! A snapshot with a zero-length interval carries no evidence and is ignored.
//!
//! # Output
//!
//! Each [`Alert`] displays as one line for stderr (the caller adds `flowmeter: `):
//!
//! ```text
//! ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, process 4242 xmrig (root) /tmp/.x/xmrig, suspicious
//! ALERT reminder suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> 203.0.113.7:3333 (CN), 1.2 KiB this interval, for 5m00s: executable under /tmp
//! ALERT end rate: eth0 tx 12.3 Mbit/s <= 900 Mbit/s (90% of 1 Gbit/s link), after 2m10s
//! ```
//!
//! and as a log record, [`AlertRecord`], for the envelope `schema::Line` with
//! `type: "alert"` ([`ALERT_TYPE`]); `ts` is the alert's `at`. Its fields (absent where
//! they do not apply):
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | `foreign`, `suspicious` or `rate` |
//! | `phase` | string | `start`, `reminder` or `end` |
//! | `since` | string | RFC 3339: the beginning of the first interval in which the condition held; with `kind` and the subject fields it names one episode |
//! | `duration_s` | number | `ts - since`, seconds |
//! | `interval_s` | number | the interval's real length, seconds |
//! | `iface` | string | the interface (rate), or the interface of the flow named below |
//! | `direction` | string | rate: `rx` or `tx` |
//! | `proto`, `local_ip`, `local_port`, `remote_ip`, `remote_port` | as in `flow` | foreign, suspicious: the flow behind the alert that moved the most bytes in the interval |
//! | `country` | string | foreign, suspicious: the remote's country, when known |
//! | `flows` | number | foreign, suspicious: how many flows the figures sum |
//! | `pid`, `comm`, `exe`, `user` | as in `flow` | the process of the flow named, when known |
//! | `verdict` | string | foreign, suspicious: that flow's verdict |
//! | `bytes` | number | the interval's bytes: rx + tx to/from the remote (foreign), of the subject's suspicious flows (suspicious), of the direction (rate) |
//! | `rate_bps` | number | rate: bits per second over the interval |
//! | `threshold_bytes` | number | foreign: `--alert-foreign` |
//! | `limit_bps` | number | rate: the limit in bits per second (for `PCT%`, that share of the link) |
//! | `limit_percent` | number | rate: the `PCT%` given, if the limit is a percentage |
//! | `link_bps` | number | rate: the link speed, when known |
//! | `reasons` | array of strings | foreign, suspicious: the evidence of the flows behind the alert, each sentence once |
//! | `message` | string | the one-line text written on stderr |
//!
//! [`AlertExec`] runs `--alert-exec CMD` with the same JSON line on stdin, in the
//! background, and reports its failures as values.

use std::{
    collections::{BTreeMap, HashMap, HashSet, btree_map::Entry},
    fmt,
    io::Write as _,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    str::FromStr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;

use super::schema::{self, Line, Proto, SCHEMA_VERSION};
use crate::{
    datapath::{FlowDelta, FlowId, Snapshot},
    enrich::{
        Facts,
        geo::{CountryCode, HomeCountries},
        sockets::{Owner, ProcessInfo},
        verdict::Verdict,
    },
};

/// The `type` of an alert line in the log.
pub const ALERT_TYPE: &str = "alert";

/// `--alert-foreign` when not given: 1 MiB per interval.
pub const DEFAULT_FOREIGN_BYTES: u64 = 1 << 20;

/// `--alert-repeat` when not given: 300 s.
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(300);

/// Where [`link_speed_bps`] finds `class/net` on this host.
pub const SYSFS_ROOT: &str = "/sys";

// ---------------------------------------------------------------------------------
// Configuration and flag values
// ---------------------------------------------------------------------------------

/// What raises an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    /// `--home`: with none declared, nothing is foreign and no foreign alert is raised.
    pub home: HomeCountries,
    /// `--alert-foreign`: more than this many bytes (rx + tx) in one interval to or from
    /// one remote outside the home countries raises an alert. 0 alerts on any.
    pub foreign_bytes: u64,
    /// `--alert-rate`: an interface's rx or tx rate above this raises an alert.
    pub rate: Option<RateLimit>,
    /// `--alert-repeat`: the least metered time between reminders of one condition.
    pub repeat: Duration,
    /// `--alert-clear`: how long a condition must be absent before it ends, so that a
    /// process sending in bursts, or a rate hovering at the limit, is one episode and
    /// not a start and an end every few seconds.
    pub clear: Duration,
}

/// `--alert-clear` when not given: 10 s.
pub const DEFAULT_CLEAR: Duration = Duration::from_secs(10);

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            home: HomeCountries::default(),
            foreign_bytes: DEFAULT_FOREIGN_BYTES,
            rate: None,
            repeat: DEFAULT_REPEAT,
            clear: DEFAULT_CLEAR,
        }
    }
}

/// An `--alert-rate` value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateLimit {
    /// `BPS`: bits per second.
    BitsPerSecond(u64),
    /// `PCT%`: a share of the interface's link speed, in percent (0 < PCT <= 100).
    PercentOfLink(f64),
}

impl RateLimit {
    /// The limit in bits per second on a link of `link_bps`; `None` for a percentage
    /// when the link speed is unknown.
    pub fn bits_per_second(self, link_bps: Option<u64>) -> Option<f64> {
        match self {
            RateLimit::BitsPerSecond(bps) => Some(bps as f64),
            RateLimit::PercentOfLink(percent) => link_bps.map(|link| link as f64 * percent / 100.0),
        }
    }
}

impl FromStr for RateLimit {
    type Err = AlertParseError;

    /// `BPS` in bits per second, a whole or decimal number with an optional decimal
    /// prefix `k`, `M`, `G` or `T` (powers of 1000, either case) and an optional unit
    /// `b`, `bps`, `b/s` or `bit/s`: `800000000`, `800M`, `1G`, `1.5Gbit/s`. Bytes
    /// (`B`, `MB`, `MiB`) are refused rather than guessed at. Or `PCT%` of the link
    /// speed: `90%`, `92.5%`, more than 0 and at most 100.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent
                .trim()
                .parse()
                .map_err(|_| AlertParseError::Rate(text.to_owned()))?;
            if !(value > 0.0 && value <= 100.0) {
                return Err(AlertParseError::Percent(text.to_owned()));
            }
            return Ok(RateLimit::PercentOfLink(value));
        }
        let (number, suffix) = split_number(text);
        let bps = bit_multiplier(suffix)
            .and_then(|multiplier| scale(number, multiplier))
            .ok_or_else(|| AlertParseError::Rate(text.to_owned()))?;
        if bps == 0 {
            return Err(AlertParseError::ZeroRate(text.to_owned()));
        }
        Ok(RateLimit::BitsPerSecond(bps))
    }
}

impl fmt::Display for RateLimit {
    /// `800 Mbit/s` or `90% of the link speed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::BitsPerSecond(bps) => f.write_str(&bits_text(*bps)),
            RateLimit::PercentOfLink(percent) => write!(f, "{percent}% of the link speed"),
        }
    }
}

/// An `--alert-foreign` value: a byte count, a whole or decimal number with an optional
/// unit. `K`, `M`, `G`, `T` (optionally followed by `B`) are powers of 1000; `Ki`, `Mi`,
/// `Gi`, `Ti` (optionally followed by `B`) are powers of 1024; `B` alone is bytes. Case
/// does not matter and a space may separate number and unit: `1048576`, `500K`
/// (500,000), `10MB` (10,000,000), `1MiB` (1,048,576), `1.5 GiB`.
pub fn parse_bytes(text: &str) -> Result<u64, AlertParseError> {
    let text = text.trim();
    let (number, suffix) = split_number(text);
    byte_multiplier(suffix)
        .and_then(|multiplier| scale(number, multiplier))
        .ok_or_else(|| AlertParseError::Bytes(text.to_owned()))
}

/// A flag value that cannot be used; each message says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlertParseError {
    #[error(
        "'{0}' is not a byte count; give e.g. 1048576, 500K, 10MB or 1MiB \
         (K, M, G, T are powers of 1000; KiB, MiB, GiB, TiB powers of 1024)"
    )]
    Bytes(String),
    #[error(
        "'{0}' is not a rate; give bits per second, e.g. 800M or 1G (k, M, G, T are powers \
         of 1000; bytes are not accepted: 100 MB/s is 800M), or a share of the link speed, \
         e.g. 90%"
    )]
    Rate(String),
    #[error("'{0}': a rate limit must be more than 0 bits per second")]
    ZeroRate(String),
    #[error("'{0}': a share of the link speed must be more than 0% and at most 100%")]
    Percent(String),
}

/// Splits "1.5 GiB" into ("1.5", "GiB").
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

/// `number * multiplier`, exact for whole numbers, rounded for decimals; `None` for
/// what is not a number or does not fit.
fn scale(number: &str, multiplier: u64) -> Option<u64> {
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier);
    }
    let value: f64 = number.parse().ok()?;
    let scaled = value * multiplier as f64;
    (scaled.is_finite() && scaled >= 0.0 && scaled < u64::MAX as f64).then(|| scaled.round() as u64)
}

fn byte_multiplier(suffix: &str) -> Option<u64> {
    Some(match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    })
}

fn bit_multiplier(suffix: &str) -> Option<u64> {
    let (multiplier, unit) = match suffix.chars().next() {
        Some('k' | 'K') => (1_000, &suffix[1..]),
        Some('m' | 'M') => (1_000_000, &suffix[1..]),
        Some('g' | 'G') => (1_000_000_000, &suffix[1..]),
        Some('t' | 'T') => (1_000_000_000_000, &suffix[1..]),
        _ => (1, suffix),
    };
    // Lower-case `b` only: `B` would be bytes, off by a factor of 8.
    matches!(unit, "" | "b" | "bps" | "b/s" | "bit/s").then_some(multiplier)
}

/// The link speed of `iface` in bits per second, from `SYSFS/class/net/IF/speed` (Mb/s),
/// with `sysfs_root` normally [`SYSFS_ROOT`]. `None` when unknown: the file is missing or
/// unreadable (down interfaces refuse the read), or says -1 or 0, as virtual interfaces
/// often do.
pub fn link_speed_bps(sysfs_root: &Path, iface: &str) -> Option<u64> {
    // An interface name is one path component.
    if iface.is_empty() || iface == "." || iface == ".." || iface.contains('/') {
        return None;
    }
    let path = sysfs_root.join("class/net").join(iface).join("speed");
    let mbps: i64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    // Some drivers print SPEED_UNKNOWN (-1) as an unsigned 32-bit number.
    if mbps <= 0 || mbps >= i64::from(u32::MAX) {
        return None;
    }
    u64::try_from(mbps).ok()?.checked_mul(1_000_000)
}

// ---------------------------------------------------------------------------------
// Alerts as values
// ---------------------------------------------------------------------------------

/// Which condition an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    Foreign,
    Suspicious,
    Rate,
}

impl AlertKind {
    /// `foreign`, `suspicious` or `rate`.
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::Foreign => "foreign",
            AlertKind::Suspicious => "suspicious",
            AlertKind::Rate => "rate",
        }
    }
}

/// Where in its condition's life an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Start,
    Reminder,
    End,
}

impl Phase {
    /// `start`, `reminder` or `end`.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Reminder => "reminder",
            Phase::End => "end",
        }
    }
}

/// An interface direction, for rate alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Rx,
    Tx,
}

impl Direction {
    /// `rx` or `tx`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }
}

/// One alert. Fields that do not apply to its kind are `None` (or 0 and empty).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    pub phase: Phase,
    /// The beginning of the first interval in which the condition held.
    pub since: SystemTime,
    /// The end of the interval this alert is about (the snapshot's `at`).
    pub at: SystemTime,
    /// That interval's real length.
    pub interval: Duration,
    /// The interface: of the rate, or of `flow`.
    pub iface: Option<Arc<str>>,
    /// Rate: which direction.
    pub direction: Option<Direction>,
    /// Foreign, suspicious: the flow behind the alert that moved the most bytes.
    pub flow: Option<FlowId>,
    /// Foreign, suspicious: how many flows `bytes` sums.
    pub flows: usize,
    /// The remote's country, when known.
    pub country: Option<CountryCode>,
    /// The process of `flow`, when known.
    pub process: Option<Arc<ProcessInfo>>,
    /// The verdict on `flow`.
    pub verdict: Option<Verdict>,
    /// The interval's bytes: rx + tx to/from the remote (foreign), of the subject's
    /// suspicious flows (suspicious), of the direction (rate).
    pub bytes: u64,
    /// Rate: bits per second over the interval (`None` at an end when unmeasured).
    pub rate_bps: Option<u64>,
    /// Foreign: the `--alert-foreign` threshold.
    pub threshold_bytes: Option<u64>,
    /// Rate: the limit as configured.
    pub limit: Option<RateLimit>,
    /// Rate: the limit in bits per second on this interface.
    pub limit_bps: Option<u64>,
    /// Rate: the interface's link speed, when known.
    pub link_bps: Option<u64>,
    /// Foreign, suspicious: the verdicts' evidence, each sentence once.
    pub reasons: Vec<String>,
}

impl Alert {
    /// `at - since` (zero if the wall clock stepped back).
    pub fn duration(&self) -> Duration {
        self.at.duration_since(self.since).unwrap_or_default()
    }

    /// The record for the log; wrap it in `schema::Line` with [`ALERT_TYPE`] and
    /// `schema::timestamp(alert.at)`.
    pub fn record(&self) -> AlertRecord<'_> {
        let flow = self.flow.as_ref();
        let process = self.process.as_deref();
        let is_rate = self.kind == AlertKind::Rate;
        AlertRecord {
            kind: self.kind.label(),
            phase: self.phase.label(),
            since: schema::timestamp(self.since),
            duration_s: self.duration().as_secs_f64(),
            interval_s: self.interval.as_secs_f64(),
            iface: self.iface.as_deref(),
            direction: self.direction.map(Direction::label),
            proto: flow.map(|flow| proto(flow.proto.0)),
            local_ip: flow.map(|flow| flow.local_ip.to_string()),
            local_port: flow.map(|flow| flow.local_port),
            remote_ip: flow.map(|flow| flow.remote_ip.to_string()),
            remote_port: flow.map(|flow| flow.remote_port),
            country: self.country.as_ref().map(CountryCode::as_str),
            flows: (!is_rate).then_some(self.flows),
            pid: process.map(|p| p.pid),
            comm: process.map(|p| p.comm.as_str()),
            exe: process
                .and_then(|p| p.exe.as_ref())
                .map(|exe| exe.display().to_string()),
            user: process.map(|p| p.user.as_str()),
            verdict: self.verdict.map(Verdict::label),
            bytes: self.bytes,
            rate_bps: self.rate_bps,
            threshold_bytes: self.threshold_bytes,
            limit_bps: self.limit_bps,
            limit_percent: match self.limit {
                Some(RateLimit::PercentOfLink(percent)) => Some(percent),
                _ => None,
            },
            link_bps: self.link_bps,
            reasons: self.reasons.iter().map(String::as_str).collect(),
            message: self.to_string(),
        }
    }

    /// The whole log line (envelope and record, no newline): what `--alert-exec` reads.
    pub fn to_json_line(&self) -> String {
        let ts = schema::timestamp(self.at);
        let line = Line {
            v: SCHEMA_VERSION,
            kind: ALERT_TYPE,
            ts: &ts,
            record: self.record(),
        };
        // Cannot fail: plain fields, no maps, no hand-written serializers.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// ", for 5m00s" (reminder), ", after 5m03s" (end), nothing (start).
    fn write_duration(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.phase {
            Phase::Start => Ok(()),
            Phase::Reminder => write!(f, ", for {}", duration_text(self.duration())),
            Phase::End => write!(f, ", after {}", duration_text(self.duration())),
        }
    }

    /// "process 4242 xmrig (root) /tmp/.x/xmrig" or "no local process".
    fn write_process(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.process.as_deref() {
            Some(p) => {
                write!(f, "process {} {} ({})", p.pid, p.comm, p.user)?;
                if let Some(exe) = &p.exe {
                    write!(f, " {}", exe.display())?;
                }
                Ok(())
            }
            None => f.write_str("no local process"),
        }
    }

    /// "203.0.113.7:3333 (CN)", brackets for IPv6.
    fn write_remote(&self, f: &mut fmt::Formatter<'_>, with_port: bool) -> fmt::Result {
        if let Some(flow) = &self.flow {
            if with_port {
                write!(f, "{}", SocketAddr::new(flow.remote_ip, flow.remote_port))?;
            } else {
                write!(f, "{}", flow.remote_ip)?;
            }
        }
        if let Some(country) = self.country {
            write!(f, " ({country})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Alert {
    /// One line for stderr, without the `flowmeter: ` prefix (see the module docs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ALERT {} {}: ", self.phase.label(), self.kind.label())?;
        let compare = if self.phase == Phase::End { "<=" } else { ">" };
        match self.kind {
            AlertKind::Foreign => {
                self.write_remote(f, false)?;
                write!(f, " {} this interval", bytes_text(self.bytes))?;
                if let Some(threshold) = self.threshold_bytes {
                    write!(f, " {compare} {}", bytes_text(threshold))?;
                }
                self.write_duration(f)?;
                f.write_str(", ")?;
                self.write_process(f)?;
                if self.verdict == Some(Verdict::Suspicious) {
                    f.write_str(", suspicious")?;
                }
            }
            AlertKind::Suspicious => {
                self.write_process(f)?;
                f.write_str(" -> ")?;
                self.write_remote(f, true)?;
                if self.phase == Phase::End {
                    f.write_str(", no suspicious traffic this interval")?;
                } else {
                    write!(f, ", {} this interval", bytes_text(self.bytes))?;
                }
                self.write_duration(f)?;
                if self.phase != Phase::End && !self.reasons.is_empty() {
                    write!(f, ": {}", self.reasons.join("; "))?;
                }
            }
            AlertKind::Rate => {
                if let Some(iface) = &self.iface {
                    write!(f, "{iface} ")?;
                }
                if let Some(direction) = self.direction {
                    write!(f, "{} ", direction.label())?;
                }
                match self.rate_bps {
                    Some(rate) => f.write_str(&bits_text(rate))?,
                    None => f.write_str("rate unknown")?,
                }
                if let Some(limit) = self.limit_bps {
                    write!(f, " {compare} {}", bits_text(limit))?;
                }
                if let (Some(RateLimit::PercentOfLink(percent)), Some(link)) =
                    (self.limit, self.link_bps)
                {
                    write!(f, " ({percent}% of {} link)", bits_text(link))?;
                }
                self.write_duration(f)?;
            }
        }
        Ok(())
    }
}

/// `type: "alert"`: the fields are described in the module docs.
#[derive(Serialize)]
pub struct AlertRecord<'a> {
    pub kind: &'static str,
    pub phase: &'static str,
    pub since: String,
    pub duration_s: f64,
    pub interval_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_bps: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<&'a str>,
    pub message: String,
}

/// `proto` as the `flow` record writes it.
fn proto(number: u8) -> Proto {
    use flowmeter_common::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
    match number {
        PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6 => {
            Proto::Name(crate::datapath::Protocol(number).to_string())
        }
        other => Proto::Number(other),
    }
}

/// Something the caller should print once, e.g. `flowmeter: warning: {warning}`.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertWarning {
    /// A `PCT%` rate limit cannot apply to this interface.
    UnknownLinkSpeed { iface: Arc<str>, percent: f64 },
}

impl fmt::Display for AlertWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertWarning::UnknownLinkSpeed { iface, percent } => write!(
                f,
                "--alert-rate {percent}% does not apply to {iface}: its link speed is unknown \
                 (/sys/class/net/{iface}/speed is missing or -1, as on most virtual \
                 interfaces); give the limit in bits per second instead, e.g. --alert-rate 800M"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------

/// What one condition is about; the de-duplication key. The order is the order in
/// which one interval's alerts come out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Condition {
    Foreign {
        remote_ip: IpAddr,
    },
    SuspiciousProcess {
        pid: u32,
        exe: Option<PathBuf>,
    },
    SuspiciousFlow {
        remote_ip: IpAddr,
        remote_port: u16,
    },
    Rate {
        iface: Arc<str>,
        direction: Direction,
    },
}

/// A condition that holds.
struct Episode {
    since: SystemTime,
    /// Metered time since the start or the last reminder.
    unreminded: Duration,
    /// Metered time since it last held (zero while it holds).
    absent: Duration,
    /// The latest alert raised or refreshed for it: the end alert names its subject.
    last: Alert,
}

/// An interval's figures for a condition that did not hold, for its end alert.
#[derive(Clone, Copy, Default)]
struct Figures {
    bytes: u64,
    flows: usize,
    rate_bps: Option<u64>,
}

/// Flows grouped under one condition during one interval.
struct Group {
    bytes: u64,
    flows: usize,
    /// The flow that moved the most bytes (its index in the snapshot).
    top: usize,
    top_bytes: u64,
}

/// Watches the snapshots and raises de-duplicated alerts; see the module docs.
pub struct AlertEngine {
    config: AlertConfig,
    /// Link speeds in bits per second; absent or `None` is unknown.
    link_speeds: HashMap<Arc<str>, Option<u64>>,
    /// Interfaces already warned about.
    warned: HashSet<Arc<str>>,
    warnings: Vec<AlertWarning>,
    active: BTreeMap<Condition, Episode>,
}

impl AlertEngine {
    pub fn new(config: AlertConfig) -> Self {
        Self {
            config,
            link_speeds: HashMap::new(),
            warned: HashSet::new(),
            warnings: Vec::new(),
            active: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Records `iface`'s link speed in bits per second (`None`: unknown), e.g. from
    /// [`link_speed_bps`]. Only `PCT%` limits use it. May be called again at any time.
    pub fn set_link_speed(&mut self, iface: &str, bps: Option<u64>) {
        let iface: Arc<str> = Arc::from(iface);
        if bps.is_some() {
            // Warn again if it is ever lost.
            self.warned.remove(&iface);
        }
        self.link_speeds.insert(iface, bps);
    }

    /// Conditions that hold now.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Warnings raised since the last call, each once: print them.
    pub fn take_warnings(&mut self) -> Vec<AlertWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// One interval: `facts` are the enrichers' answers for `snapshot.flows`, in the same
    /// order. Returns the alerts this interval raises, foreign first, then suspicious,
    /// then rate, each in a fixed order.
    pub fn observe(&mut self, snapshot: &Snapshot, facts: &[Facts]) -> Vec<Alert> {
        if snapshot.interval.is_zero() {
            return Vec::new();
        }
        let mut held: BTreeMap<Condition, Alert> = BTreeMap::new();
        let mut measured: HashMap<Condition, Figures> = HashMap::new();
        self.foreign(snapshot, facts, &mut held, &mut measured);
        self.suspicious(snapshot, facts, &mut held);
        self.rates(snapshot, &mut held, &mut measured);

        let mut alerts: Vec<(Condition, Alert)> = Vec::new();
        let clear = self.config.clear;
        let ended: Vec<Condition> = self
            .active
            .iter_mut()
            .filter(|(key, _)| !held.contains_key(*key))
            .filter_map(|(key, episode)| {
                episode.absent += snapshot.interval;
                (episode.absent >= clear).then(|| key.clone())
            })
            .collect();
        for key in ended {
            let Some(episode) = self.active.remove(&key) else {
                continue;
            };
            let figures = measured.get(&key).copied().unwrap_or_default();
            let alert = Alert {
                phase: Phase::End,
                at: snapshot.at,
                interval: snapshot.interval,
                bytes: figures.bytes,
                flows: figures.flows,
                rate_bps: figures.rate_bps,
                ..episode.last
            };
            alerts.push((key, alert));
        }
        for (key, mut alert) in held {
            match self.active.entry(key.clone()) {
                Entry::Vacant(slot) => {
                    let since = snapshot
                        .at
                        .checked_sub(snapshot.interval)
                        .unwrap_or(snapshot.at);
                    alert.since = since;
                    slot.insert(Episode {
                        since,
                        unreminded: Duration::ZERO,
                        absent: Duration::ZERO,
                        last: alert.clone(),
                    });
                    alerts.push((key, alert));
                }
                Entry::Occupied(mut slot) => {
                    let episode = slot.get_mut();
                    episode.absent = Duration::ZERO;
                    alert.since = episode.since;
                    episode.unreminded += snapshot.interval;
                    if episode.unreminded >= self.config.repeat {
                        episode.unreminded = Duration::ZERO;
                        alert.phase = Phase::Reminder;
                        alerts.push((key, alert.clone()));
                    }
                    episode.last = alert;
                }
            }
        }
        alerts.sort_by(|a, b| a.0.cmp(&b.0));
        alerts.into_iter().map(|(_, alert)| alert).collect()
    }

    /// Remotes outside the home countries over the byte threshold.
    fn foreign(
        &self,
        snapshot: &Snapshot,
        facts: &[Facts],
        held: &mut BTreeMap<Condition, Alert>,
        measured: &mut HashMap<Condition, Figures>,
    ) {
        let home = &self.config.home;
        if home.is_empty() {
            return;
        }
        let key_of = |flow: &FlowDelta, facts: &Facts| {
            home.is_foreign(&facts.location)
                .then_some(Condition::Foreign {
                    remote_ip: flow.id.remote_ip,
                })
        };
        let groups = group_flows(snapshot, facts, key_of);
        let over: HashMap<Condition, Group> = groups
            .into_iter()
            .filter_map(|(key, group)| {
                if group.bytes > self.config.foreign_bytes {
                    Some((key, group))
                } else {
                    // Kept only for conditions that may be ending now.
                    if self.active.contains_key(&key) {
                        measured.insert(key, Figures::of(&group));
                    }
                    None
                }
            })
            .collect();
        for (key, group, reasons) in with_reasons(snapshot, facts, over, key_of) {
            let mut alert = flow_alert(AlertKind::Foreign, snapshot, facts, &group, reasons);
            alert.threshold_bytes = Some(self.config.foreign_bytes);
            held.insert(key, alert);
        }
    }

    /// Processes (or, with none, remote endpoints) with a suspicious flow that moved.
    fn suspicious(
        &self,
        snapshot: &Snapshot,
        facts: &[Facts],
        held: &mut BTreeMap<Condition, Alert>,
    ) {
        let key_of = |flow: &FlowDelta, facts: &Facts| {
            (facts.judgement.verdict == Verdict::Suspicious).then(|| match facts.owner.process() {
                Some(process) => Condition::SuspiciousProcess {
                    pid: process.pid,
                    exe: process.exe.clone(),
                },
                None => Condition::SuspiciousFlow {
                    remote_ip: flow.id.remote_ip,
                    remote_port: flow.id.remote_port,
                },
            })
        };
        let groups = group_flows(snapshot, facts, key_of);
        for (key, group, reasons) in with_reasons(snapshot, facts, groups, key_of) {
            let alert = flow_alert(AlertKind::Suspicious, snapshot, facts, &group, reasons);
            held.insert(key, alert);
        }
    }

    /// Interface directions over the rate limit.
    fn rates(
        &mut self,
        snapshot: &Snapshot,
        held: &mut BTreeMap<Condition, Alert>,
        measured: &mut HashMap<Condition, Figures>,
    ) {
        let Some(limit) = self.config.rate else {
            return;
        };
        let seconds = snapshot.interval.as_secs_f64();
        for totals in &snapshot.interfaces {
            let link_bps = self.link_speeds.get(&totals.iface).copied().flatten();
            let limit_bps = limit.bits_per_second(link_bps);
            if let (RateLimit::PercentOfLink(percent), None) = (limit, limit_bps)
                && self.warned.insert(totals.iface.clone())
            {
                self.warnings.push(AlertWarning::UnknownLinkSpeed {
                    iface: totals.iface.clone(),
                    percent,
                });
            }
            for (direction, bytes) in [
                (Direction::Rx, totals.rx.bytes),
                (Direction::Tx, totals.tx.bytes),
            ] {
                let key = Condition::Rate {
                    iface: totals.iface.clone(),
                    direction,
                };
                let rate = bytes as f64 * 8.0 / seconds;
                let rate_bps = Some(rate.round() as u64);
                if !limit_bps.is_some_and(|limit| rate > limit) {
                    if self.active.contains_key(&key) {
                        let figures = Figures {
                            bytes,
                            flows: 0,
                            rate_bps,
                        };
                        measured.insert(key, figures);
                    }
                    continue;
                }
                let alert = Alert {
                    iface: Some(totals.iface.clone()),
                    direction: Some(direction),
                    bytes,
                    rate_bps,
                    limit: Some(limit),
                    limit_bps: limit_bps.map(|limit| limit.round() as u64),
                    link_bps,
                    ..blank_alert(AlertKind::Rate, snapshot)
                };
                held.insert(key, alert);
            }
        }
    }
}

impl Figures {
    fn of(group: &Group) -> Self {
        Self {
            bytes: group.bytes,
            flows: group.flows,
            rate_bps: None,
        }
    }
}

/// Sums each condition's flows (rx + tx bytes) and finds its largest flow.
fn group_flows(
    snapshot: &Snapshot,
    facts: &[Facts],
    key_of: impl Fn(&FlowDelta, &Facts) -> Option<Condition>,
) -> HashMap<Condition, Group> {
    let mut groups: HashMap<Condition, Group> = HashMap::new();
    for (index, (flow, facts)) in snapshot.flows.iter().zip(facts).enumerate() {
        let Some(key) = key_of(flow, facts) else {
            continue;
        };
        let bytes = flow.rx_bytes.saturating_add(flow.tx_bytes);
        let group = groups.entry(key).or_insert(Group {
            bytes: 0,
            flows: 0,
            top: index,
            top_bytes: bytes,
        });
        group.bytes = group.bytes.saturating_add(bytes);
        group.flows += 1;
        if bytes > group.top_bytes {
            group.top = index;
            group.top_bytes = bytes;
        }
    }
    groups
}

/// The reasons of every flow behind each of `groups`, each sentence once, in flow order.
/// A second pass over the flows, made only for the few groups that raise an alert.
fn with_reasons(
    snapshot: &Snapshot,
    facts: &[Facts],
    groups: HashMap<Condition, Group>,
    key_of: impl Fn(&FlowDelta, &Facts) -> Option<Condition>,
) -> Vec<(Condition, Group, Vec<String>)> {
    if groups.is_empty() {
        return Vec::new();
    }
    let mut reasons: HashMap<Condition, Vec<String>> = HashMap::new();
    for (flow, facts) in snapshot.flows.iter().zip(facts) {
        if facts.judgement.reasons.is_empty() {
            continue;
        }
        let Some(key) = key_of(flow, facts).filter(|key| groups.contains_key(key)) else {
            continue;
        };
        let list = reasons.entry(key).or_default();
        for reason in &facts.judgement.reasons {
            let text = reason.to_string();
            if !list.contains(&text) {
                list.push(text);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, group)| {
            let list = reasons.remove(&key).unwrap_or_default();
            (key, group, list)
        })
        .collect()
}

/// A foreign or suspicious alert, naming the group's largest flow.
fn flow_alert(
    kind: AlertKind,
    snapshot: &Snapshot,
    facts: &[Facts],
    group: &Group,
    reasons: Vec<String>,
) -> Alert {
    let flow = &snapshot.flows[group.top];
    let facts = &facts[group.top];
    Alert {
        iface: Some(flow.id.iface.clone()),
        flow: Some(flow.id.clone()),
        flows: group.flows,
        country: facts.location.country(),
        process: match &facts.owner {
            Owner::Process(process) => Some(Arc::clone(process)),
            Owner::Unresolved | Owner::NoLocalSocket => None,
        },
        verdict: Some(facts.judgement.verdict),
        bytes: group.bytes,
        reasons,
        ..blank_alert(kind, snapshot)
    }
}

/// A start alert for this interval with no subject or figures yet.
fn blank_alert(kind: AlertKind, snapshot: &Snapshot) -> Alert {
    Alert {
        kind,
        phase: Phase::Start,
        since: snapshot.at,
        at: snapshot.at,
        interval: snapshot.interval,
        iface: None,
        direction: None,
        flow: None,
        flows: 0,
        country: None,
        process: None,
        verdict: None,
        bytes: 0,
        rate_bps: None,
        threshold_bytes: None,
        limit: None,
        limit_bps: None,
        link_bps: None,
        reasons: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------
// Human figures
// ---------------------------------------------------------------------------------

/// `512 B`, `1 MiB`, `4.2 MiB`: powers of 1024, one decimal unless whole.
fn bytes_text(bytes: u64) -> String {
    scaled_text(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// `800 Mbit/s`, `1.2 Gbit/s`: powers of 1000, one decimal unless whole.
fn bits_text(bps: u64) -> String {
    scaled_text(
        bps,
        1000.0,
        &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s"],
    )
}

fn scaled_text(value: u64, base: f64, units: &[&str]) -> String {
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= base && unit + 1 < units.len() {
        scaled /= base;
        unit += 1;
    }
    if scaled.fract() == 0.0 {
        format!("{scaled:.0} {}", units[unit])
    } else {
        format!("{scaled:.1} {}", units[unit])
    }
}

/// `42s`, `5m03s`, `2h05m`.
fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

// ---------------------------------------------------------------------------------
// --alert-exec
// ---------------------------------------------------------------------------------

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
                duration_text(*limit)
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
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: Arc::from(command.into()),
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
        let mut json = alert.to_json_line();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{DirectionTotals, InterfaceTotals, Protocol};
    use crate::enrich::{
        geo::Location,
        verdict::{Judgement, Reason},
    };
    use serde_json::Value;

    const T0: u64 = 1_800_000_000;
    const MIB: u64 = 1 << 20;

    fn at(second: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + second)
    }

    fn cc(code: &str) -> CountryCode {
        CountryCode::new(code).unwrap()
    }

    fn home(codes: &str) -> AlertConfig {
        AlertConfig {
            home: codes.parse().unwrap(),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        }
    }

    fn flow(remote: &str, remote_port: u16, rx_bytes: u64, tx_bytes: u64) -> FlowDelta {
        FlowDelta {
            id: FlowId {
                iface: Arc::from("eth0"),
                proto: Protocol(flowmeter_common::PROTO_TCP),
                local_ip: "10.0.0.1".parse().unwrap(),
                local_port: 40000,
                remote_ip: remote.parse().unwrap(),
                remote_port,
            },
            rx_packets: 1,
            rx_bytes,
            tx_packets: 1,
            tx_bytes,
            tcp_flags: 0x18,
        }
    }

    fn miner() -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid: 4242,
            comm: "xmrig".into(),
            exe: Some("/tmp/.x/xmrig".into()),
            exe_deleted: false,
            uid: 0,
            user: "root".into(),
            cmdline: "/tmp/.x/xmrig -o pool:3333".into(),
        })
    }

    fn business(location: Location) -> Facts {
        Facts {
            owner: Owner::NoLocalSocket,
            location,
            judgement: Judgement {
                verdict: Verdict::Business,
                reasons: vec![],
                foreign: false,
            },
        }
    }

    fn in_country(code: &str) -> Facts {
        business(Location::Country(cc(code)))
    }

    fn suspicious(owner: Owner, location: Location, reasons: Vec<Reason>) -> Facts {
        Facts {
            owner,
            location,
            judgement: Judgement {
                verdict: Verdict::Suspicious,
                reasons,
                foreign: false,
            },
        }
    }

    fn snapshot(second: u64, flows: Vec<FlowDelta>) -> Snapshot {
        Snapshot {
            at: at(second),
            interval: Duration::from_secs(1),
            flows,
            interfaces: vec![],
        }
    }

    fn link(second: u64, interval: Duration, rx_bytes: u64, tx_bytes: u64) -> Snapshot {
        let direction = |bytes| DirectionTotals {
            packets: bytes / 1500,
            bytes,
            ..Default::default()
        };
        Snapshot {
            at: at(second),
            interval,
            flows: vec![],
            interfaces: vec![InterfaceTotals {
                iface: Arc::from("eth0"),
                rx: direction(rx_bytes),
                tx: direction(tx_bytes),
            }],
        }
    }

    fn phases(alerts: &[Alert]) -> Vec<(AlertKind, Phase)> {
        alerts.iter().map(|a| (a.kind, a.phase)).collect()
    }

    #[test]
    fn foreign_traffic_over_the_threshold_starts_once_and_ends_once() {
        let mut engine = AlertEngine::new(home("DE"));
        let heavy = || {
            (
                vec![flow("203.0.113.7", 443, MIB, MIB)],
                vec![in_country("CN")],
            )
        };

        let (flows, facts) = heavy();
        let alerts = engine.observe(&snapshot(1, flows), &facts);
        assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::Start)]);
        let start = &alerts[0];
        assert_eq!(start.since, at(0));
        assert_eq!(start.at, at(1));
        assert_eq!(start.bytes, 2 * MIB);
        assert_eq!(start.country, Some(cc("CN")));
        assert_eq!(start.threshold_bytes, Some(MIB));
        assert_eq!(
            start.flow.as_ref().unwrap().remote_ip,
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );

        for second in 2..=4 {
            let (flows, facts) = heavy();
            assert!(engine.observe(&snapshot(second, flows), &facts).is_empty());
        }
        assert_eq!(engine.active(), 1);

        // Under the threshold for one whole interval: it has ended.
        let alerts = engine.observe(
            &snapshot(5, vec![flow("203.0.113.7", 443, 10, 10)]),
            &[in_country("CN")],
        );
        assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::End)]);
        let end = &alerts[0];
        assert_eq!((end.since, end.at), (at(0), at(5)));
        assert_eq!(end.bytes, 20, "the interval's figure, under the threshold");
        assert_eq!(end.country, Some(cc("CN")));
        assert_eq!(engine.active(), 0);

        assert!(engine.observe(&snapshot(6, vec![]), &[]).is_empty());
        // Back over it: a new episode.
        let (flows, facts) = heavy();
        let again = engine.observe(&snapshot(7, flows), &facts);
        assert_eq!(phases(&again), [(AlertKind::Foreign, Phase::Start)]);
        assert_eq!(again[0].since, at(6));
    }

    #[test]
    fn an_end_comes_when_the_remote_is_gone_too() {
        let mut engine = AlertEngine::new(home("DE"));
        engine.observe(
            &snapshot(1, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
            &[in_country("CN")],
        );
        let alerts = engine.observe(&snapshot(2, vec![]), &[]);
        assert_eq!(phases(&alerts), [(AlertKind::Foreign, Phase::End)]);
        assert_eq!(alerts[0].bytes, 0);
    }

    #[test]
    fn a_condition_absent_for_less_than_clear_is_one_episode() {
        let config = AlertConfig {
            clear: Duration::from_secs(3),
            ..home("DE")
        };
        let mut engine = AlertEngine::new(config);
        let mut raised = Vec::new();
        // Over the threshold in seconds 1, 3 and 4 (gaps of one second), then silent.
        for second in 1..=9 {
            let (flows, facts) = if [1, 3, 4].contains(&second) {
                (
                    vec![flow("198.51.100.7", 443, 0, 2 * MIB)],
                    vec![in_country("NL")],
                )
            } else {
                (vec![], vec![])
            };
            raised.extend(engine.observe(&snapshot(second, flows), &facts));
        }
        assert_eq!(
            phases(&raised),
            [
                (AlertKind::Foreign, Phase::Start),
                (AlertKind::Foreign, Phase::End)
            ]
        );
        // The end comes once three silent seconds (5, 6, 7) have passed.
        assert_eq!(raised[1].at, at(7));
    }

    #[test]
    fn reminders_come_every_repeat_while_it_lasts() {
        let config = AlertConfig {
            repeat: Duration::from_secs(3),
            ..home("DE")
        };
        let mut engine = AlertEngine::new(config);
        let mut raised = Vec::new();
        for second in 1..=10 {
            let alerts = engine.observe(
                &snapshot(second, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
                &[in_country("CN")],
            );
            raised.extend(alerts.into_iter().map(|a| (a.at, a.phase, a.since)));
        }
        assert_eq!(
            raised,
            [
                (at(1), Phase::Start, at(0)),
                (at(4), Phase::Reminder, at(0)),
                (at(7), Phase::Reminder, at(0)),
                (at(10), Phase::Reminder, at(0)),
            ]
        );
    }

    #[test]
    fn nothing_under_or_at_the_threshold() {
        let mut engine = AlertEngine::new(home("DE"));
        for second in 1..=3 {
            let alerts = engine.observe(
                &snapshot(second, vec![flow("203.0.113.7", 443, MIB / 2, MIB / 2)]),
                &[in_country("CN")],
            );
            assert!(alerts.is_empty(), "{alerts:?}");
        }
        assert_eq!(engine.active(), 0);
    }

    #[test]
    fn flows_of_one_remote_add_up_and_different_remotes_do_not() {
        let mut engine = AlertEngine::new(home("DE"));
        let flows = vec![
            flow("203.0.113.7", 443, 300_000, 300_000),
            flow("203.0.113.8", 443, 600_000, 0),
            flow("203.0.113.7", 8443, 600_000, 0),
        ];
        let facts = vec![in_country("CN"), in_country("CN"), in_country("CN")];
        let alerts = engine.observe(&snapshot(1, flows), &facts);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].bytes, 1_200_000);
        assert_eq!(alerts[0].flows, 2);
        // Named by its largest flow (the first of equal ones).
        assert_eq!(alerts[0].flow.as_ref().unwrap().remote_port, 443);
    }

    #[test]
    fn nothing_from_home_local_or_unknown_places() {
        let mut engine = AlertEngine::new(home("DE,AT"));
        let flows = vec![
            flow("198.51.100.1", 443, 5 * MIB, 0),
            flow("198.51.100.2", 443, 5 * MIB, 0),
            flow("192.168.1.9", 443, 5 * MIB, 0),
            flow("198.51.100.3", 443, 5 * MIB, 0),
        ];
        let facts = vec![
            in_country("DE"),
            in_country("AT"),
            business(Location::Local),
            business(Location::Unknown),
        ];
        for second in 1..=3 {
            assert!(
                engine
                    .observe(&snapshot(second, flows.clone()), &facts)
                    .is_empty()
            );
        }
    }

    #[test]
    fn nothing_foreign_without_a_declared_home() {
        let mut engine = AlertEngine::new(AlertConfig {
            clear: Duration::ZERO,
            ..AlertConfig::default()
        });
        let alerts = engine.observe(
            &snapshot(1, vec![flow("203.0.113.7", 443, 50 * MIB, 0)]),
            &[in_country("CN")],
        );
        assert!(alerts.is_empty());
    }

    #[test]
    fn a_suspicious_process_starts_once_and_ends_when_silent() {
        let mut engine = AlertEngine::new(AlertConfig {
            clear: Duration::ZERO,
            ..AlertConfig::default()
        });
        let owner = Owner::Process(miner());
        let cn = Location::Country(cc("CN"));
        let flows = vec![
            flow("203.0.113.7", 3333, 100, 900),
            flow("203.0.113.9", 443, 10, 10),
            flow("198.51.100.5", 443, 10, 10),
        ];
        let facts = vec![
            suspicious(
                owner.clone(),
                cn,
                vec![
                    Reason::ExeInTempDir { dir: "/tmp".into() },
                    Reason::MiningPort { port: 3333 },
                ],
            ),
            suspicious(
                owner.clone(),
                cn,
                vec![Reason::ExeInTempDir { dir: "/tmp".into() }],
            ),
            business(Location::Unknown),
        ];
        let alerts = engine.observe(&snapshot(1, flows.clone()), &facts);
        assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::Start)]);
        let start = &alerts[0];
        assert_eq!(start.process.as_ref().unwrap().pid, 4242);
        assert_eq!((start.bytes, start.flows), (1020, 2));
        assert_eq!(start.flow.as_ref().unwrap().remote_port, 3333);
        assert_eq!(start.verdict, Some(Verdict::Suspicious));
        assert_eq!(
            start.reasons,
            [
                "executable under /tmp",
                "remote port 3333 is a common mining-pool port"
            ]
        );

        assert!(engine.observe(&snapshot(2, flows), &facts).is_empty());
        let alerts = engine.observe(&snapshot(3, vec![]), &[]);
        assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::End)]);
        assert_eq!(alerts[0].process.as_ref().unwrap().comm, "xmrig");
        assert!(engine.observe(&snapshot(4, vec![]), &[]).is_empty());
    }

    #[test]
    fn suspicious_flows_without_a_process_are_keyed_by_remote_endpoint() {
        let mut engine = AlertEngine::new(AlertConfig {
            clear: Duration::ZERO,
            ..AlertConfig::default()
        });
        let pool = || {
            suspicious(
                Owner::NoLocalSocket,
                Location::Unknown,
                vec![Reason::MiningPort { port: 3333 }, Reason::NoLocalProcess],
            )
        };
        let flows = vec![
            flow("203.0.113.7", 3333, 10, 10),
            flow("203.0.113.7", 3333, 10, 10),
            flow("203.0.113.8", 3333, 10, 10),
        ];
        let alerts = engine.observe(&snapshot(1, flows), &[pool(), pool(), pool()]);
        assert_eq!(alerts.len(), 2);
        assert!(alerts.iter().all(|a| a.process.is_none()));
        assert_eq!(alerts[0].flows, 2);
        // Only one endpoint goes on.
        let alerts = engine.observe(
            &snapshot(2, vec![flow("203.0.113.8", 3333, 10, 10)]),
            &[pool()],
        );
        assert_eq!(phases(&alerts), [(AlertKind::Suspicious, Phase::End)]);
        assert_eq!(
            alerts[0].flow.as_ref().unwrap().remote_ip,
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn rate_in_bits_per_second_over_and_under() {
        let config = AlertConfig {
            rate: Some(RateLimit::BitsPerSecond(800_000_000)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        };
        let mut engine = AlertEngine::new(config);
        let second = Duration::from_secs(1);
        // 100 MB in one second is exactly 800 Mbit/s: not over.
        assert!(
            engine
                .observe(&link(1, second, 0, 100_000_000), &[])
                .is_empty()
        );
        let alerts = engine.observe(&link(2, second, 0, 100_000_001), &[]);
        assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::Start)]);
        assert_eq!(alerts[0].direction, Some(Direction::Tx));
        assert_eq!(alerts[0].rate_bps, Some(800_000_008));
        assert_eq!(alerts[0].limit_bps, Some(800_000_000));
        // The same bytes over two seconds are half the rate: under, so it ends.
        let alerts = engine.observe(&link(4, 2 * second, 150_000_000, 150_000_000), &[]);
        assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::End)]);
        assert_eq!(alerts[0].rate_bps, Some(600_000_000));
        // Both directions are watched, each under its own key.
        let alerts = engine.observe(&link(5, second, 200_000_000, 200_000_000), &[]);
        let directions: Vec<_> = alerts.iter().map(|a| a.direction).collect();
        assert_eq!(directions, [Some(Direction::Rx), Some(Direction::Tx)]);
        assert!(engine.take_warnings().is_empty());
    }

    #[test]
    fn rate_as_a_share_of_the_link() {
        let config = AlertConfig {
            rate: Some(RateLimit::PercentOfLink(90.0)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        };
        let mut engine = AlertEngine::new(config);
        engine.set_link_speed("eth0", Some(1_000_000_000));
        let second = Duration::from_secs(1);
        // 880 Mbit/s of a 1 Gbit/s link is under 90%.
        assert!(
            engine
                .observe(&link(1, second, 110_000_000, 0), &[])
                .is_empty()
        );
        let alerts = engine.observe(&link(2, second, 120_000_000, 0), &[]);
        assert_eq!(phases(&alerts), [(AlertKind::Rate, Phase::Start)]);
        let alert = &alerts[0];
        assert_eq!(alert.limit_bps, Some(900_000_000));
        assert_eq!(alert.link_bps, Some(1_000_000_000));
        assert_eq!(
            alert.to_string(),
            "ALERT start rate: eth0 rx 960 Mbit/s > 900 Mbit/s (90% of 1 Gbit/s link)"
        );
        assert!(engine.take_warnings().is_empty());
    }

    #[test]
    fn a_share_of_an_unknown_link_speed_does_not_apply_and_warns_once() {
        let config = AlertConfig {
            rate: Some(RateLimit::PercentOfLink(50.0)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        };
        let mut engine = AlertEngine::new(config);
        engine.set_link_speed("eth0", None);
        let second = Duration::from_secs(1);
        for n in 1..=3 {
            assert!(
                engine
                    .observe(&link(n, second, u64::MAX / 16, 0), &[])
                    .is_empty()
            );
        }
        let warnings = engine.take_warnings();
        assert_eq!(
            warnings,
            [AlertWarning::UnknownLinkSpeed {
                iface: Arc::from("eth0"),
                percent: 50.0
            }]
        );
        assert!(warnings[0].to_string().contains("--alert-rate 800M"));
        assert!(engine.take_warnings().is_empty());
    }

    #[test]
    fn a_zero_length_interval_changes_nothing() {
        let config = AlertConfig {
            rate: Some(RateLimit::BitsPerSecond(1)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        };
        let mut engine = AlertEngine::new(config);
        assert!(
            engine
                .observe(&link(1, Duration::ZERO, 10, 10), &[])
                .is_empty()
        );
        assert_eq!(engine.active(), 0);
    }

    #[test]
    fn alerts_read_as_one_line_and_log_as_one_record() {
        let mut engine = AlertEngine::new(home("DE"));
        let facts = suspicious(
            Owner::Process(miner()),
            Location::Country(cc("CN")),
            vec![Reason::MiningPort { port: 3333 }],
        );
        let alerts = engine.observe(
            &snapshot(1, vec![flow("203.0.113.7", 3333, 4 * MIB, MIB / 5)]),
            &[facts],
        );
        assert_eq!(
            phases(&alerts),
            [
                (AlertKind::Foreign, Phase::Start),
                (AlertKind::Suspicious, Phase::Start)
            ]
        );
        assert_eq!(
            alerts[0].to_string(),
            "ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, \
             process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"
        );
        assert_eq!(
            alerts[1].to_string(),
            "ALERT start suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> \
             203.0.113.7:3333 (CN), 4.2 MiB this interval: remote port 3333 is a common \
             mining-pool port"
        );

        let line: Value = serde_json::from_str(&alerts[0].to_json_line()).unwrap();
        assert_eq!(line["v"], 1);
        assert_eq!(line["type"], "alert");
        assert_eq!(line["ts"], "2027-01-15T08:00:01.000Z");
        assert_eq!(line["kind"], "foreign");
        assert_eq!(line["phase"], "start");
        assert_eq!(line["since"], "2027-01-15T08:00:00.000Z");
        assert_eq!(line["duration_s"], 1.0);
        assert_eq!(line["interval_s"], 1.0);
        assert_eq!(line["iface"], "eth0");
        assert_eq!(line["proto"], "tcp");
        assert_eq!(line["remote_ip"], "203.0.113.7");
        assert_eq!(line["remote_port"], 3333);
        assert_eq!(line["country"], "CN");
        assert_eq!(line["flows"], 1);
        assert_eq!(line["pid"], 4242);
        assert_eq!(line["exe"], "/tmp/.x/xmrig");
        assert_eq!(line["user"], "root");
        assert_eq!(line["verdict"], "suspicious");
        assert_eq!(line["bytes"], 4 * MIB + MIB / 5);
        assert_eq!(line["threshold_bytes"], MIB);
        assert_eq!(
            line["reasons"][0],
            "remote port 3333 is a common mining-pool port"
        );
        assert_eq!(line["message"], alerts[0].to_string());
        for absent in [
            "direction",
            "rate_bps",
            "limit_bps",
            "limit_percent",
            "link_bps",
        ] {
            assert!(line.get(absent).is_none(), "{absent} in {line}");
        }

        let alerts = engine.observe(&snapshot(2, vec![]), &[]);
        assert_eq!(
            alerts[0].to_string(),
            "ALERT end foreign: 203.0.113.7 (CN) 0 B this interval <= 1 MiB, after 2s, \
             process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"
        );
        assert_eq!(
            alerts[1].to_string(),
            "ALERT end suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> \
             203.0.113.7:3333 (CN), no suspicious traffic this interval, after 2s"
        );
    }

    #[test]
    fn rate_records_carry_their_limit() {
        let config = AlertConfig {
            rate: Some(RateLimit::PercentOfLink(90.0)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        };
        let mut engine = AlertEngine::new(config);
        engine.set_link_speed("eth0", Some(1_000_000_000));
        let alerts = engine.observe(&link(1, Duration::from_secs(1), 0, 125_000_000), &[]);
        let line: Value = serde_json::from_str(&alerts[0].to_json_line()).unwrap();
        assert_eq!(line["kind"], "rate");
        assert_eq!(line["direction"], "tx");
        assert_eq!(line["rate_bps"], 1_000_000_000u64);
        assert_eq!(line["limit_bps"], 900_000_000u64);
        assert_eq!(line["limit_percent"], 90.0);
        assert_eq!(line["link_bps"], 1_000_000_000u64);
        for absent in ["remote_ip", "flows", "pid", "reasons", "threshold_bytes"] {
            assert!(line.get(absent).is_none(), "{absent} in {line}");
        }
    }

    #[test]
    fn byte_counts_parse_with_decimal_and_binary_units() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", MIB),
            ("500K", 500_000),
            ("500 kb", 500_000),
            ("10MB", 10_000_000),
            ("1MiB", MIB),
            ("1mi", MIB),
            ("2GiB", 2 << 30),
            ("1.5 GiB", 3 << 29),
            ("1T", 1_000_000_000_000),
            ("64B", 64),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "-1",
            "1 XB",
            "1e6",
            "1.2.3",
            "99999999999999999999",
            "20000000TiB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        let message = parse_bytes("lots").unwrap_err().to_string();
        assert!(message.contains("500K"), "{message}");
    }

    #[test]
    fn rates_parse_as_bits_per_second_or_a_share_of_the_link() {
        for (text, bps) in [
            ("1000000", 1_000_000),
            ("800M", 800_000_000),
            ("800m", 800_000_000),
            ("1G", 1_000_000_000),
            ("1.5Gbit/s", 1_500_000_000),
            ("100kbps", 100_000),
            ("10 Mb", 10_000_000),
        ] {
            assert_eq!(text.parse(), Ok(RateLimit::BitsPerSecond(bps)), "{text}");
        }
        assert_eq!("90%".parse(), Ok(RateLimit::PercentOfLink(90.0)));
        assert_eq!("92.5 %".parse(), Ok(RateLimit::PercentOfLink(92.5)));
        assert_eq!("100%".parse(), Ok(RateLimit::PercentOfLink(100.0)));
        for bad in ["", "fast", "100MB", "1MiB", "10Bps", "-5M", "1e9"] {
            assert!(
                matches!(bad.parse::<RateLimit>(), Err(AlertParseError::Rate(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "0".parse::<RateLimit>(),
            Err(AlertParseError::ZeroRate(_))
        ));
        for bad in ["0%", "101%", "-3%"] {
            assert!(
                matches!(bad.parse::<RateLimit>(), Err(AlertParseError::Percent(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "x%".parse::<RateLimit>(),
            Err(AlertParseError::Rate(_))
        ));
        assert_eq!(
            RateLimit::BitsPerSecond(800_000_000).to_string(),
            "800 Mbit/s"
        );
    }

    #[test]
    fn link_speed_is_read_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let write = |iface: &str, text: &str| {
            let dir = root.path().join("class/net").join(iface);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("speed"), text).unwrap();
        };
        write("eth0", "1000\n");
        write("veth0", "-1\n");
        write("odd0", "4294967295\n");
        write("bad0", "fast\n");
        assert_eq!(link_speed_bps(root.path(), "eth0"), Some(1_000_000_000));
        for unknown in ["veth0", "odd0", "bad0", "missing0", "", "..", "../eth0"] {
            assert_eq!(link_speed_bps(root.path(), unknown), None, "{unknown}");
        }
    }

    #[test]
    fn human_figures_are_short() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(MIB), "1 MiB");
        assert_eq!(bits_text(950_000_000), "950 Mbit/s");
        assert_eq!(bits_text(1_234_000_000), "1.2 Gbit/s");
        assert_eq!(duration_text(Duration::from_secs(42)), "42s");
        assert_eq!(duration_text(Duration::from_secs(303)), "5m03s");
        assert_eq!(duration_text(Duration::from_secs(7500)), "2h05m");
    }

    // --alert-exec: these run /bin/sh.

    fn sample_alert() -> Alert {
        let mut engine = AlertEngine::new(home("DE"));
        engine
            .observe(
                &snapshot(1, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
                &[in_country("CN")],
            )
            .remove(0)
    }

    fn quoted(path: &Path) -> String {
        format!("'{}'", path.display())
    }

    #[test]
    fn exec_passes_the_alert_as_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("alert.json");
        let text = dir.path().join("alert.txt");
        let mut exec = AlertExec::new(format!(
            "cat > {}; printf '%s' \"$FLOWMETER_ALERT\" > {}",
            quoted(&json),
            quoted(&text)
        ));
        let alert = sample_alert();
        exec.run(&alert);
        assert!(exec.wait_idle(Duration::from_secs(30)));
        assert!(exec.take_reports().is_empty());

        let written = std::fs::read_to_string(&json).unwrap();
        assert!(written.ends_with('\n'));
        let line: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(line["type"], "alert");
        assert_eq!(line["kind"], "foreign");
        assert_eq!(line["remote_ip"], "203.0.113.7");
        assert_eq!(std::fs::read_to_string(&text).unwrap(), alert.to_string());
    }

    #[test]
    fn exec_kills_a_command_past_its_time_limit_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut exec = AlertExec::new(format!("sleep 60 & echo $! > {}; wait", quoted(&pid_file)))
            .with_timeout(Duration::from_millis(300));
        exec.run(&sample_alert());
        assert!(exec.wait_idle(Duration::from_secs(30)));
        assert_eq!(
            exec.take_reports(),
            [ExecReport::TimedOut {
                limit: Duration::from_millis(300)
            }]
        );
        // The shell's child went with it (gone, or a zombie waiting for its reaper).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = Path::new("/proc").join(pid.trim()).join("stat");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let alive = std::fs::read_to_string(&stat).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            if !alive {
                break;
            }
            assert!(Instant::now() < deadline, "sleep {} still runs", pid.trim());
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn exec_drops_alerts_beyond_its_limit_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("go");
        let mut exec = AlertExec::new(format!(
            "while [ ! -e {} ]; do sleep 0.02; done",
            quoted(&flag)
        ))
        .with_max_running(1);
        let alert = sample_alert();
        exec.run(&alert);
        exec.run(&alert);
        exec.run(&alert);
        assert_eq!(exec.running(), 1);
        std::fs::write(&flag, "").unwrap();
        assert!(exec.wait_idle(Duration::from_secs(30)));
        assert_eq!(
            exec.take_reports(),
            [ExecReport::Dropped {
                count: 2,
                max_running: 1
            }]
        );
        assert!(exec.take_reports().is_empty());
    }

    #[test]
    fn exec_reports_the_first_failure_of_a_row_and_the_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let fail = dir.path().join("fail");
        std::fs::write(&fail, "").unwrap();
        let mut exec = AlertExec::new(format!("[ ! -e {} ] || exit 3", quoted(&fail)));
        let alert = sample_alert();
        for _ in 0..3 {
            exec.run(&alert);
            assert!(exec.wait_idle(Duration::from_secs(30)));
        }
        let reports = exec.take_reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        match &reports[0] {
            ExecReport::Exited { status } => assert_eq!(status.code(), Some(3)),
            other => panic!("expected Exited, got {other:?}"),
        }
        assert!(
            reports[0]
                .to_string()
                .contains("later failures are counted")
        );

        std::fs::remove_file(&fail).unwrap();
        exec.run(&alert);
        assert!(exec.wait_idle(Duration::from_secs(30)));
        assert_eq!(
            exec.take_reports(),
            [ExecReport::Recovered { unreported: 2 }]
        );
    }

    #[test]
    fn alert_lines_are_pinned_byte_for_byte() {
        let mut engine = AlertEngine::new(home("DE"));
        let facts = suspicious(
            Owner::Process(miner()),
            Location::Country(cc("CN")),
            vec![Reason::MiningPort { port: 3333 }],
        );
        let alerts = engine.observe(
            &snapshot(1, vec![flow("203.0.113.7", 3333, 4 * MIB, MIB / 5)]),
            &[facts],
        );
        let mut rates = AlertEngine::new(AlertConfig {
            rate: Some(RateLimit::PercentOfLink(90.0)),
            clear: Duration::ZERO,
            ..AlertConfig::default()
        });
        rates.set_link_speed("eth0", Some(1_000_000_000));
        let rate = rates.observe(&link(1, Duration::from_secs(1), 0, 125_000_000), &[]);
        let lines = [
            alerts[0].to_json_line(),
            alerts[1].to_json_line(),
            rate[0].to_json_line(),
        ];
        assert_eq!(
            lines,
            [
                r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"foreign","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","proto":"tcp","local_ip":"10.0.0.1","local_port":40000,"remote_ip":"203.0.113.7","remote_port":3333,"country":"CN","flows":1,"pid":4242,"comm":"xmrig","exe":"/tmp/.x/xmrig","user":"root","verdict":"suspicious","bytes":4404019,"threshold_bytes":1048576,"reasons":["remote port 3333 is a common mining-pool port"],"message":"ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, process 4242 xmrig (root) /tmp/.x/xmrig, suspicious"}"#,
                r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"suspicious","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","proto":"tcp","local_ip":"10.0.0.1","local_port":40000,"remote_ip":"203.0.113.7","remote_port":3333,"country":"CN","flows":1,"pid":4242,"comm":"xmrig","exe":"/tmp/.x/xmrig","user":"root","verdict":"suspicious","bytes":4404019,"reasons":["remote port 3333 is a common mining-pool port"],"message":"ALERT start suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> 203.0.113.7:3333 (CN), 4.2 MiB this interval: remote port 3333 is a common mining-pool port"}"#,
                r#"{"v":1,"type":"alert","ts":"2027-01-15T08:00:01.000Z","kind":"rate","phase":"start","since":"2027-01-15T08:00:00.000Z","duration_s":1.0,"interval_s":1.0,"iface":"eth0","direction":"tx","bytes":125000000,"rate_bps":1000000000,"limit_bps":900000000,"limit_percent":90.0,"link_bps":1000000000,"message":"ALERT start rate: eth0 tx 1 Gbit/s > 900 Mbit/s (90% of 1 Gbit/s link)"}"#,
            ]
        );
    }
}
