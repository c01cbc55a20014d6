//! What flowmeter has attached to a veth pair's metered end (`a_if`), asked of the
//! kernel (ip, bpftool, and a TCX query from inside the namespace): for the tests that
//! check that nothing stays attached, however flowmeter ends.

use std::{
    thread,
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, tc::TcAttachType};

use super::netns::VethPair;

/// What is attached to `a_if`, as the kernel reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct Attached {
    /// An XDP program, any mode.
    pub xdp: bool,
    /// Programs on the TCX ingress and egress hooks.
    pub tc_ingress: usize,
    pub tc_egress: usize,
}

pub fn attached(pair: &VethPair) -> Attached {
    let link = pair.a.ip(&format!("-d link show dev {}", pair.a_if));
    let link = String::from_utf8_lossy(&link.stdout);

    // bpftool 7.1 lists XDP and netlink tc filters, but not TCX links.
    let net = pair
        .a
        .exec("bpftool", &["-j", "net", "show", "dev", &pair.a_if]);
    assert!(net.status.success(), "bpftool net show: {net:?}");
    let net: serde_json::Value = serde_json::from_slice(&net.stdout).expect("bpftool prints JSON");
    let listed = |kind: &str| {
        net.as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry[kind].as_array())
            .map(Vec::len)
            .sum::<usize>()
    };
    let bpftool_xdp = listed("xdp");
    let bpftool_tc = listed("tc") + listed("tcx");
    assert_eq!(
        link.contains("xdp"),
        bpftool_xdp > 0,
        "ip and bpftool disagree about XDP: {link} / {net}"
    );

    // So ask the kernel for TCX programs directly, from inside the namespace.
    let iface = pair.a_if.clone();
    let (tc_ingress, tc_egress) = pair.a.run(move || {
        let count = |direction| {
            SchedClassifier::query_tcx(&iface, direction)
                .map(|(_, programs)| programs.len())
                .unwrap_or_else(|e| panic!("querying TCX {direction:?} on {iface}: {e}"))
        };
        (count(TcAttachType::Ingress), count(TcAttachType::Egress))
    });
    Attached {
        xdp: bpftool_xdp > 0,
        tc_ingress: tc_ingress + bpftool_tc,
        tc_egress,
    }
}

/// Waits (at most 2 s: closing links is not instant after SIGKILL) until nothing is
/// attached to `a_if`.
pub fn wait_detached(pair: &VethPair) {
    let nothing = Attached {
        xdp: false,
        tc_ingress: 0,
        tc_egress: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = attached(pair);
        if now == nothing {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still attached after flowmeter ended: {now:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
