//! The audit's result: the findings in the order they are shown, notes on what was not
//! checked, the summary and the exit status. Allowed findings (the allow-list named their
//! process) are listed last and count toward no severity, summary verdict or exit status.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::finding::{Finding, Findings, Severity};

/// Exit status: nothing above low was found.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: something of medium severity or worse was found.
pub const EXIT_FOUND: u8 = 3;

#[derive(Clone, Debug)]
pub struct Report {
    /// `--root` as given.
    pub root: PathBuf,
    /// The running system was audited (processes and sockets too).
    pub live: bool,
    /// How long traffic was metered (`--watch`).
    pub watched: Option<Duration>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(root: &Path, live: bool, findings: Findings) -> Self {
        let mut report = Self {
            root: root.to_owned(),
            live,
            watched: None,
            findings: findings.found,
            notes: findings.notes,
        };
        report.sort();
        report
    }

    /// Allowed findings last; findings whose process carries traffic first (most bytes
    /// first), then worst first; ties by id and evidence, so the order is the same every
    /// run.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            let bytes = |f: &Finding| f.traffic.as_ref().map(|t| t.bytes);
            b.counts()
                .cmp(&a.counts())
                .then(bytes(b).cmp(&bytes(a)))
                .then(b.severity.cmp(&a.severity))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.evidence.cmp(&b.evidence))
        });
    }

    /// Findings of `severity`, the allowed ones left out.
    pub fn count(&self, severity: Severity) -> usize {
        self.counted().filter(|f| f.severity == severity).count()
    }

    /// Findings the allow-list named.
    pub fn allowed(&self) -> usize {
        self.findings.iter().filter(|f| !f.counts()).count()
    }

    /// The worst severity of the findings not allowed.
    pub fn worst(&self) -> Option<Severity> {
        self.counted().map(|f| f.severity).max()
    }

    fn counted(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.counts())
    }

    /// [`EXIT_FOUND`] if anything is medium or worse, else [`EXIT_CLEAN`].
    pub fn exit_status(&self) -> u8 {
        if self.worst() >= Some(Severity::Medium) {
            EXIT_FOUND
        } else {
            EXIT_CLEAN
        }
    }

    /// One line: `2 critical, 1 high, 3 medium, 1 low, 2 info: needs action (exit 3)`,
    /// with `, 1 allowed` after `info` when the allow-list named some.
    pub fn summary(&self) -> String {
        let mut counts: Vec<String> = Severity::WORST_FIRST
            .iter()
            .map(|&severity| format!("{} {severity}", self.count(severity)))
            .collect();
        if self.allowed() > 0 {
            counts.push(format!("{} allowed", self.allowed()));
        }
        let verdict = if self.exit_status() == EXIT_FOUND {
            "needs action"
        } else {
            "nothing above low"
        };
        format!(
            "{}: {verdict} (exit {})",
            counts.join(", "),
            self.exit_status()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::finding::Traffic;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding::new(id, severity, "t", "e", "a")
    }

    #[test]
    fn talking_first_then_worst_first_and_the_exit_status() {
        let mut found = Findings::default();
        found.add(finding("b", Severity::Low));
        found.add(finding("a", Severity::Critical));
        let mut talking = finding("c", Severity::Medium);
        talking.traffic = Some(Traffic {
            bytes: 10,
            ..Traffic::default()
        });
        found.add(talking);
        found.add(finding("d", Severity::Critical));
        let report = Report::new(Path::new("/"), true, found);
        let order: Vec<&str> = report.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(order, ["c", "a", "d", "b"]);
        assert_eq!(report.exit_status(), EXIT_FOUND);
        assert_eq!(
            report.summary(),
            "2 critical, 0 high, 1 medium, 1 low, 0 info: needs action (exit 3)"
        );

        let mut quiet = Findings::default();
        quiet.add(finding("x", Severity::Low));
        quiet.add(finding("y", Severity::Info));
        let report = Report::new(Path::new("/"), true, quiet);
        assert_eq!(report.exit_status(), EXIT_CLEAN);
        assert!(report.summary().ends_with("nothing above low (exit 0)"));
        assert_eq!(
            Report::new(Path::new("/"), true, Findings::default()).exit_status(),
            0
        );
    }

    #[test]
    fn allowed_findings_come_last_and_count_toward_nothing() {
        let mut found = Findings::default();
        let mut allowed = finding("process-exe-deleted", Severity::High);
        allowed.allowed = Some("memfd:runc".into());
        found.add(allowed);
        found.add(finding("sshd-port-22", Severity::Low));
        let report = Report::new(Path::new("/"), true, found);
        let order: Vec<&str> = report.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(order, ["sshd-port-22", "process-exe-deleted"]);
        assert_eq!(report.count(Severity::High), 0);
        assert_eq!(report.allowed(), 1);
        assert_eq!(report.worst(), Some(Severity::Low));
        assert_eq!(report.exit_status(), EXIT_CLEAN);
        assert_eq!(
            report.summary(),
            "0 critical, 0 high, 0 medium, 1 low, 0 info, 1 allowed: nothing above low (exit 0)"
        );

        // The same finding not allowed is high, and needs action.
        let mut found = Findings::default();
        found.add(finding("process-exe-deleted", Severity::High));
        let report = Report::new(Path::new("/"), true, found);
        assert_eq!((report.count(Severity::High), report.allowed()), (1, 0));
        assert_eq!(report.exit_status(), EXIT_FOUND);
    }
}
