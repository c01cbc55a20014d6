//! `AlertExec`: these run /bin/sh.

use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::*;
use crate::sinks::alerts::{Alert, AlertEngine, AlertExec, ExecReport};

fn sample_alert() -> Alert {
    let mut engine = AlertEngine::new(home("DE"));
    engine
        .observe(&enriched(
            snapshot(1, vec![flow("203.0.113.7", 443, 2 * MIB, 0)]),
            &[in_country("CN")],
        ))
        .remove(0)
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn exec_passes_the_alert_as_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("alert.json");
    let text = dir.path().join("alert.txt");
    let mut exec = AlertExec::new(
        format!(
            "cat > {}; printf '%s' \"$FLOWMETER_ALERT\" > {}",
            quoted(&json),
            quoted(&text)
        ),
        SCHEMA_VERSION,
    );
    let alert = sample_alert();
    exec.run(&alert);
    assert!(exec.wait_idle(Duration::from_secs(30)));
    assert!(exec.take_reports().is_empty());

    let written = std::fs::read_to_string(&json).unwrap();
    assert!(written.ends_with('\n'));
    let line: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(line["type"], "alert");
    assert_eq!(line["kind"], "foreign");
    assert_eq!(line["remote_ip"], "203.0.113.7");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), alert.to_string());
}

#[test]
fn exec_kills_a_command_past_its_time_limit_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let mut exec = AlertExec::new(
        format!("sleep 60 & echo $! > {}; wait", quoted(&pid_file)),
        SCHEMA_VERSION,
    )
    .with_timeout(Duration::from_millis(300));
    exec.run(&sample_alert());
    assert!(exec.wait_idle(Duration::from_secs(30)));
    assert_eq!(
        exec.take_reports(),
        [ExecReport::TimedOut {
            limit: Duration::from_millis(300)
        }]
    );
    // The shell's child went with it (gone, or a zombie waiting for its reaper).
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = Path::new("/proc").join(pid.trim()).join("stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(&stat).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        });
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "sleep {} still runs", pid.trim());
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_drops_alerts_beyond_its_limit_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("go");
    let mut exec = AlertExec::new(
        format!("while [ ! -e {} ]; do sleep 0.02; done", quoted(&flag)),
        SCHEMA_VERSION,
    )
    .with_max_running(1);
    let alert = sample_alert();
    exec.run(&alert);
    exec.run(&alert);
    exec.run(&alert);
    assert_eq!(exec.running(), 1);
    std::fs::write(&flag, "").unwrap();
    assert!(exec.wait_idle(Duration::from_secs(30)));
    assert_eq!(
        exec.take_reports(),
        [ExecReport::Dropped {
            count: 2,
            max_running: 1
        }]
    );
    assert!(exec.take_reports().is_empty());
}

#[test]
fn exec_reports_the_first_failure_of_a_row_and_the_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let fail = dir.path().join("fail");
    std::fs::write(&fail, "").unwrap();
    let mut exec = AlertExec::new(
        format!("[ ! -e {} ] || exit 3", quoted(&fail)),
        SCHEMA_VERSION,
    );
    let alert = sample_alert();
    for _ in 0..3 {
        exec.run(&alert);
        assert!(exec.wait_idle(Duration::from_secs(30)));
    }
    let reports = exec.take_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    match &reports[0] {
        ExecReport::Exited { status } => assert_eq!(status.code(), Some(3)),
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(
        reports[0]
            .to_string()
            .contains("later failures are counted")
    );

    std::fs::remove_file(&fail).unwrap();
    exec.run(&alert);
    assert!(exec.wait_idle(Duration::from_secs(30)));
    assert_eq!(
        exec.take_reports(),
        [ExecReport::Recovered { unreported: 2 }]
    );
}
