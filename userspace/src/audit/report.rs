//! The audit's result: the findings in the order they are shown, notes on what was not
//! checked, the summary and the exit status.

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

    /// Findings whose process carries traffic first (most bytes first), then worst
    /// first; ties by id and evidence, so the order is the same every run.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            let bytes = |f: &Finding| f.traffic.as_ref().map(|t| t.bytes);
            bytes(b)
                .cmp(&bytes(a))
                .then(b.severity.cmp(&a.severity))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.evidence.cmp(&b.evidence))
        });
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// [`EXIT_FOUND`] if anything is medium or worse, else [`EXIT_CLEAN`].
    pub fn exit_status(&self) -> u8 {
        if self.worst() >= Some(Severity::Medium) {
            EXIT_FOUND
        } else {
            EXIT_CLEAN
        }
    }

    /// One line: `2 critical, 1 high, 3 medium, 1 low, 2 info: needs action (exit 3)`.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = Severity::WORST_FIRST
            .iter()
            .map(|&severity| format!("{} {severity}", self.count(severity)))
            .collect();
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
}
