//! The flight recorder of `flowmeter log` and `flowmeter replay`, with the real binary on
//! a test veth pair: a burst over `--alert-rate` after quiet traffic starts an alert
//! whose record names a recording; the file holds the quiet seconds before the alert and
//! the burst's; once the burst is over and `log` stopped, `replay` in tmux at 80x24 shows
//! the burst's host and process at the alert's second, and its keys step exactly one
//! second and one minute. A truncated copy is shown up to the damage; a file that is no
//! recording is one line and exit status 1. A full disk under `--record-dir` (a tiny
//! tmpfs in a mount namespace of the test's own) is told once, metering goes on, and
//! recording resumes once space is freed.

mod common;

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{
    FLOWMETER, Flowmeter,
    geo::write_country_db,
    netns::{MAC_B, VethPair, require_root, unique_name},
    scene::own_comm,
    tmux::{Tmux, wait_for_screen},
};

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The quiet host, answering on the peer.
const QUIET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The burst's host: a second address of the peer.
const BURST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
const PORT: u16 = 9000;
/// Seconds written after the alert: more than the minute the test steps by.
const AFTER_S: u64 = 64;

/// A pair whose peer answers for the quiet and the burst's address; a country database
/// that puts them in NL and the local end in DE.
fn scene() -> (VethPair, PathBuf, [UdpSocket; 2], UdpSocket) {
    let pair = VethPair::with_ips(IpAddr::V4(LOCAL), IpAddr::V4(QUIET));
    pair.b.ip(&format!("addr add {BURST}/32 dev {}", pair.b_if));
    pair.a
        .ip(&format!("route add {BURST}/32 dev {}", pair.a_if));
    pair.a.ip(&format!(
        "neigh add {BURST} lladdr {MAC_B} dev {} nud permanent",
        pair.a_if
    ));
    let sinks = pair
        .b
        .run(|| [QUIET, BURST].map(|ip| UdpSocket::bind((ip, PORT)).expect("bind in b")));
    let sender = pair
        .a
        .run(|| UdpSocket::bind((LOCAL, 0)).expect("bind in a"));
    let db = write_country_db(&[("192.0.2.0/24", "DE"), ("198.51.100.0/24", "NL")]);
    (pair, db, sinks, sender)
}

/// Sends `per_second` datagrams of `size` bytes a second to `to` for `seconds`.
fn send(sender: &UdpSocket, to: Ipv4Addr, per_second: u32, size: usize, seconds: f64) {
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / f64::from(per_second));
    let payload = vec![7; size];
    while started.elapsed().as_secs_f64() < seconds {
        let _ = sender.send_to(&payload, SocketAddr::from((to, PORT)));
        thread::sleep(gap);
    }
}

fn scratch() -> PathBuf {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name());
    fs::create_dir_all(&scratch).expect("scratch directory");
    scratch
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// "alert +1m05s" → 65, "alert -3s" → -3: the header's offset from the alert's start.
fn offset(screen: &str) -> i64 {
    let header = screen.lines().next().unwrap_or_default();
    let text = header
        .split("alert ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no offset in the header: {header}"));
    let (sign, clock) = text.split_at(1);
    let (minutes, seconds) = match clock.split_once('m') {
        Some((m, s)) => (m.parse::<i64>().unwrap(), s),
        None => (0, clock),
    };
    let seconds: i64 = seconds.trim_end_matches('s').parse().unwrap();
    let total = minutes * 60 + seconds;
    if sign == "-" { -total } else { total }
}

/// The replay's header after `keys`, once its offset moved from `from`.
fn step(tmux: &Tmux, keys: &str, from: i64) -> i64 {
    tmux.send_keys(keys);
    let screen = wait_for_screen(tmux, "the header move", |screen| offset(screen) != from);
    offset(&screen)
}

#[test]
fn a_burst_is_recorded_before_and_after_its_alert_and_replayed() {
    require_root();
    let (pair, db, _sinks, sender) = scene();
    let scratch = scratch();
    let dir = scratch.join("recordings");
    let args = format!(
        "--iface {} --interval 1 --geoip {} --home DE --alert-rate 2M --alert-clear 2 \
         --record-window 20 --record-after {AFTER_S} --record-dir {}",
        pair.a_if,
        db.display(),
        dir.display()
    );
    let mut flowmeter = Flowmeter::start_log(&pair.a, &args);
    // Quiet: about 8 kbit/s for 8 s. Then the burst: about 16 Mbit/s for 4 s.
    send(&sender, QUIET, 10, 100, 8.0);
    send(&sender, BURST, 2000, 1000, 4.0);
    let alert = flowmeter
        .wait_for_line(Duration::from_secs(5), |line| {
            line["type"] == "alert" && line["phase"] == "start"
        })
        .expect("a rate alert while the burst lasts");
    let path = PathBuf::from(
        alert["recording"]
            .as_str()
            .unwrap_or_else(|| panic!("the alert names its recording: {alert}")),
    );
    assert_eq!(path.parent(), Some(dir.as_path()), "{alert}");
    // Quiet again, then stop while the recording is still open: it is closed whole.
    send(&sender, QUIET, 10, 100, 3.0);
    thread::sleep(Duration::from_secs(AFTER_S - 6));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);

    // The file: a header naming the alert, then seconds, the quiet ones before it.
    let recording = lines(&path);
    let header = &recording[0];
    assert_eq!(header["type"], "header");
    assert_eq!(header["format"], "flowmeter-recording");
    // The burst is foreign (NL, outside --home DE) and over the rate: both start at once.
    let marks = header["alerts"].as_array().unwrap();
    assert!(
        marks.iter().any(|mark| mark["kind"] == alert["kind"]),
        "{header}"
    );
    assert!(marks.iter().any(|mark| mark["kind"] == "rate"), "{header}");
    let alert_ms = marks
        .iter()
        .map(|m| m["at_ms"].as_u64().unwrap())
        .min()
        .unwrap();
    assert_eq!(
        alert["ts"], marks[0]["ts"],
        "the alert's second: {alert} {header}"
    );
    let seconds: Vec<&serde_json::Value> = recording[1..]
        .iter()
        .filter(|line| line["type"] == "second")
        .collect();
    let before: Vec<_> = seconds
        .iter()
        .filter(|s| s["at_ms"].as_u64().unwrap() < alert_ms)
        .collect();
    assert!(
        before.len() >= 5,
        "seconds before the alert: {}",
        before.len()
    );
    assert!(
        before
            .iter()
            .any(|s| s["remotes"][0]["ip"] == QUIET.to_string()),
        "the quiet host before the alert"
    );
    let at_alert = seconds
        .iter()
        .find(|s| s["at_ms"].as_u64().unwrap() == alert_ms)
        .expect("the alert's second");
    assert_eq!(
        at_alert["remotes"][0]["ip"],
        BURST.to_string(),
        "{at_alert}"
    );
    assert_eq!(at_alert["remotes"][0]["place"], "NL");
    let pid = at_alert["remotes"][0]["parts"][0]["pid"].as_u64().unwrap();
    assert_eq!(pid, u64::from(std::process::id()));
    let comm = own_comm();
    assert!(
        at_alert["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid && p["comm"] == comm.as_str())
    );
    let iface = &at_alert["interfaces"][0];
    assert_eq!(iface["iface"], pair.a_if.as_str());
    assert!(iface["tx_bytes"].as_u64().unwrap() > 1_000_000, "{iface}");
    let span_s = (seconds.last().unwrap()["at_ms"].as_u64().unwrap() - alert_ms) / 1000;
    assert!(
        span_s >= 61,
        "a minute after the alert to step through: {span_s} s"
    );

    // The replay, long after the burst: the burst's host and process at the alert.
    let stderr = scratch.join("stderr");
    let status = scratch.join("status");
    let replay = |file: &Path| {
        Tmux::start(
            80,
            24,
            &format!(
                "'{FLOWMETER}' replay '{}' 2>'{}'; echo $? >'{}'",
                file.display(),
                stderr.display(),
                status.display()
            ),
        )
    };
    let tmux = replay(&path);
    let process = format!("{} {comm}", std::process::id());
    let screen = wait_for_screen(&tmux, "the burst's host and process", |screen| {
        screen.contains("REPLAY")
            && screen.contains(&BURST.to_string())
            && screen.contains(&process)
    });
    println!("{screen}");
    assert_eq!(offset(&screen), 0, "it opens on the alert's start");
    let burst_row = screen
        .lines()
        .position(|line| line.contains(&BURST.to_string()))
        .unwrap();
    assert!(
        screen
            .lines()
            .nth(burst_row + 1)
            .unwrap()
            .contains(&process),
        "{screen}"
    );
    assert!(
        screen.lines().nth(burst_row).unwrap().contains(" NL "),
        "{screen}"
    );
    // One second forward, two back, a minute forward and back, then the alert's start.
    assert_eq!(step(&tmux, "]", 0), 1);
    assert_eq!(step(&tmux, "[", 1), 0);
    assert_eq!(step(&tmux, "[", 0), -1);
    assert_eq!(step(&tmux, "}", -1), 59);
    assert_eq!(step(&tmux, "{", 59), -1);
    assert_eq!(step(&tmux, "a", -1), 0);
    // Seconds before the alert show the quiet host and not the burst's.
    assert_eq!(step(&tmux, "[", 0), -1);
    assert_eq!(step(&tmux, "[", -1), -2);
    assert_eq!(step(&tmux, "[", -2), -3);
    let quiet = tmux.capture();
    assert!(quiet.contains(&QUIET.to_string()), "{quiet}");
    assert!(!quiet.contains(&BURST.to_string()), "{quiet}");
    tmux.send_keys("q");
    wait_for_screen(&tmux, "the replay's end", |_| {
        fs::read_to_string(&status).is_ok_and(|s| !s.is_empty())
    });
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "0");
    drop(tmux);

    // A copy cut in its last line: shown up to the damage, said once it is closed.
    let cut = scratch.join("cut.jsonl");
    let bytes = fs::read(&path).unwrap();
    fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    fs::remove_file(&status).unwrap();
    let tmux = replay(&cut);
    wait_for_screen(&tmux, "a damaged recording", |screen| {
        screen
            .lines()
            .next()
            .unwrap_or_default()
            .contains("DAMAGED")
    });
    tmux.send_keys("q");
    wait_for_screen(&tmux, "the replay's end", |_| {
        fs::read_to_string(&status).is_ok_and(|s| !s.is_empty())
    });
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "0");
    let said = fs::read_to_string(&stderr).unwrap();
    assert!(said.contains("damaged at line"), "{said}");

    // Not a recording, or no file: one line, status 1, before any screen.
    for file in [db.as_path(), &scratch.join("missing.jsonl")] {
        let output = Command::new(FLOWMETER)
            .args(["replay", &file.display().to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.contains("not a flowmeter recording") || said.contains("cannot read"),
            "{said}"
        );
    }
}

#[test]
fn a_full_disk_for_recordings_is_told_once_and_metering_goes_on() {
    require_root();
    let (pair, db, _sinks, sender) = scene();
    let scratch = scratch();
    let dir = scratch.join("tiny");
    fs::create_dir_all(&dir).unwrap();
    let log = scratch.join("log.jsonl");
    let stderr = scratch.join("stderr");
    // A 64 KiB tmpfs in a mount namespace of this test's own (never the host's), filled
    // before flowmeter starts.
    let command = format!(
        "mount -t tmpfs -o size=64k flowmeter-test '{dir}' && \
         (dd if=/dev/zero of='{dir}/filler' bs=4k 2>/dev/null; true) && \
         exec ip netns exec '{ns}' '{FLOWMETER}' log --iface {iface} --interval 0.5 \
         --geoip '{db}' --alert-rate 2M --alert-clear 1 --record-window 5 \
         --record-after 30 --record-dir '{dir}/rec' --control-socket none --output '{log}'",
        dir = dir.display(),
        ns = pair.a.name(),
        iface = pair.a_if,
        db = db.display(),
        log = log.display(),
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &command])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("unshare (util-linux)");
    struct Killed<'a>(&'a mut std::process::Child);
    impl Drop for Killed<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let guard = Killed(&mut child);
    common::wait_for_start_record(&log, Duration::from_secs(30));
    let count = |kind: &str, event: Option<&str>| {
        lines(&log)
            .iter()
            .filter(|l| l["type"] == kind && event.is_none_or(|e| l["event"] == e))
            .count()
    };
    // A burst starts an alert; the recording's writes fail on the full tmpfs.
    send(&sender, BURST, 2000, 1000, 3.0);
    send(&sender, QUIET, 10, 100, 3.0);
    let totals_then = count("totals", None);
    send(&sender, QUIET, 10, 100, 3.0);
    assert!(count("totals", None) >= totals_then + 4, "metering goes on");
    assert_eq!(count("recorder", Some("write_failed")), 1, "told once");
    let alert = lines(&log)
        .into_iter()
        .find(|l| l["type"] == "alert" && l["phase"] == "start")
        .expect("the burst's alert");
    let recording = alert["recording"]
        .as_str()
        .expect("the alert names the file")
        .to_owned();
    // Space comes back (through flowmeter's own view of its mount namespace): it resumes.
    fs::remove_file(format!("/proc/{pid}/root{}/filler", dir.display())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("recorder", Some("resumed")) == 0 {
        assert!(Instant::now() < deadline, "no resumed record");
        thread::sleep(Duration::from_millis(200));
    }
    let inside = format!("/proc/{pid}/root{recording}");
    let written = fs::read_to_string(&inside).unwrap();
    // SAFETY: kill has no memory preconditions; pid is our unreaped child, flowmeter.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let status = guard.0.wait().unwrap();
    drop(guard);
    assert!(status.success(), "{}", fs::read_to_string(&stderr).unwrap());
    let said = fs::read_to_string(&stderr).unwrap();
    assert_eq!(said.matches("cannot write").count(), 1, "{said}");
    // What was written after the space came back: the header first, whole lines.
    let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "header");
    assert!(written.ends_with('\n'));
    for line in written.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}
