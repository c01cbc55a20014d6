//! The alert as a value: what it is about ([`AlertKind`], its [`Phase`], the subject and
//! the interval's figures), its one line of text for stderr ([`fmt::Display`]) and its
//! record for the log ([`Alert::record`], [`Alert::to_json_line`], the wire format being
//! `schema::AlertRecord`). [`AlertEngine`](super::AlertEngine) raises them; the caller
//! prints them, logs them and hands them to [`AlertExec`](super::AlertExec).
//!
//! The text, one line without the caller's `flowmeter: ` prefix:
//!
//! ```text
//! ALERT start foreign: 203.0.113.7 (CN) 4.2 MiB this interval > 1 MiB, process 4242 xmrig (root) /tmp/.x/xmrig, suspicious
//! ALERT reminder suspicious: process 4242 xmrig (root) /tmp/.x/xmrig -> 203.0.113.7:3333 (CN), 1.2 KiB this interval, for 5m00s: executable under /tmp
//! ALERT end rate: eth0 tx 12.3 Mbit/s <= 900 Mbit/s (90% of 1 Gbit/s link), after 2m10s
//! ALERT start flood: 150k new flows/s > 5000/s on eth0, 150k pkt/s, 76.8 Mbit/s; from 198.51.100.0/24 (100k pkt/s, 51.2 Mbit/s), 203.0.113.0/24 (50.0k pkt/s, 25.6 Mbit/s); to udp/53 (150k pkt/s, 76.8 Mbit/s); 212 per-flow alerts folded in
//! ALERT start suspicious: no local process -> 203.0.113.9:3333, 64 B this interval: remote port 3333 is a common mining-pool port; 490 more suspicious alerts folded
//! ```
//!
//! `folded` (and the text's last clause) counts the conditions folded into this alert
//! instead of raised one by one: by the per-interval cap for foreign and suspicious
//! alerts, into the flood for a flood alert.

use std::{
    fmt,
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{RateLimit, flood::FloodFigures};
use crate::{
    datapath::FlowId,
    enrich::{geo::CountryCode, sockets::ProcessInfo, verdict::Verdict},
    sinks::schema::{
        self, ALERT_TYPE, AlertRecord, FloodPortRecord, FloodSourceRecord, FlowKey, Line,
        ProcessFields, Proto,
    },
    units,
};

/// Which condition an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    Foreign,
    Suspicious,
    Rate,
    Flood,
}

impl AlertKind {
    /// `foreign`, `suspicious`, `rate` or `flood`.
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::Foreign => "foreign",
            AlertKind::Suspicious => "suspicious",
            AlertKind::Rate => "rate",
            AlertKind::Flood => "flood",
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
    /// The beginning of the first interval in which the condition held, as the wall
    /// clock said then: with `kind` and the subject, it names the episode.
    pub since: SystemTime,
    /// The end of the interval this alert is about (the snapshot's `at`).
    pub at: SystemTime,
    /// Real time since `since`: the lengths of the episode's intervals summed, so a
    /// step of the wall clock neither stretches nor shrinks it (`at - since` then
    /// differs from it by the step).
    pub duration: Duration,
    /// That interval's real length.
    pub interval: Duration,
    /// The interface: of the rate, or of `flow`.
    pub iface: Option<Arc<str>>,
    /// Rate: which direction.
    pub direction: Option<Direction>,
    /// Foreign, suspicious: the flow the alert names. Of the owners of its flows (each
    /// process, and the flows without one), the one with the worst verdict, a process
    /// before flows without one on equal verdicts, then the most bytes; and of that
    /// owner's flows, the worst verdict, then the most bytes.
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
    /// Foreign, suspicious: the evidence of the named owner's flows (those of `process`,
    /// or the flows without one), each sentence once: never another owner's.
    pub reasons: Vec<String>,
    /// Conditions folded into this alert instead of raised one by one (module docs).
    pub folded: usize,
    /// Flood: the new-flow rate, the threshold and what carries it.
    pub flood: Option<Box<FloodFigures>>,
    /// Start: the flight recording that holds it (`log` sets it from its recorder).
    pub recording: Option<Arc<Path>>,
}

impl Alert {
    /// A start alert at `at`, for an interval of `interval`, with no subject or figures
    /// yet: the engine fills in the rest (and tests of what reads alerts, too).
    pub(crate) fn blank(kind: AlertKind, at: SystemTime, interval: Duration) -> Self {
        Alert {
            kind,
            phase: Phase::Start,
            since: at,
            at,
            interval,
            duration: Duration::ZERO,
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
            folded: 0,
            flood: None,
            recording: None,
        }
    }

    /// The record for the log; wrap it in `schema::Line` with `ALERT_TYPE` and
    /// `schema::timestamp(alert.at)`.
    pub fn record(&self) -> AlertRecord<'_> {
        AlertRecord {
            kind: self.kind.label(),
            phase: self.phase.label(),
            since: schema::timestamp(self.since),
            duration_s: self.duration.as_secs_f64(),
            interval_s: self.interval.as_secs_f64(),
            iface: self.iface.as_deref(),
            direction: self.direction.map(Direction::label),
            flow: self.flow.as_ref().map(FlowKey::new),
            country: self.country.as_ref().map(CountryCode::as_str),
            flows: (self.kind != AlertKind::Rate).then_some(self.flows),
            process: ProcessFields::new(self.process.as_deref()),
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
            new_flows_per_s: self.flood.as_ref().map(|f| f.new_flows_per_s),
            threshold_flows_per_s: self.flood.as_ref().map(|f| f.threshold_per_s),
            packets: self.flood.as_ref().map(|f| f.packets),
            stray_packets: self.flood.as_ref().map(|f| f.stray_packets),
            sources: self.flood.as_ref().map(|f| {
                f.sources
                    .iter()
                    .map(|c| FloodSourceRecord {
                        prefix: c.key.to_string(),
                        packets_per_s: c.packets_per_s,
                        bps: c.bps,
                    })
                    .collect()
            }),
            source_prefixes: self.flood.as_ref().map(|f| f.source_prefixes),
            ports: self.flood.as_ref().map(|f| {
                f.ports
                    .iter()
                    .map(|c| FloodPortRecord {
                        proto: Proto::of(c.key.proto),
                        port: c.key.port,
                        packets_per_s: c.packets_per_s,
                        bps: c.bps,
                    })
                    .collect()
            }),
            folded: (self.folded > 0).then_some(self.folded),
            recording: self
                .recording
                .as_ref()
                .map(|path| path.display().to_string()),
            message: self.to_string(),
        }
    }

    /// The whole log line (envelope and record, no newline) in schema `version` (the
    /// log's): what `--alert-exec` reads.
    pub fn to_json_line(&self, version: u32) -> String {
        let ts = schema::timestamp(self.at);
        let line = Line {
            v: version,
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
            Phase::Reminder => write!(f, ", for {}", units::clock(self.duration)),
            Phase::End => write!(f, ", after {}", units::clock(self.duration)),
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

    /// "150k new flows/s > 5000/s on eth0, 150k pkt/s, 76.8 Mbit/s; from ...; to ...".
    fn write_flood(&self, f: &mut fmt::Formatter<'_>, flood: &FloodFigures) -> fmt::Result {
        let compare = if self.phase == Phase::End { "<=" } else { ">" };
        write!(
            f,
            "{} new flows/s {compare} {}/s",
            units::compact(flood.new_flows_per_s as f64, ""),
            flood.threshold_per_s
        )?;
        if let Some(iface) = &self.iface {
            write!(f, " on {iface}")?;
        }
        if self.phase == Phase::End {
            self.write_duration(f)?;
            // The subject as last seen, without its old rates.
            return write!(f, "{}", flood.carriers(false));
        }
        write!(
            f,
            ", {}, {}",
            units::compact(flood.packets as f64 / self.interval.as_secs_f64(), " pkt/s"),
            units::bits_per_second(self.rate_bps.unwrap_or_default())
        )?;
        self.write_duration(f)?;
        write!(f, "{}", flood.carriers(true))
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
                write!(f, " {} this interval", units::bytes(self.bytes))?;
                if let Some(threshold) = self.threshold_bytes {
                    write!(f, " {compare} {}", units::bytes(threshold))?;
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
                    write!(f, ", {} this interval", units::bytes(self.bytes))?;
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
                    Some(rate) => f.write_str(&units::bits_per_second(rate))?,
                    None => f.write_str("rate unknown")?,
                }
                if let Some(limit) = self.limit_bps {
                    write!(f, " {compare} {}", units::bits_per_second(limit))?;
                }
                if let (Some(RateLimit::PercentOfLink(percent)), Some(link)) =
                    (self.limit, self.link_bps)
                {
                    write!(f, " ({percent}% of {} link)", units::bits_per_second(link))?;
                }
                self.write_duration(f)?;
            }
            AlertKind::Flood => {
                if let Some(flood) = &self.flood {
                    self.write_flood(f, flood)?;
                }
            }
        }
        match (self.folded, self.kind) {
            (0, _) => {}
            (n, AlertKind::Flood) => write!(f, "; {n} per-flow alerts folded in")?,
            (n, kind) => write!(f, "; {n} more {} alerts folded", kind.label())?,
        }
        Ok(())
    }
}
