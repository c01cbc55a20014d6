//! The console's terminal goes away (the SSH or VNC session closes, the window is shut):
//! `top` gets SIGHUP and must end, detaching its programs, rather than run on without a
//! screen, also when it was started with hangups ignored (under `nohup`, or by a service
//! manager that ignores SIGHUP). Here `script` gives it a terminal and is killed, which
//! hangs the terminal up.
//!
//! Needs root (it fails without it). No traffic.

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{
    attach::{attached, wait_detached},
    console::{ScriptedConsole, top_pid},
    netns::{Family, VethPair},
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {TIMEOUT:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn top_ends_and_detaches_when_its_terminal_hangs_up() {
    let pair = VethPair::new(Family::V4);
    // Started with SIGHUP ignored: the console must notice the hangup itself (its own
    // SIGHUP handler, or the terminal read failing).
    let top = ScriptedConsole::start_after(
        "trap '' HUP;",
        &pair.a,
        &format!("--iface {} --interval 0.5", pair.a_if),
        "",
    );
    wait_for("top attached", || attached(&pair).tc_ingress == 1);
    let pid = top_pid(&pair.a_if).expect("the pid of flowmeter top");
    // Killing `script` closes the terminal's master side: the kernel hangs it up.
    drop(top);
    wait_for("flowmeter top ended after the hangup", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    wait_detached(&pair);
}
