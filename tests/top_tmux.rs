//! `flowmeter top` as a person sees it: the real binary in tmux at 80x24, metering real
//! traffic between two test namespaces. The screen must name the remote address, the
//! sending process and the remote's country; `q` must end it, restore nothing attached
//! to the interface, and exit 0. During a spoofed flood, it must name the flood's
//! source prefix and port.
//!
//! Needs root (the test fails without it) and tmux. tmux runs on a server socket of the
//! test's own, which the guard kills on every way out. Traffic never leaves the test's
//! namespaces.

mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, tc::TcAttachType};
use common::{
    FLOWMETER,
    netns::{Family, MAC_A, MAC_B, VethPair, require_root, unique_name},
    packets::{self, Random, RawSender, UdpHeaders},
    scene::{CountryScene, own_comm},
    tmux::{Tmux, wait_for_screen},
};

/// Longest wait for the console to end after `q`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The sender stops by itself after this long, whatever happens to the test.
const SEND_FOR: Duration = Duration::from_secs(40);

/// What the kernel has attached to the interface: XDP (ip link) and TCX programs
/// (asked from a thread inside the namespace, as `ip` does not list TCX links).
fn attached(pair: &VethPair) -> (bool, usize) {
    let link = pair.a.ip(&format!("-d link show dev {}", pair.a_if));
    let xdp = String::from_utf8_lossy(&link.stdout).contains("xdp");
    let iface = pair.a_if.clone();
    let tcx = pair.a.run(move || {
        [TcAttachType::Ingress, TcAttachType::Egress]
            .into_iter()
            .map(|direction| {
                SchedClassifier::query_tcx(&iface, direction)
                    .map(|(_, programs)| programs.len())
                    .unwrap_or_else(|e| panic!("querying TCX {direction:?} on {iface}: {e}"))
            })
            .sum()
    });
    (xdp, tcx)
}

#[test]
fn the_console_shows_host_process_and_country_and_q_detaches() {
    require_root();
    let CountryScene {
        pair,
        db,
        receiver,
        sender,
        remote,
    } = CountryScene::new();
    // A steady stream (about 800 kb/s), for a bounded time.
    let sending = Arc::new(AtomicBool::new(true));
    let sender_thread = {
        let sending = sending.clone();
        thread::spawn(move || {
            let started = Instant::now();
            while sending.load(Ordering::Relaxed) && started.elapsed() < SEND_FOR {
                let _ = sender.send_to(&[7; 1000], remote);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name());
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let stderr = scratch.join("stderr");
    let status = scratch.join("status");
    let command = format!(
        "ip netns exec '{}' '{FLOWMETER}' top --iface '{}' --geoip '{}' --home DE 2>'{}'; \
         echo $? >'{}'",
        pair.a.name(),
        pair.a_if,
        db.display(),
        stderr.display(),
        status.display(),
    );
    let tmux = Tmux::start(80, 24, &command);

    let comm = own_comm();
    let address = remote.ip().to_string();
    let screen = wait_for_screen(&tmux, "host, process and country", |screen| {
        screen.contains(&address) && screen.contains(&comm) && screen.contains(" NL ")
    });
    println!("{screen}");
    let line = screen
        .lines()
        .find(|line| line.contains(&address))
        .expect("the host's line");
    assert!(line.contains("=>"), "sent traffic on the first row: {line}");
    assert!(
        line.contains(" F"),
        "NL is outside --home DE: foreign: {line}"
    );
    let process_row = screen
        .lines()
        .skip_while(|line| !line.contains(&address))
        .nth(1)
        .expect("the host's second row");
    assert!(
        process_row.contains(&format!("{} {comm}", std::process::id())),
        "pid and name of the sender on the second row: {process_row}"
    );
    assert!(
        screen.contains("q:quit") || screen.contains("q quit"),
        "the keys are on screen:\n{screen}"
    );
    assert_ne!(
        attached(&pair),
        (false, 0),
        "metering while the console runs"
    );

    tmux.send_keys("q");
    let deadline = Instant::now() + QUIT_TIMEOUT;
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "still running {QUIT_TIMEOUT:?} after q:\n{}",
            tmux.capture()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(&status).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(status.trim(), "0", "exit status; stderr: {stderr}");
    assert!(stderr.trim().is_empty(), "nothing on stderr: {stderr}");

    // Links close with the process; give the kernel a moment to let go.
    let deadline = Instant::now() + Duration::from_secs(2);
    while attached(&pair) != (false, 0) {
        assert!(
            Instant::now() < deadline,
            "still attached after the console ended: {:?}",
            attached(&pair)
        );
        thread::sleep(Duration::from_millis(50));
    }

    sending.store(false, Ordering::Relaxed);
    sender_thread.join().expect("sender thread");
    drop(receiver);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_console_names_a_spoofed_flood_by_its_source_prefix_and_port() {
    require_root();
    let pair = VethPair::new(Family::V4);
    let (std::net::IpAddr::V4(a_ip), std::net::IpAddr::V4(b_ip)) = (pair.a_ip, pair.b_ip) else {
        panic!("an IPv4 pair");
    };
    let command = format!(
        "ip netns exec '{}' '{FLOWMETER}' top --iface '{}'",
        pair.a.name(),
        pair.a_if,
    );
    let tmux = Tmux::start(80, 24, &command);
    wait_for_screen(&tmux, "the console metering", |screen| {
        screen.contains(&b_ip.to_string()) || screen.contains("no traffic yet")
    });

    // Bursts of 20,000 one-packet flows from random hosts of 198.51.100.0/24 to udp/53,
    // until the banner names them (at most 20 bursts).
    let sender = pair.b.run(|| RawSender::bind(&pair.b_if));
    let mut random = Random::new(3);
    let flood = |random: &mut Random| {
        sender.send_udp(20_000, 18, |_| {
            let bits = random.next();
            UdpHeaders {
                dst_mac: packets::mac(MAC_A),
                src_mac: packets::mac(MAC_B),
                src: std::net::Ipv4Addr::new(198, 51, 100, bits as u8),
                dst: a_ip,
                src_port: (bits >> 16) as u16,
                dst_port: 53,
            }
        })
    };
    let named = |screen: &str| {
        screen.contains("FLOOD") && screen.contains("udp/53") && screen.contains("198.51.100.0/24")
    };
    let mut screen = tmux.capture();
    for _ in 0..20 {
        flood(&mut random);
        thread::sleep(Duration::from_millis(300));
        screen = tmux.capture();
        if named(&screen) {
            break;
        }
    }
    println!("{screen}");
    assert!(named(&screen), "the flood is named on screen:\n{screen}");
    let banner = screen
        .lines()
        .find(|line| line.contains("FLOOD"))
        .expect("the banner");
    assert!(banner.contains("new flows/s on "), "{banner}");
    tmux.send_keys("q");
    let deadline = Instant::now() + QUIT_TIMEOUT;
    while tmux.alive() {
        assert!(Instant::now() < deadline, "still running after q");
        thread::sleep(Duration::from_millis(50));
    }
}
