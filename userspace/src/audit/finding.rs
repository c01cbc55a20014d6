//! What an audit reports: findings, each with a severity, the evidence that shows it and
//! what to do about it; and the collector that checks add them to.

use std::{fmt, net::IpAddr, path::PathBuf};

use super::allow::AllowEntry;
use crate::proc::ProcessInfo;

/// How much a finding matters. Ordered: the greatest is the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing to do unless it surprises you.
    Info,
    /// Hardening that the runbook recommends.
    Low,
    /// Weak hardening an attacker uses, or a sign that needs a look.
    Medium,
    /// A sign of compromise, or a door left open.
    High,
    /// Almost certainly planted.
    Critical,
}

impl Severity {
    /// Worst first, as reports list them.
    pub const WORST_FIRST: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// "info", "low", "medium", "high" or "critical".
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.label())
    }
}

/// One thing the audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check that found it: stable, kebab-case (`rc-local-download-exec`).
    pub id: String,
    pub severity: Severity,
    /// One sentence: what was found.
    pub title: String,
    /// Where: `FILE:LINE: text` (paths as the audited host sees them), a process, or a
    /// socket.
    pub evidence: String,
    /// What to do next, as the runbook says.
    pub advice: &'static str,
    /// The process the finding is about, if any.
    pub process: Option<ProcessRef>,
    /// What that process sent and received while `--watch` metered the traffic.
    pub traffic: Option<Traffic>,
    /// The allow-list entry that names this finding's process (`memfd:runc`): the
    /// finding is reported as allowed and counts toward no severity or exit status.
    pub allowed: Option<String>,
}

impl Finding {
    pub fn new(
        id: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
        evidence: impl Into<String>,
        advice: &'static str,
    ) -> Self {
        Self {
            id: id.into(),
            severity,
            title: title.into(),
            evidence: evidence.into(),
            advice,
            process: None,
            traffic: None,
            allowed: None,
        }
    }

    /// The same finding, about `process`.
    pub fn about(mut self, process: &ProcessInfo) -> Self {
        self.process = Some(ProcessRef::of(process));
        self
    }

    /// The same finding, allowed by `entry` if there is one.
    pub fn allowed_by(mut self, entry: Option<&AllowEntry>) -> Self {
        self.allowed = entry.map(ToString::to_string);
        self
    }

    /// Counts toward the severities and the exit status: not allowed.
    pub fn counts(&self) -> bool {
        self.allowed.is_none()
    }
}

/// A process, as a finding names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRef {
    pub pid: u32,
    pub comm: String,
    /// `None` if it could not be read (not root, or a kernel thread).
    pub exe: Option<PathBuf>,
}

impl ProcessRef {
    pub fn of(process: &ProcessInfo) -> Self {
        Self {
            pid: process.pid,
            comm: process.comm.clone(),
            exe: process.exe.clone(),
        }
    }
}

impl fmt::Display for ProcessRef {
    /// `comm (pid 812, /usr/bin/redis-server)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {}", self.comm, self.pid)?;
        if let Some(exe) = &self.exe {
            write!(f, ", {}", exe.display())?;
        }
        f.write_str(")")
    }
}

/// A process's traffic while the audit watched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Remote hosts, the busiest first (at most [`Traffic::MAX_HOSTS`]).
    pub remote_hosts: Vec<IpAddr>,
    /// How many distinct remote hosts there were in all.
    pub remote_host_count: usize,
    /// Countries of the remote hosts (ISO codes, sorted); private addresses have none.
    pub countries: Vec<String>,
    /// Bytes sent and received, whole frames.
    pub bytes: u64,
}

impl Traffic {
    /// Remote hosts kept per finding; the count says how many there were.
    pub const MAX_HOSTS: usize = 100;
}

/// What the checks found so far: findings, and notes on what could not be checked.
#[derive(Debug, Default)]
pub struct Findings {
    pub found: Vec<Finding>,
    /// Checks skipped or narrowed, in a sentence each.
    pub notes: Vec<String>,
}

impl Findings {
    /// Adds `finding`, unless the same one is there already.
    pub fn add(&mut self, finding: Finding) {
        if !self.found.contains(&finding) {
            self.found.push(finding);
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}
