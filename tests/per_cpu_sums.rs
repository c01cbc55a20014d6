//! The kernel counts per CPU and userspace sums the CPUs: the same traffic sent from a
//! sender pinned to CPU 0, to CPU 1, and free on both gives the same exact counts (on a
//! veth pair the receive runs on the sending CPU, so each round lands on other per-CPU
//! slots). A machine with one CPU cannot show it, and the test says so by failing.
//!
//! Needs root (it fails without it). Traffic never leaves the test's namespaces.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use common::{
    Flowmeter,
    netns::{Family, VethPair},
};

const DATAGRAMS: u64 = 300;
const PAYLOAD: usize = 200;
/// UDP over IPv4 in an Ethernet frame.
const FRAME: u64 = 14 + 20 + 8 + PAYLOAD as u64;

/// Pins the calling thread to `cpus`.
fn pin(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity({cpus:?}): {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn the_same_traffic_from_either_cpu_or_both_gives_the_same_counts() {
    // SAFETY: sysconf has no memory arguments.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert!(
        cpus >= 2,
        "needs at least 2 CPUs to pin senders apart, has {cpus}"
    );
    let pair = VethPair::new(Family::V4);
    let (a_ip, b_ip) = (pair.a_ip, pair.b_ip);
    let before = pair.wait_quiet();
    let _receiver = pair
        .a
        .run(|| UdpSocket::bind((a_ip, 9000)).expect("bind in a"));
    let flowmeter = Flowmeter::start_log(&pair.a, &format!("--iface {} --interval 0.5", pair.a_if));
    let rounds: [(&[usize], u16); 3] = [(&[0], 41000), (&[1], 41001), (&[0, 1], 41002)];
    for (cpus, port) in rounds {
        pair.b.run(|| {
            pin(cpus);
            let sender = UdpSocket::bind((b_ip, port)).expect("bind in b");
            for _ in 0..DATAGRAMS {
                sender.send_to(&[7; PAYLOAD], (a_ip, 9000)).expect("send");
            }
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    let (finished, counted) = flowmeter.stop_when_quiet(&pair, &before);
    let log = finished.log();
    log.assert_exact(&pair.a_if, counted);
    let local = SocketAddr::from((a_ip, 9000));
    let counts: Vec<(u64, u64)> = rounds
        .iter()
        .map(|&(cpus, port)| {
            let flow = log
                .flow(&pair.a_if, "udp", local, SocketAddr::from((b_ip, port)))
                .unwrap_or_else(|| panic!("the flow sent from CPUs {cpus:?}"));
            (flow.rx_packets, flow.rx_bytes)
        })
        .collect();
    assert_eq!(counts, [(DATAGRAMS, DATAGRAMS * FRAME); 3]);
}
