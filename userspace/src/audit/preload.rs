//! Preloaded libraries: `/etc/ld.so.preload` makes every dynamically linked program load
//! the libraries it lists, which is how user-space rootkits hide a miner's files and
//! processes (the runbook's third check). `LD_PRELOAD` in `/etc/environment` does the
//! same for every login session.

use std::path::Path;

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    root::Root,
    signs,
};

const PRELOAD: &str = "/etc/ld.so.preload";
const ENVIRONMENT: &str = "/etc/environment";

/// Where libraries are installed; a preloaded library elsewhere is out of place.
const LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/lib32",
    "/lib64",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/local/lib64",
];

pub fn check(root: &Root, out: &mut Findings) {
    if let Some(text) = root.read(PRELOAD, out) {
        for (index, line) in text.lines().enumerate() {
            let entries = line.split('#').next().unwrap_or_default();
            for entry in entries.split([' ', '\t', ':']).filter(|e| !e.is_empty()) {
                let evidence = format!("{PRELOAD}:{}: {}", index + 1, line.trim());
                out.add(preload_finding(root, entry, evidence));
            }
        }
    }
    if let Some(text) = root.read(ENVIRONMENT, out) {
        for (index, line) in text.lines().enumerate() {
            let setting = line.trim();
            let setting = setting.strip_prefix("export ").unwrap_or(setting);
            let Some(("LD_PRELOAD", value)) = setting.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches(['"', '\'']);
            if value.is_empty() {
                continue;
            }
            out.add(Finding::new(
                "environment-ld-preload",
                Severity::High,
                format!("Every login session preloads {value}"),
                format!("{ENVIRONMENT}:{}: {setting}", index + 1),
                advice::LD_PRELOAD,
            ));
        }
    }
}

/// Any entry is high; one that sits outside the library directories, or does not exist,
/// is critical.
fn preload_finding(root: &Root, entry: &str, evidence: String) -> Finding {
    // The loader expands `$LIB` to the library directory's name.
    let expanded = entry.replace("${LIB}", "lib").replace("$LIB", "lib");
    let path = Path::new(&expanded);
    let odd = if let Some(dir) = signs::temp_dir(path) {
        Some(format!("under {}", dir.display()))
    } else if path
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    {
        Some("in a hidden place".to_owned())
    } else if !LIBRARY_DIRS.iter().any(|dir| path.starts_with(dir)) {
        Some("outside the library directories".to_owned())
    } else {
        None
    };
    // `$LIB` and `$PLATFORM` are expanded by the loader: existence cannot be told here.
    let missing = !entry.contains('$') && !root.exists(entry);
    let (id, severity, title) = match (odd, missing) {
        (Some(place), _) => (
            "ld-preload-odd-place",
            Severity::Critical,
            format!("Every program preloads {entry}, {place}"),
        ),
        (None, true) => (
            "ld-preload-missing",
            Severity::Critical,
            format!(
                "Every program is told to preload {entry}, which does not exist (or is hidden)"
            ),
        ),
        (None, false) => (
            "ld-preload-entry",
            Severity::High,
            format!("Every program preloads {entry}"),
        ),
    };
    Finding::new(id, severity, title, evidence, advice::LD_PRELOAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::{found, tree};

    #[test]
    fn every_entry_is_high_and_odd_or_missing_ones_critical() {
        let (_dir, root) = tree(&[
            ("/usr/local/lib/libfast.so", ""),
            (
                "/etc/ld.so.preload",
                "# comment\n/usr/local/lib/libfast.so\n/usr/lib/libgone.so /dev/shm/.x/l.so\n/usr/$LIB/libx.so\n",
            ),
            (
                "/etc/environment",
                "PATH=\"/usr/bin:/bin\"\nLD_PRELOAD=\"/usr/local/lib/libfast.so\"\nLD_PRELOAD=\n",
            ),
        ]);
        let mut out = Findings::default();
        check(&root, &mut out);
        assert_eq!(
            found(&out),
            [
                (
                    "ld-preload-entry",
                    Severity::High,
                    "/etc/ld.so.preload:2: /usr/local/lib/libfast.so"
                ),
                (
                    "ld-preload-missing",
                    Severity::Critical,
                    "/etc/ld.so.preload:3: /usr/lib/libgone.so /dev/shm/.x/l.so"
                ),
                (
                    "ld-preload-odd-place",
                    Severity::Critical,
                    "/etc/ld.so.preload:3: /usr/lib/libgone.so /dev/shm/.x/l.so"
                ),
                (
                    "ld-preload-entry",
                    Severity::High,
                    "/etc/ld.so.preload:4: /usr/$LIB/libx.so"
                ),
                (
                    "environment-ld-preload",
                    Severity::High,
                    "/etc/environment:2: LD_PRELOAD=\"/usr/local/lib/libfast.so\""
                ),
            ]
        );
        assert!(
            out.found[2].title.contains("under /dev/shm"),
            "{}",
            out.found[2].title
        );
    }
}
