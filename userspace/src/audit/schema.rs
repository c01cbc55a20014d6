//! The report for scripts and fleets: one JSON object, schema version 1, documented in
//! `docs/audit.md`. This module owns the wire format; the internal types may change
//! without changing it.

use serde::Serialize;

use super::{
    finding::{Finding, Severity},
    report::Report,
};

/// The schema's version, `"v"`.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Wire<'a> {
    v: u32,
    root: String,
    live: bool,
    /// Seconds of traffic metered, or null without `--watch`.
    watched_s: Option<f64>,
    findings: Vec<WireFinding<'a>>,
    notes: &'a [String],
    summary: Summary,
}

#[derive(Serialize)]
struct WireFinding<'a> {
    id: &'a str,
    severity: &'static str,
    title: &'a str,
    evidence: &'a str,
    advice: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<WireProcess<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<WireTraffic>,
    /// The allow-list entry that named the process; absent when not allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_by: Option<&'a str>,
}

#[derive(Serialize)]
struct WireProcess<'a> {
    pid: u32,
    comm: &'a str,
    exe: Option<String>,
}

#[derive(Serialize)]
struct WireTraffic {
    remote_hosts: Vec<String>,
    remote_host_count: usize,
    countries: Vec<String>,
    bytes: u64,
}

#[derive(Serialize)]
struct Summary {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
    /// Findings the allow-list named, in none of the counts above.
    allowed: usize,
    total: usize,
    worst: Option<&'static str>,
    exit_status: u8,
    text: String,
}

/// The report as one line of JSON (no trailing newline).
pub fn to_json(report: &Report) -> String {
    let wire = Wire {
        v: VERSION,
        root: report.root.display().to_string(),
        live: report.live,
        watched_s: report.watched.map(|d| d.as_secs_f64()),
        findings: report.findings.iter().map(finding).collect(),
        notes: &report.notes,
        summary: Summary {
            critical: report.count(Severity::Critical),
            high: report.count(Severity::High),
            medium: report.count(Severity::Medium),
            low: report.count(Severity::Low),
            info: report.count(Severity::Info),
            allowed: report.allowed(),
            total: report.findings.len(),
            worst: report.worst().map(Severity::label),
            exit_status: report.exit_status(),
            text: report.summary(),
        },
    };
    serde_json::to_string(&wire).expect("the report serializes")
}

fn finding(finding: &Finding) -> WireFinding<'_> {
    WireFinding {
        id: &finding.id,
        severity: finding.severity.label(),
        title: &finding.title,
        evidence: &finding.evidence,
        advice: finding.advice,
        process: finding.process.as_ref().map(|p| WireProcess {
            pid: p.pid,
            comm: &p.comm,
            exe: p.exe.as_ref().map(|exe| exe.display().to_string()),
        }),
        traffic: finding.traffic.as_ref().map(|t| WireTraffic {
            remote_hosts: t.remote_hosts.iter().map(ToString::to_string).collect(),
            remote_host_count: t.remote_host_count,
            countries: t.countries.clone(),
            bytes: t.bytes,
        }),
        allowed_by: finding.allowed.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audit::finding::{Findings, ProcessRef, Traffic};

    #[test]
    fn the_wire_format_is_pinned() {
        let mut found = Findings::default();
        let mut exposed = Finding::new(
            "socket-database-exposed",
            Severity::High,
            "Redis listens on all addresses",
            "tcp 0.0.0.0:6379 listening, held by redis-server (pid 812)",
            "Bind it to 127.0.0.1.",
        );
        exposed.process = Some(ProcessRef {
            pid: 812,
            comm: "redis-server".into(),
            exe: None,
        });
        exposed.traffic = Some(Traffic {
            remote_hosts: vec!["203.0.113.5".parse().unwrap()],
            remote_host_count: 1,
            countries: vec!["NL".into()],
            bytes: 1500,
        });
        found.add(exposed);
        found.add(Finding::new("sshd-port-22", Severity::Low, "t", "e", "a"));
        let mut allowed = Finding::new("process-exe-deleted", Severity::High, "t", "e", "a");
        allowed.allowed = Some("memfd:runc".into());
        found.add(allowed);
        found.note("n");
        let mut report = Report::new(Path::new("/"), true, found);
        report.watched = Some(std::time::Duration::from_secs(2));
        let json: serde_json::Value = serde_json::from_str(&to_json(&report)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1,
                "root": "/",
                "live": true,
                "watched_s": 2.0,
                "findings": [
                    {
                        "id": "socket-database-exposed",
                        "severity": "high",
                        "title": "Redis listens on all addresses",
                        "evidence": "tcp 0.0.0.0:6379 listening, held by redis-server (pid 812)",
                        "advice": "Bind it to 127.0.0.1.",
                        "process": {"pid": 812, "comm": "redis-server", "exe": null},
                        "traffic": {
                            "remote_hosts": ["203.0.113.5"],
                            "remote_host_count": 1,
                            "countries": ["NL"],
                            "bytes": 1500
                        }
                    },
                    {"id": "sshd-port-22", "severity": "low", "title": "t", "evidence": "e", "advice": "a"},
                    {
                        "id": "process-exe-deleted", "severity": "high", "title": "t",
                        "evidence": "e", "advice": "a", "allowed_by": "memfd:runc"
                    }
                ],
                "notes": ["n"],
                "summary": {
                    "critical": 0, "high": 1, "medium": 0, "low": 1, "info": 0,
                    "allowed": 1, "total": 3,
                    "worst": "high", "exit_status": 3,
                    "text": "0 critical, 1 high, 0 medium, 1 low, 0 info, 1 allowed: needs action (exit 3)"
                }
            })
        );
    }
}
