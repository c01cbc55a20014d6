//! `top` beside a running `flowmeter log`, with the real binary on a test veth pair:
//! the log serves its view on a `--control-socket` in the test's own directory; a burst
//! sent and ended before `top` starts is on top's screen at its second once stepped
//! back to; `top` attaches no program of its own (still exactly the log's one TCX
//! program each way), and the totals it shows are the log's `totals` records. With
//! `--standalone` it attaches its own beside the log's and meters as before.

mod common;

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant, SystemTime},
};

use common::{
    FLOWMETER, Flowmeter,
    attach::attached,
    netns::{VethPair, require_root, unique_name},
    tmux::{Tmux, wait_for_screen},
};
use flowmeter::console::units::amount;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BURST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const PORT: u16 = 9000;

fn scratch() -> PathBuf {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name());
    fs::create_dir_all(&scratch).expect("scratch directory");
    scratch
}

/// `top ARGS` in the metered namespace, in tmux at 80x24; its stderr and exit status
/// go to files in `scratch`.
fn top(pair: &VethPair, scratch: &Path, args: &str) -> Tmux {
    let _ = fs::remove_file(scratch.join("status"));
    Tmux::start(
        80,
        24,
        &format!(
            "ip netns exec '{}' '{FLOWMETER}' top --iface {} {args} 2>'{}'; echo $? >'{}'",
            pair.a.name(),
            pair.a_if,
            scratch.join("stderr").display(),
            scratch.join("status").display()
        ),
    )
}

/// Quits `tmux`'s top with q; its exit status and stderr.
fn quit(tmux: Tmux, scratch: &Path) -> (String, String) {
    tmux.send_keys("q");
    let status = scratch.join("status");
    wait_for_screen(&tmux, "top's end", |_| {
        fs::read_to_string(&status).is_ok_and(|s| !s.is_empty())
    });
    let stderr = fs::read_to_string(scratch.join("stderr")).unwrap_or_default();
    (
        fs::read_to_string(&status).unwrap().trim().to_owned(),
        stderr,
    )
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default()
}

/// The header's "2026-12-03 19:20:01": the second shown.
fn shown_second(screen: &str) -> String {
    let header = header(screen);
    let start = header
        .find(" 20")
        .map(|at| at + 1)
        .unwrap_or_else(|| panic!("no time in the header: {header}"));
    header[start..start + 19].to_owned()
}

/// A time as the header writes it (UTC).
fn wall(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap()
}

/// A log record's `ts` as the header writes it.
fn second_of(ts: &str) -> String {
    ts[..19].replace('T', " ")
}

/// The TX line's cum column (bytes).
fn tx_cum(screen: &str) -> String {
    let line = screen
        .lines()
        .find(|line| line.starts_with(" TX sent"))
        .unwrap_or_else(|| panic!("no TX line:\n{screen}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    // TX sent => 2s 10s 40s cum peak
    words[6].to_owned()
}

#[test]
fn top_shows_the_services_view_and_its_look_back_without_attaching() {
    require_root();
    let pair = VethPair::with_ips(IpAddr::V4(LOCAL), IpAddr::V4(BURST));
    let _sink = pair
        .b
        .run(|| UdpSocket::bind((BURST, PORT)).expect("bind in b"));
    let sender = pair
        .a
        .run(|| UdpSocket::bind((LOCAL, 0)).expect("bind in a"));
    let scratch = scratch();
    // A directory that does not exist yet: the log makes it, 0700.
    let socket = scratch.join("run/log.sock");
    let log = Flowmeter::start_log(
        &pair.a,
        &format!(
            "--iface {} --interval 1 --record-window 120 --record-dir {} --control-socket {}",
            pair.a_if,
            scratch.join("recordings").display(),
            socket.display()
        ),
    );
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);
    let only_the_logs = attached(&pair);
    assert_eq!(
        (only_the_logs.tc_ingress, only_the_logs.tc_egress),
        (1, 1),
        "{only_the_logs:?}"
    );

    // The burst: 100 datagrams of 1000 bytes a second for 3 s, over before top starts.
    let payload = [7u8; 1000];
    for _ in 0..300 {
        let _ = sender.send_to(&payload, SocketAddr::from((BURST, PORT)));
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_secs(3));
    let top_started = wall(SystemTime::now());

    let tmux = top(
        &pair,
        &scratch,
        &format!("--control-socket {}", socket.display()),
    );
    let live = format!("from flowmeter log (pid {}), live", log.pid());
    let screen = wait_for_screen(&tmux, "the service's live view", |screen| {
        header(screen).contains(&live)
    });
    println!("{screen}");
    assert_eq!(attached(&pair), only_the_logs, "top attached nothing");

    // Back to the oldest second, then forward one at a time to the newest: each
    // second's screen, for the log's records to judge once it has stopped.
    tmux.send_keys("{");
    let mut screen = wait_for_screen(&tmux, "the oldest second", |screen| {
        header(screen).contains(" ago ")
    });
    let mut seen = Vec::new();
    while !header(&screen).contains(&live) {
        assert!(seen.len() < 60, "never back to live:\n{screen}");
        let from = shown_second(&screen);
        seen.push((from.clone(), screen));
        tmux.send_keys("]");
        screen = wait_for_screen(&tmux, "the next second", |screen| {
            shown_second(screen) != from
        });
    }
    tmux.send_keys("[");
    wait_for_screen(&tmux, "a second back", |screen| {
        header(screen).contains(" ago ")
    });
    // L: live again.
    tmux.send_keys("L");
    wait_for_screen(&tmux, "live again", |screen| header(screen).contains(&live));
    let (status, stderr) = quit(tmux, &scratch);
    assert_eq!(status, "0", "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    assert_eq!(attached(&pair), only_the_logs, "the log's programs stay");

    // --standalone: its own programs beside the log's, metering as today.
    let tmux = top(
        &pair,
        &scratch,
        &format!("--standalone --control-socket {}", socket.display()),
    );
    let own = format!("flowmeter {} ", pair.a_if);
    wait_for_screen(&tmux, "top metering on its own", |screen| {
        header(screen).starts_with(&own) && screen.contains(" TX sent")
    });
    let both = attached(&pair);
    assert_eq!((both.tc_ingress, both.tc_egress), (2, 2), "{both:?}");
    let (status, stderr) = quit(tmux, &scratch);
    assert_eq!(status, "0", "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while attached(&pair) != only_the_logs {
        assert!(Instant::now() < deadline, "{:?}", attached(&pair));
        thread::sleep(Duration::from_millis(50));
    }

    // The log's records: the burst's seconds (over 50 kB sent) were before top
    // started, and top showed them with the burst's host on top; every second shown
    // had the log's totals summed to it as its TX cum; none before the burst showed
    // its host.
    let finished = log.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(!socket.exists(), "the log removes its socket");
    let records = finished.log();
    let totals: Vec<(String, u64)> = records
        .of_type("totals")
        .into_iter()
        .filter(|t| t["iface"] == pair.a_if.as_str())
        .map(|t| {
            (
                second_of(t["ts"].as_str().unwrap()),
                t["tx_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let burst: Vec<&String> = totals
        .iter()
        .filter(|(_, sent)| *sent > 50_000)
        .map(|(second, _)| second)
        .collect();
    assert!(burst.len() >= 2, "the burst's seconds: {totals:?}");
    let mut checked = 0;
    for (second, screen) in &seen {
        let sent: u64 = totals
            .iter()
            .filter(|(at, _)| at <= second)
            .map(|(_, sent)| sent)
            .sum();
        assert_eq!(
            tx_cum(screen),
            amount(sent),
            "TX cum at {second}:\n{screen}"
        );
        let host_on_top = screen
            .lines()
            .nth(2)
            .is_some_and(|line| line.contains(&BURST.to_string()));
        if burst.contains(&second) {
            assert!(
                second < &top_started,
                "{second}: before top ({top_started})"
            );
            assert!(host_on_top, "the burst's host at {second}:\n{screen}");
            checked += 1;
        }
        if second < burst[0] {
            assert!(!screen.contains(&BURST.to_string()), "{second}:\n{screen}");
        }
    }
    assert_eq!(
        checked,
        burst.len(),
        "every burst second was stepped through"
    );
}
