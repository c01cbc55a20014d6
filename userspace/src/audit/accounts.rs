//! Accounts, against the runbook's hardening (strong passwords, no unused users): login
//! accounts with an empty or weak password field, extra uid-0 accounts, login users who
//! never logged in, and `authorized_keys` files changed lately.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    time::{Duration, SystemTime},
};

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    root::Root,
    users::{Account, Shadow, Users},
};

const LASTLOG: &str = "/var/log/lastlog";
/// `struct lastlog` on Linux: a 32-bit time, a 32-byte line, a 256-byte host.
const LASTLOG_RECORD: u64 = 4 + 32 + 256;
const LOGIN_DEFS: &str = "/etc/login.defs";
/// The first uid of people's accounts when login.defs does not say.
const DEFAULT_UID_MIN: u32 = 1000;
/// The uid of `nobody`, never a person.
const NOBODY: u32 = 65534;
/// An `authorized_keys` file changed within this long is worth a look.
const RECENT: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn check(root: &Root, users: Option<&Users>, out: &mut Findings) {
    let Some(users) = users else {
        out.note(format!(
            "accounts not checked: {} could not be read",
            Users::PASSWD
        ));
        return;
    };
    extra_root(users, out);
    passwords(root, users, out);
    let uid_min = uid_min(root, out);
    let people: Vec<&Account> = users
        .accounts
        .iter()
        .filter(|a| a.can_log_in() && a.uid >= uid_min && a.uid != NOBODY)
        .collect();
    never_used(root, &people, out);
    let mut key_owners: Vec<&Account> = users.accounts.iter().filter(|a| a.uid == 0).collect();
    key_owners.extend(people);
    recent_keys(root, &key_owners, SystemTime::now(), out);
}

fn extra_root(users: &Users, out: &mut Findings) {
    for account in users
        .accounts
        .iter()
        .filter(|a| a.uid == 0 && a.name != "root")
    {
        out.add(Finding::new(
            "account-extra-uid0",
            Severity::Critical,
            format!("{} has uid 0: a second root account", account.name),
            account.evidence(),
            advice::EXTRA_ROOT,
        ));
    }
}

/// What a password field says about the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Password {
    /// Anyone can log in.
    Empty,
    /// Locked or disabled (`!`, `*`, `!!`), or kept in /etc/shadow (`x`).
    Locked,
    /// DES crypt (13 characters) or MD5 (`$1$`): cracked in hours.
    WeakHash,
    /// Not a hash at all: stored in clear text?
    NotAHash,
    /// A modern hash (`$5$`, `$6$`, `$y$`, `$2b$`, ...).
    Strong,
}

impl Password {
    /// Said in the evidence instead of the field itself.
    fn describe(self) -> &'static str {
        match self {
            Password::Empty => "empty password field",
            Password::Locked => "locked",
            Password::WeakHash => "DES or MD5 hash",
            Password::NotAHash => "password field is not a hash",
            Password::Strong => "modern hash",
        }
    }

    fn of(field: &str) -> Password {
        let salt = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
        match field {
            "" => Password::Empty,
            "x" => Password::Locked,
            _ if field.starts_with(['!', '*']) => Password::Locked,
            _ if field.starts_with("$1$") => Password::WeakHash,
            _ if field.starts_with('$') => Password::Strong,
            _ if field.len() == 13 && field.chars().all(salt) => Password::WeakHash,
            _ => Password::NotAHash,
        }
    }
}

fn passwords(root: &Root, users: &Users, out: &mut Findings) {
    let shadow = Shadow::read(root, out);
    for account in users.accounts.iter().filter(|a| a.can_log_in()) {
        // The passwd field counts only when it does not point to /etc/shadow. The
        // evidence names the line, never the hash.
        let entry = shadow
            .as_ref()
            .and_then(|entries| entries.iter().find(|e| e.name == account.name));
        let (field, place) = match entry {
            Some(entry) if account.password == "x" => (
                entry.hash.as_str(),
                format!("{}:{}", Shadow::PATH, entry.line),
            ),
            _ if account.password == "x" => continue,
            _ => (
                account.password.as_str(),
                format!("{}:{}", Users::PASSWD, account.line),
            ),
        };
        let kind = Password::of(field);
        let evidence = format!("{place}: {} ({})", account.name, kind.describe());
        let (id, severity, title, advice) = match kind {
            Password::Empty => (
                "account-empty-password",
                Severity::Critical,
                format!(
                    "{} can log in with an empty password (shell {})",
                    account.name, account.shell
                ),
                advice::EMPTY_PASSWORD,
            ),
            Password::NotAHash => (
                "account-password-not-hashed",
                Severity::High,
                format!(
                    "{}'s password field is not a hash: a password in clear text?",
                    account.name
                ),
                advice::EMPTY_PASSWORD,
            ),
            Password::WeakHash => (
                "account-weak-hash",
                Severity::Medium,
                format!(
                    "{}'s password is stored with an old, weak hash (DES or MD5)",
                    account.name
                ),
                advice::WEAK_HASH,
            ),
            Password::Locked | Password::Strong => continue,
        };
        out.add(Finding::new(id, severity, title, evidence, advice));
    }
}

/// `UID_MIN` from login.defs, or 1000.
fn uid_min(root: &Root, out: &mut Findings) -> u32 {
    root.read(LOGIN_DEFS, out)
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("UID_MIN")).then(|| words.next()?.parse().ok())?
            })
        })
        .unwrap_or(DEFAULT_UID_MIN)
}

/// People's accounts that lastlog has no login for.
fn never_used(root: &Root, people: &[&Account], out: &mut Findings) {
    if people.is_empty() {
        return;
    }
    let Ok(mut lastlog) = File::open(root.path(LASTLOG)) else {
        out.note(format!(
            "unused accounts not checked: no readable {LASTLOG} (systems with lastlog2 keep \
             it elsewhere)"
        ));
        return;
    };
    for account in people {
        if last_login(&mut lastlog, account.uid).is_none() {
            out.add(Finding::new(
                "account-never-used",
                Severity::Low,
                format!("{} can log in but never has", account.name),
                account.evidence(),
                advice::UNUSED_USER,
            ));
        }
    }
}

/// The time of the account's last login (seconds since 1970), if lastlog has one.
fn last_login(lastlog: &mut File, uid: u32) -> Option<u32> {
    let mut time = [0u8; 4];
    lastlog
        .seek(SeekFrom::Start(u64::from(uid) * LASTLOG_RECORD))
        .ok()?;
    lastlog.read_exact(&mut time).ok()?;
    Some(u32::from_ne_bytes(time)).filter(|&t| t != 0)
}

/// `authorized_keys` of root and people, changed within [`RECENT`] of `now`.
fn recent_keys(root: &Root, owners: &[&Account], now: SystemTime, out: &mut Findings) {
    for account in owners {
        for name in ["authorized_keys", "authorized_keys2"] {
            let file = format!("{}/.ssh/{name}", account.home.trim_end_matches('/'));
            let Some(modified) = root.metadata(&file).and_then(|m| m.modified().ok()) else {
                continue;
            };
            let Ok(age) = now.duration_since(modified) else {
                continue;
            };
            if age > RECENT {
                continue;
            }
            let keys = root
                .read(&file, out)
                .map(|text| {
                    text.lines()
                        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                        .count()
                })
                .unwrap_or(0);
            let days = age.as_secs() / 86_400;
            out.add(Finding::new(
                "account-recent-keys",
                Severity::Low,
                format!(
                    "{}'s authorized ssh keys changed {days} days ago",
                    account.name
                ),
                format!("{file} ({keys} keys)"),
                advice::RECENT_KEYS,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::{found, tree};

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
                          toor:x:0:0::/root:/bin/bash\n\
                          alice:x:1000:1000::/home/alice:/bin/bash\n\
                          backup2:x:1001:1001::/home/backup2:/bin/bash\n\
                          old:x:1002:1002::/home/old:/bin/sh\n\
                          plain:hunter2:1003:1003::/home/plain:/bin/sh\n\
                          svc::998:998::/srv:/usr/sbin/nologin\n";
    // Fake fields: none is the hash of any password.
    const SHADOW: &str = "root:*:19000:0:99999:7:::\n\
                          daemon:*:19000:0:99999:7:::\n\
                          toor:!:19000:0:99999:7:::\n\
                          alice:$6$fixture$notarealhashnotarealhashnotarealhash:19000:0:99999:7:::\n\
                          backup2::19000:0:99999:7:::\n\
                          old:abNOTAHASH.xy:19000:0:99999:7:::\n";

    fn lastlog(logged_in: &[u32]) -> Vec<u8> {
        let max = logged_in.iter().max().copied().unwrap_or(0) as usize;
        let mut bytes = vec![0u8; (max + 1) * LASTLOG_RECORD as usize];
        for &uid in logged_in {
            let at = uid as usize * LASTLOG_RECORD as usize;
            bytes[at..at + 4].copy_from_slice(&1_700_000_000u32.to_ne_bytes());
        }
        bytes
    }

    #[test]
    fn passwords_root_accounts_and_unused_users() {
        let log = lastlog(&[1000, 1003]);
        let (_dir, root) = tree(&[
            ("/etc/passwd", PASSWD.as_bytes()),
            ("/etc/shadow", SHADOW.as_bytes()),
            ("/var/log/lastlog", log.as_slice()),
        ]);
        let mut out = Findings::default();
        let users = Users::read(&root, &mut out);
        check(&root, users.as_ref(), &mut out);
        assert_eq!(
            found(&out),
            [
                (
                    "account-extra-uid0",
                    Severity::Critical,
                    "/etc/passwd:3: toor:x:0:0::/root:/bin/bash"
                ),
                (
                    "account-empty-password",
                    Severity::Critical,
                    "/etc/shadow:5: backup2 (empty password field)"
                ),
                (
                    "account-weak-hash",
                    Severity::Medium,
                    "/etc/shadow:6: old (DES or MD5 hash)"
                ),
                (
                    "account-password-not-hashed",
                    Severity::High,
                    "/etc/passwd:7: plain (password field is not a hash)"
                ),
                (
                    "account-never-used",
                    Severity::Low,
                    "/etc/passwd:5: backup2:x:1001:1001::/home/backup2:/bin/bash"
                ),
                (
                    "account-never-used",
                    Severity::Low,
                    "/etc/passwd:6: old:x:1002:1002::/home/old:/bin/sh"
                ),
            ]
        );
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn without_lastlog_or_passwd_it_says_so() {
        let (_dir, root) = tree(&[("/etc/passwd", PASSWD.as_bytes())]);
        let mut out = Findings::default();
        check(&root, Some(&Users::parse(PASSWD)), &mut out);
        assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        assert!(out.notes[0].contains("/var/log/lastlog"));
        let mut out = Findings::default();
        check(&root, None, &mut out);
        assert!(out.found.is_empty() && out.notes.len() == 1);
    }

    #[test]
    fn recently_changed_keys_are_low() {
        let (dir, root) = tree(&[(
            "/root/.ssh/authorized_keys",
            b"# mine\nssh-ed25519 AAAAfake admin\n",
        )]);
        let users = Users::parse("root:x:0:0::/root:/bin/bash\n");
        let owners: Vec<&Account> = users.accounts.iter().collect();
        let mut out = Findings::default();
        recent_keys(&root, &owners, SystemTime::now(), &mut out);
        assert_eq!(out.found.len(), 1);
        assert_eq!(out.found[0].id, "account-recent-keys");
        assert_eq!(out.found[0].evidence, "/root/.ssh/authorized_keys (1 keys)");
        let later = SystemTime::now() + RECENT + Duration::from_secs(60);
        let mut out = Findings::default();
        recent_keys(&root, &owners, later, &mut out);
        assert!(out.found.is_empty());
        drop(dir);
    }

    #[test]
    fn password_fields_are_classified() {
        for (field, kind) in [
            ("", Password::Empty),
            ("x", Password::Locked),
            ("!", Password::Locked),
            ("!!", Password::Locked),
            ("*", Password::Locked),
            ("!$6$a$b", Password::Locked),
            ("$1$salt$fake", Password::WeakHash),
            ("abNOTAHASH.xy", Password::WeakHash),
            ("$6$salt$fake", Password::Strong),
            ("$y$j9T$fake$fake", Password::Strong),
            ("hunter2", Password::NotAHash),
        ] {
            assert_eq!(Password::of(field), kind, "{field:?}");
        }
    }
}
