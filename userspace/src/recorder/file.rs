//! The recording format: JSON lines. The first is the `header` (what a second holds, the
//! interval, the interfaces, the alerts that opened the recording); then one `second`
//! line per interval, oldest first, and an `alert` line for each alert that started
//! while the recording was open (and extended it). Versioned by `format` and `version`;
//! `jq 'select(.type == "second")' FILE` reads it as the log is read.
//!
//! [`read`] takes a file back: the seconds up to any damage (a truncated or corrupt
//! line), and what the damage was.

use std::{fs, path::Path};

use serde::{Deserialize, Serialize};

use super::second::{PARTS_PER_REMOTE, Second, TOP_PROCESSES, TOP_REMOTES};
use crate::sinks::{alerts::Alert, schema};

/// `format` of a recording's header.
pub const FORMAT: &str = "flowmeter-recording";
/// The version this flowmeter writes and reads.
pub const VERSION: u32 = 1;

/// One line of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Header(Header),
    Second(Second),
    Alert(AlertMark),
}

/// The first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// What each second holds, in words.
    pub holds: String,
    pub interval_s: f64,
    /// `--record-window`: the seconds before the first alert that the file begins with.
    pub window_s: f64,
    /// `--record-after`: seconds written after the last alert started.
    pub after_s: f64,
    pub interfaces: Vec<String>,
    pub top_remotes: usize,
    pub top_processes: usize,
    pub parts_per_remote: usize,
    /// The alert(s) that opened it; later ones follow as `alert` lines.
    pub alerts: Vec<AlertMark>,
    /// The service's view (`log --control-socket`): the log's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The service's view: how many seconds (the ring's) follow the header at once;
    /// new ones follow as they are recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<usize>,
}

impl Header {
    pub fn new(interval_s: f64, window_s: f64, after_s: f64, interfaces: Vec<String>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            holds: format!(
                "one line per interval: each interface's exact totals, the {TOP_REMOTES} \
                 remote hosts with the most bytes (each with up to {PARTS_PER_REMOTE} \
                 owners: process, verdict, reasons) and the {TOP_PROCESSES} processes with \
                 the most bytes"
            ),
            interval_s,
            window_s,
            after_s,
            interfaces,
            top_remotes: TOP_REMOTES,
            top_processes: TOP_PROCESSES,
            parts_per_remote: PARTS_PER_REMOTE,
            alerts: Vec::new(),
            pid: None,
            backlog: None,
        }
    }
}

/// An alert that started while recording: its kind, when (the second it started in ends
/// at `at_ms`) and its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMark {
    pub kind: String,
    pub ts: String,
    pub at_ms: u64,
    pub message: String,
}

impl AlertMark {
    pub fn of(alert: &Alert) -> Self {
        Self {
            kind: alert.kind.label().to_owned(),
            ts: schema::timestamp(alert.at),
            at_ms: alert
                .at
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
            message: alert.to_string(),
        }
    }
}

/// A recording read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub header: Header,
    /// The header's alerts, then those of `alert` lines, in order.
    pub alerts: Vec<AlertMark>,
    /// Oldest first; never empty.
    pub seconds: Vec<Second>,
    /// Where the file is damaged, if it is: the seconds before it are all there is.
    pub damage: Option<String>,
}

/// Reads a recording: an error (one line) if it is none, has no seconds, or cannot be
/// read; else its seconds up to the first damaged line.
pub fn read(path: &Path) -> Result<Recording, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first line's header, if it is one of a version this flowmeter reads.
pub fn header_of(first: &[u8]) -> Result<Header, String> {
    let header = match serde_json::from_slice::<Entry>(first) {
        Ok(Entry::Header(header)) if header.format == FORMAT => header,
        _ => {
            return Err(format!(
                "not a flowmeter recording (its first line is no \"{FORMAT}\" header)"
            ));
        }
    };
    if header.version != VERSION {
        return Err(format!(
            "a recording of version {}; this flowmeter reads version {VERSION}",
            header.version
        ));
    }
    Ok(header)
}

/// [`read`] of the file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Recording, String> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let header = header_of(lines.next().unwrap_or_default())?;
    let mut recording = Recording {
        alerts: header.alerts.clone(),
        header,
        seconds: Vec::new(),
        damage: None,
    };
    for (index, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(Entry::Second(second)) => recording.seconds.push(second),
            Ok(Entry::Alert(alert)) => recording.alerts.push(alert),
            Ok(Entry::Header(_)) | Err(_) => {
                let seconds = recording.seconds.len();
                recording.damage = Some(format!(
                    "damaged at line {}: only its first {seconds} seconds can be read",
                    index + 2
                ));
                break;
            }
        }
    }
    if recording.seconds.is_empty() {
        return Err(match recording.damage {
            Some(damage) => format!("no second can be read ({damage})"),
            None => "the recording holds no second".to_owned(),
        });
    }
    Ok(recording)
}
