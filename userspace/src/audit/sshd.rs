//! sshd's configuration (`/etc/ssh/sshd_config` and the files it includes), against
//! the runbook's hardening: sshd off port 22, no password logins for root, strong
//! passwords or none, no empty passwords.
//!
//! Read as sshd reads it: keywords are case-insensitive, the first value of a keyword
//! wins (`Port` and `ListenAddress` add up), `Include` takes globs relative to
//! `/etc/ssh`, and what follows a `Match` line applies only to some connections (so it
//! is not read). A keyword never set has OpenSSH's default.

use std::collections::HashMap;

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    root::Root,
};

const CONFIG: &str = "/etc/ssh/sshd_config";
const CONFIG_DIR: &str = "/etc/ssh";
/// Includes nested deeper than this are not followed (sshd's own limit is 16).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A keyword's value and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Setting {
    value: String,
    /// `FILE:LINE: text`.
    evidence: String,
}

#[derive(Debug, Default)]
struct Config {
    /// The first value of each single-valued keyword, by lowercase keyword.
    first: HashMap<String, Setting>,
    ports: Vec<Setting>,
    listen: Vec<Setting>,
}

impl Config {
    fn get(&self, keyword: &str) -> Option<&Setting> {
        self.first.get(keyword)
    }

    /// Whether `keyword` is `yes`; `default` if never set.
    fn is_yes(&self, keyword: &str, default: bool) -> bool {
        self.get(keyword)
            .map_or(default, |s| s.value.eq_ignore_ascii_case("yes"))
    }

    /// "FILE:LINE: text", or a sentence saying that OpenSSH's default applies.
    fn evidence(&self, keyword: &str, shown: &str, default: &str) -> String {
        match self.get(keyword) {
            Some(setting) => setting.evidence.clone(),
            None => format!("{CONFIG}: no {shown} line (OpenSSH's default is {default})"),
        }
    }
}

pub fn check(root: &Root, out: &mut Findings) {
    let mut config = Config::default();
    if !root.exists(CONFIG) {
        return;
    }
    read(root, CONFIG, 0, &mut config, out);

    // Ports: from ListenAddress host:port when given, else Port, else 22.
    let listen_ports: Vec<&Setting> = config
        .listen
        .iter()
        .filter(|s| listen_port(&s.value).is_some())
        .collect();
    let on_22 = if listen_ports.is_empty() {
        match config.ports.iter().find(|s| s.value == "22") {
            Some(setting) => Some(setting.evidence.clone()),
            None if config.ports.is_empty() => {
                Some(format!("{CONFIG}: no Port line (OpenSSH's default is 22)"))
            }
            None => None,
        }
    } else {
        listen_ports
            .iter()
            .find(|s| listen_port(&s.value) == Some(22))
            .map(|s| s.evidence.clone())
    };
    if let Some(evidence) = on_22 {
        out.add(Finding::new(
            "sshd-port-22",
            Severity::Low,
            "sshd listens on the default port 22, which every scanner tries",
            evidence,
            advice::SSH_PORT,
        ));
    }

    let passwords = config.is_yes("passwordauthentication", true);
    if passwords {
        out.add(Finding::new(
            "sshd-password-auth",
            Severity::Medium,
            "sshd accepts passwords, which can be guessed (the usual way in)",
            config.evidence("passwordauthentication", "PasswordAuthentication", "yes"),
            advice::SSH_PASSWORDS,
        ));
    }
    if let Some(root_login) = config.get("permitrootlogin")
        && root_login.value.eq_ignore_ascii_case("yes")
    {
        let (id, severity, title, advice) = if passwords {
            (
                "sshd-root-password-login",
                Severity::High,
                "root may log in over ssh with a password",
                advice::SSH_ROOT_PASSWORD,
            )
        } else {
            (
                "sshd-root-login",
                Severity::Low,
                "root may log in over ssh (with a key)",
                advice::SSH_ROOT_KEY,
            )
        };
        out.add(Finding::new(
            id,
            severity,
            title,
            root_login.evidence.clone(),
            advice,
        ));
    }
    if config.is_yes("permitemptypasswords", false) {
        out.add(Finding::new(
            "sshd-empty-passwords",
            Severity::High,
            "sshd lets accounts with an empty password log in",
            config.evidence("permitemptypasswords", "PermitEmptyPasswords", "no"),
            advice::SSH_EMPTY,
        ));
    }
}

/// Reads `file` into `config`, following its `Include`s. Returns false once a `Match`
/// line was met: nothing after it is global.
fn read(root: &Root, file: &str, depth: usize, config: &mut Config, out: &mut Findings) -> bool {
    let Some(text) = root.read(file, out) else {
        return true;
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((keyword, value)) => (keyword, value.trim().trim_start_matches('=').trim()),
            None => (line, ""),
        };
        let keyword = keyword.to_ascii_lowercase();
        let value = value.trim_matches('"').to_owned();
        let setting = Setting {
            evidence: format!("{file}:{}: {line}", index + 1),
            value: value.clone(),
        };
        match keyword.as_str() {
            "match" => return false,
            "include" if depth < MAX_INCLUDE_DEPTH => {
                for pattern in value.split_whitespace() {
                    for included in expand(root, pattern, out) {
                        if !read(root, &included, depth + 1, config, out) {
                            return false;
                        }
                    }
                }
            }
            "port" => config.ports.push(setting),
            "listenaddress" => config.listen.push(setting),
            _ => {
                config.first.entry(keyword).or_insert(setting);
            }
        }
    }
    true
}

/// The files an `Include` pattern names, sorted; relative patterns are under
/// `/etc/ssh`. Wildcards (`*`, `?`) are understood in the last component.
fn expand(root: &Root, pattern: &str, out: &mut Findings) -> Vec<String> {
    let pattern = if pattern.starts_with('/') {
        pattern.to_owned()
    } else {
        format!("{CONFIG_DIR}/{pattern}")
    };
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
    if !name.contains(['*', '?']) {
        return vec![pattern];
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    root.files_in(dir, out)
        .into_iter()
        .filter(|file| wildcard(name, file.rsplit('/').next().unwrap_or_default()))
        .collect()
}

/// Shell-style `*` and `?` matching.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), name.chars().collect());
    fn matches(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => matches(&p[1..], n) || (!n.is_empty() && matches(p, &n[1..])),
            (Some('?'), Some(_)) => matches(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &n[1..]),
            _ => false,
        }
    }
    matches(&pattern, &name)
}

/// The port of `ListenAddress host:port` or `[v6]:port`; `None` without one.
fn listen_port(value: &str) -> Option<u16> {
    let address = value.split_whitespace().next()?;
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once("]:")?.1.parse().ok();
    }
    let (host, port) = address.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address
    }
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::tree;

    fn audit(files: &[(&str, &str)]) -> Vec<(String, Severity, String)> {
        let (_dir, root) = tree(files);
        let mut out = Findings::default();
        check(&root, &mut out);
        out.found
            .into_iter()
            .map(|f| (f.id, f.severity, f.evidence))
            .collect()
    }

    fn ids(found: &[(String, Severity, String)]) -> Vec<&str> {
        found.iter().map(|(id, ..)| id.as_str()).collect()
    }

    #[test]
    fn a_weak_configuration_shows_every_finding_with_its_line() {
        let found = audit(&[
            (
                "/etc/ssh/sshd_config",
                "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nPermitRootLogin yes\n\
                 PasswordAuthentication yes\nMatch User backup\n  PermitEmptyPasswords no\n",
            ),
            (
                "/etc/ssh/sshd_config.d/50-x.conf",
                "permitemptypasswords=yes\n",
            ),
            ("/etc/ssh/sshd_config.d/README", "PermitRootLogin no\n"),
        ]);
        assert_eq!(
            found,
            [
                (
                    "sshd-port-22".into(),
                    Severity::Low,
                    "/etc/ssh/sshd_config:2: Port 22".into()
                ),
                (
                    "sshd-password-auth".into(),
                    Severity::Medium,
                    "/etc/ssh/sshd_config:4: PasswordAuthentication yes".into()
                ),
                (
                    "sshd-root-password-login".into(),
                    Severity::High,
                    "/etc/ssh/sshd_config:3: PermitRootLogin yes".into()
                ),
                (
                    "sshd-empty-passwords".into(),
                    Severity::High,
                    "/etc/ssh/sshd_config.d/50-x.conf:1: permitemptypasswords=yes".into()
                ),
            ]
        );
    }

    #[test]
    fn the_first_value_wins_and_defaults_are_said() {
        // Ubuntu's cloud images turn passwords off in an include read first.
        let found = audit(&[
            (
                "/etc/ssh/sshd_config",
                "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/60-cloudimg-settings.conf",
                "PasswordAuthentication no\n",
            ),
        ]);
        assert_eq!(ids(&found), ["sshd-port-22"]);
        assert_eq!(
            found[0].2,
            "/etc/ssh/sshd_config: no Port line (OpenSSH's default is 22)"
        );

        let found = audit(&[("/etc/ssh/sshd_config", "# defaults\n")]);
        assert_eq!(ids(&found), ["sshd-port-22", "sshd-password-auth"]);
        assert_eq!(
            found[1].2,
            "/etc/ssh/sshd_config: no PasswordAuthentication line (OpenSSH's default is yes)"
        );

        let hardened = audit(&[(
            "/etc/ssh/sshd_config",
            "Port 2222\nPasswordAuthentication no\nPermitRootLogin yes\n",
        )]);
        assert_eq!(ids(&hardened), ["sshd-root-login"]);
        assert_eq!(hardened[0].1, Severity::Low);

        let listen = audit(&[(
            "/etc/ssh/sshd_config",
            "Port 22\nListenAddress 0.0.0.0:2200\nListenAddress [::]:2200\nPasswordAuthentication no\n",
        )]);
        assert!(listen.is_empty(), "{listen:?}");
        assert!(audit(&[]).is_empty(), "no sshd, nothing to say");
    }

    #[test]
    fn wildcards_and_listen_ports() {
        assert!(wildcard("*.conf", "50-x.conf"));
        assert!(!wildcard("*.conf", "README"));
        assert!(wildcard("a?c*", "abcdef"));
        assert_eq!(listen_port("0.0.0.0:2222"), Some(2222));
        assert_eq!(listen_port("[::1]:22 rdomain x"), Some(22));
        assert_eq!(listen_port("::"), None);
        assert_eq!(listen_port("10.0.0.1"), None);
    }
}
