//! The allow-list of the process checks (`--allow`, or `allow` under `[audit]` in the
//! configuration file): processes known to do by design what a check flags, such as a
//! container runtime or an agent that runs from a sealed memfd. Every `process-*` finding
//! about a matching process is reported as allowed, naming the entry: still shown, never
//! counted toward the exit status. Other checks (files, sockets, traffic) take no entry.

use std::{fmt, path::Path, str::FromStr};

/// What the kernel shows as the executable of a program run from a memfd.
const MEMFD_PREFIX: &str = "/memfd:";

/// One entry: `exe:PATH`, `memfd:NAME` or `unit:UNIT`; a trailing `*` matches any rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    by: By,
    /// The path or name, with its `*` if any.
    pattern: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum By {
    /// The executable's path (`/proc/PID/exe`, without " (deleted)").
    Exe,
    /// The name given to `memfd_create`, for a program run from memory.
    Memfd,
    /// The systemd unit whose cgroup holds the process (`.service` or `.scope`).
    Unit,
}

impl By {
    fn label(self) -> &'static str {
        match self {
            By::Exe => "exe",
            By::Memfd => "memfd",
            By::Unit => "unit",
        }
    }
}

/// An entry that cannot be used, in one line: what is wrong and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("{0:?} is not an allow entry: expected exe:PATH, memfd:NAME or unit:UNIT")]
    Kind(String),
    #[error("{0:?}: the path or name is empty")]
    Empty(String),
    #[error("{0:?}: exe takes an absolute path, e.g. exe:/usr/local/bin/agent")]
    Relative(String),
    #[error("{0:?}: `*` may only end the path or name (it matches any rest)")]
    Star(String),
}

impl FromStr for AllowEntry {
    type Err = AllowError;

    /// `exe:/usr/bin/runc`, `memfd:runc_cloned*`, `unit:containerd.service`; a unit
    /// without a suffix is a service, as systemctl reads it (`unit:containerd`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let entry = text.trim();
        let (kind, pattern) = entry
            .split_once(':')
            .ok_or_else(|| AllowError::Kind(entry.to_owned()))?;
        let by = match kind {
            "exe" => By::Exe,
            "memfd" => By::Memfd,
            "unit" => By::Unit,
            _ => return Err(AllowError::Kind(entry.to_owned())),
        };
        if pattern.trim_end_matches('*').is_empty() {
            return Err(AllowError::Empty(entry.to_owned()));
        }
        if pattern.trim_end_matches('*').contains('*') || pattern.ends_with("**") {
            return Err(AllowError::Star(entry.to_owned()));
        }
        if by == By::Exe && !pattern.starts_with('/') {
            return Err(AllowError::Relative(entry.to_owned()));
        }
        let mut pattern = pattern.to_owned();
        if by == By::Unit && !pattern.contains(['.', '*']) {
            pattern.push_str(".service");
        }
        Ok(Self { by, pattern })
    }
}

impl fmt::Display for AllowEntry {
    /// As written, with a bare unit's `.service`: `memfd:runc_cloned*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.by.label(), self.pattern)
    }
}

impl AllowEntry {
    /// Whether the process running `exe`, in systemd unit `unit`, is the one this entry
    /// names.
    pub fn matches(&self, exe: Option<&Path>, unit: Option<&str>) -> bool {
        let exe = exe.and_then(Path::to_str);
        let subject = match self.by {
            By::Exe => exe,
            By::Memfd => exe.and_then(|exe| exe.strip_prefix(MEMFD_PREFIX)),
            By::Unit => unit,
        };
        subject.is_some_and(|text| match self.pattern.strip_suffix('*') {
            Some(prefix) => text.starts_with(prefix),
            None => text == self.pattern,
        })
    }
}

/// The first entry of `entries` that names the process, if any.
pub fn allowing<'a>(
    entries: &'a [AllowEntry],
    exe: Option<&Path>,
    unit: Option<&str>,
) -> Option<&'a AllowEntry> {
    entries.iter().find(|entry| entry.matches(exe, unit))
}

/// The systemd unit of a process from the path of its cgroup (`/proc/PID/cgroup`): the
/// innermost `.service` or `.scope`, e.g. `containerd.service` in
/// `/system.slice/containerd.service`.
pub fn unit_of_cgroup(path: &str) -> Option<&str> {
    path.rsplit('/')
        .find(|part| part.ends_with(".service") || part.ends_with(".scope"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> AllowEntry {
        text.parse().unwrap()
    }

    #[test]
    fn entries_read_back_as_written() {
        for text in [
            "exe:/usr/bin/runc",
            "memfd:runc_cloned:/proc/self/exe",
            "memfd:agent*",
            "unit:containerd.service",
            "unit:docker-*",
            "exe:/opt/agent/*",
        ] {
            assert_eq!(entry(text).to_string(), text);
        }
        assert_eq!(
            entry(" unit:containerd ").to_string(),
            "unit:containerd.service"
        );
    }

    #[test]
    fn bad_entries_say_what_is_expected() {
        for (text, error) in [
            ("runc", AllowError::Kind("runc".into())),
            (
                "path:/usr/bin/runc",
                AllowError::Kind("path:/usr/bin/runc".into()),
            ),
            ("memfd:", AllowError::Empty("memfd:".into())),
            ("unit:*", AllowError::Empty("unit:*".into())),
            ("exe:runc", AllowError::Relative("exe:runc".into())),
            (
                "exe:/opt/*/agent",
                AllowError::Star("exe:/opt/*/agent".into()),
            ),
            ("memfd:a**", AllowError::Star("memfd:a**".into())),
        ] {
            assert_eq!(text.parse::<AllowEntry>(), Err(error), "{text}");
        }
        let message = "cron:x".parse::<AllowEntry>().unwrap_err().to_string();
        assert_eq!(
            message,
            "\"cron:x\" is not an allow entry: expected exe:PATH, memfd:NAME or unit:UNIT"
        );
    }

    #[test]
    fn each_kind_matches_its_own_part_of_the_process() {
        let memfd = Some(Path::new("/memfd:runc_cloned:/proc/self/exe"));
        let file = Some(Path::new("/usr/local/bin/agent"));
        let unit = Some("containerd.service");

        assert!(entry("memfd:runc_cloned:/proc/self/exe").matches(memfd, None));
        assert!(entry("memfd:runc*").matches(memfd, None));
        assert!(!entry("memfd:runc").matches(memfd, None), "a whole name");
        assert!(!entry("memfd:agent").matches(file, None), "not a memfd");

        assert!(entry("exe:/usr/local/bin/agent").matches(file, None));
        assert!(entry("exe:/usr/local/*").matches(file, None));
        assert!(!entry("exe:/usr/local/bin/agen").matches(file, None));
        assert!(!entry("exe:/usr/local/bin/agent").matches(None, unit));

        assert!(entry("unit:containerd").matches(memfd, unit));
        assert!(entry("unit:container*").matches(None, unit));
        assert!(!entry("unit:containerd.scope").matches(memfd, unit));
        assert!(!entry("unit:containerd").matches(memfd, None));

        let entries = [entry("exe:/usr/bin/x"), entry("unit:containerd")];
        assert_eq!(allowing(&entries, memfd, unit), Some(&entries[1]));
        assert_eq!(allowing(&entries, memfd, None), None);
    }

    #[test]
    fn the_unit_is_the_innermost_service_or_scope() {
        for (path, unit) in [
            (
                "/system.slice/containerd.service",
                Some("containerd.service"),
            ),
            ("/system.slice/docker-4f2a.scope", Some("docker-4f2a.scope")),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/agent.service",
                Some("agent.service"),
            ),
            ("/init.scope", Some("init.scope")),
            ("/system.slice", None),
            ("/", None),
        ] {
            assert_eq!(unit_of_cgroup(path), unit, "{path}");
        }
    }
}
