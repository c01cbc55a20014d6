//! Every byte to its process (issue 15), with the real binary and real processes:
//!
//! - a "container": a process in its own network namespace and cgroup (named as docker
//!   names its containers'), behind a bridge and a MASQUERADE rule of the test's "host"
//!   namespace; flowmeter meters the host's outward interface, where the container's
//!   flows carry the host's address, and must name that process and its container with
//!   exact bytes;
//! - 200 TCP connections of about 20 ms and 200 single UDP datagrams, each from a
//!   process of its own that is gone before flowmeter looks: at least 99% of their bytes
//!   to the right pid and comm;
//! - a pid reused by a new process after the old one exited: the flow keeps the old one;
//! - without the kernel's socket records, attribution falls back to /proc with one
//!   warning, and the coverage figure of the `totals` records shows the difference.
//!
//! Each talker says its own pid in its first bytes; the listeners note which peer said
//! which pid, so the right owner of every flow is known without asking flowmeter. Needs
//! root; fails without it. Traffic stays in the test's namespaces.

mod common;

use std::{
    collections::HashMap,
    ffi::CString,
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::Child,
    thread,
    time::Duration,
};

use common::{
    Flowmeter, Log,
    cgroup::DockerCgroup,
    netns::{Netns, VethPair},
    talkers::{Listeners, Proto, Talker, open_gate, tcp_script, udp_script, wait_ok},
};

const INTERVAL: &str = "0.25";
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 9000;
const HOST_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const CONTAINER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// The "host" (`a`, whose outward interface `a_if` flowmeter meters) and the "remote"
/// (`b`) it talks to.
fn host_and_remote() -> VethPair {
    VethPair::with_ips(HOST_IP.into(), REMOTE_IP.into())
}

// ---------------------------------------------------------------------------------
// The container behind NAT.

/// A namespace behind a bridge of `host`, whose traffic out of `outward` is
/// masqueraded to the host's address.
struct Container {
    netns: Netns,
}

impl Container {
    fn behind_nat(host: &Netns, outward: &str) -> Self {
        let netns = Netns::new(format!("{}-c", host.name()));
        host.ip("link add br0 type bridge");
        host.ip(&format!(
            "link add cv0 type veth peer name c0 netns {}",
            netns.name()
        ));
        host.ip("link set cv0 master br0");
        host.ip(&format!("addr add {BRIDGE_IP}/24 dev br0"));
        host.ip("link set br0 up");
        host.ip("link set cv0 up");
        netns.ip(&format!("addr add {CONTAINER_IP}/24 dev c0"));
        netns.ip("link set c0 up");
        netns.ip(&format!("route add default via {BRIDGE_IP}"));
        host.set_offloads("cv0", false);
        netns.set_offloads("c0", false);
        host.sysctl(&["net.ipv4.ip_forward=1"]);
        for rule in [
            "add table ip flowmeter_test".to_owned(),
            "add chain ip flowmeter_test post { type nat hook postrouting priority srcnat ; }"
                .to_owned(),
            format!("add rule ip flowmeter_test post oifname \"{outward}\" masquerade"),
        ] {
            let output = host.exec("nft", &[&rule]);
            assert!(
                output.status.success(),
                "nft {rule}: {} (is nftables installed? `cargo xtask setup` installs it)",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Self { netns }
    }
}

#[test]
fn a_containers_natted_flows_name_its_process_and_container_with_exact_bytes() {
    let pair = host_and_remote();
    let container = Container::behind_nat(&pair.a, &pair.a_if);
    let cgroup = DockerCgroup::new();
    let listeners = Listeners::start(&pair.b, REMOTE_IP.into(), TCP_PORT, UDP_PORT);
    let talker = Talker::new("cnt-talker");
    let before = pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --interval {INTERVAL}", pair.a_if),
    );

    // Moved into its cgroup first, then a TCP connection with 5,000 bytes and five UDP
    // datagrams, both held open for a few intervals, then closed.
    let script = format!(
        "exec 3<>/dev/tcp/{tcp_ip}/{tcp_port} && \
         printf 'pid %d %5000s\\n' $$ '' >&3 && exec 4>/dev/udp/{udp_ip}/{udp_port} && \
         for i in 1 2 3 4 5; do printf 'pid %d %300s\\n' $$ '' >&4; done && \
         {{ read -t 1.5 -u 3; exec 3>&- 4>&-; }}",
        tcp_ip = listeners.tcp.ip(),
        tcp_port = listeners.tcp.port(),
        udp_ip = listeners.udp.ip(),
        udp_port = listeners.udp.port(),
    );
    let mut child = talker.spawn_gated(&container.netns, &script);
    let pid = child.id();
    fs::write(cgroup.procs(), pid.to_string()).expect("moving the talker into its cgroup");
    open_gate(&mut child);
    wait_ok(child, "the container's talker");
    let counted = pair.wait_quiet().since(&before);
    // Two more reads after the last packet, so every flow's last record is written.
    thread::sleep(Duration::from_millis(600));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");
    let log = finished.log();

    // What the remote heard came from the host's address: the traffic was NATed.
    let heard = listeners.heard();
    assert_eq!(heard.len(), 2, "one TCP and one UDP peer: {heard:?}");
    for ((_, peer), said) in &heard {
        assert_eq!(peer.ip(), IpAddr::V4(HOST_IP), "{heard:?}");
        assert!(said.iter().all(|&said| said == pid), "{heard:?}");
    }

    log.assert_exact(&pair.a_if, counted);
    let flows: Vec<&serde_json::Value> = log
        .of_type("flow")
        .into_iter()
        .filter(|flow| flow["iface"] == pair.a_if.as_str())
        .collect();
    let mut protos = Vec::new();
    for flow in &flows {
        assert_eq!(flow["remote_ip"], REMOTE_IP.to_string(), "{flow}");
        assert_eq!(flow["local_ip"], HOST_IP.to_string(), "{flow}");
        assert_eq!(flow["owner"], "process", "{flow}");
        assert_eq!(flow["pid"], pid, "{flow}");
        assert_eq!(flow["comm"], "cnt-talker", "{flow}");
        assert_eq!(flow["container"], cgroup.label().as_str(), "{flow}");
        protos.push(flow["proto"].as_str().unwrap_or_default().to_owned());
    }
    protos.sort();
    protos.dedup();
    assert_eq!(protos, ["tcp", "udp"], "{flows:?}");
    // Every byte on the outward interface is the container's, in its process's flows.
    let flow_bytes: u64 = flows.iter().map(|flow| bytes(flow)).sum();
    assert_eq!(flow_bytes, counted.rx_bytes + counted.tx_bytes);
    let coverage = Coverage::of(&log, &pair.a_if);
    println!("container behind NAT: {coverage}");
    // Each interval's totals tell it as it was then: a flow that moved only while its
    // first lookup (conntrack, the kernel's record, every namespace) was still running
    // is `resolving` there; its record above has the process. No other reason.
    assert_eq!(
        coverage.process_bytes + coverage.resolving,
        flow_bytes,
        "{coverage}"
    );
}

// ---------------------------------------------------------------------------------
// Short-lived connections.

const SHORT_TCP: usize = 200;
const SHORT_UDP: usize = 200;
/// How long each TCP connection stays open, in ms.
const TCP_HOLD_MS: u32 = 20;
/// Talkers alive at once.
const AT_ONCE: usize = 8;

#[test]
fn short_lived_connections_are_attributed_to_their_processes() {
    let run = short_lived_run(Hooks::Kernel);
    println!("short-lived, kernel records: {run}");
    assert!(
        run.warnings.is_empty(),
        "no fallback warning with the kernel's records: {:?}",
        run.warnings
    );
    assert!(
        run.right_bytes * 100 >= run.talker_bytes * 99,
        "at least 99% of the talkers' bytes to the right pid and comm: {run}"
    );
}

#[test]
fn without_the_kernel_records_attribution_falls_back_to_proc_with_one_warning() {
    let fallback = short_lived_run(Hooks::Unavailable);
    println!("short-lived, /proc only: {fallback}");
    assert_eq!(
        fallback.warnings.len(),
        1,
        "one warning says why: {:?}",
        fallback.warnings
    );
    assert!(
        fallback.warnings[0].contains("falls back to /proc"),
        "{:?}",
        fallback.warnings
    );
    // /proc sees a socket only while it lives: most of these are gone when it looks,
    // and the coverage figure says so.
    let kernel = short_lived_run(Hooks::Kernel);
    println!("short-lived, kernel records: {kernel}");
    assert!(
        fallback.coverage.share() < kernel.coverage.share(),
        "/proc only {} < kernel records {}",
        fallback.coverage,
        kernel.coverage
    );
    assert!(
        fallback.coverage.socket_gone > 0,
        "the rest is told as socket gone: {}",
        fallback.coverage
    );
}

/// Whether flowmeter may use the kernel's socket records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hooks {
    Kernel,
    Unavailable,
}

/// 200 short TCP connections and 200 datagrams, each from a process of its own in the
/// host namespace, metered on its outward interface.
fn short_lived_run(hooks: Hooks) -> ShortLived {
    let pair = host_and_remote();
    let listeners = Listeners::start(&pair.b, REMOTE_IP.into(), TCP_PORT, UDP_PORT);
    let talker = Talker::new("fm-short");
    pair.wait_quiet();
    let args = format!("--iface {} --interval {INTERVAL}", pair.a_if);
    let flowmeter = match hooks {
        Hooks::Kernel => Flowmeter::start_log(&pair.a, &args),
        Hooks::Unavailable => Flowmeter::start_log_without_socket_hooks(&pair.a, &args),
    };
    let scripts = (0..SHORT_TCP)
        .map(|_| tcp_script(listeners.tcp, TCP_HOLD_MS))
        .chain((0..SHORT_UDP).map(|n| udp_script(listeners.udp, n % 64)));
    let mut running: Vec<Child> = Vec::new();
    for script in scripts {
        if running.len() == AT_ONCE {
            wait_ok(running.remove(0), "a talker");
        }
        running.push(talker.spawn(&pair.a, &script));
    }
    for child in running {
        wait_ok(child, "a talker");
    }
    pair.wait_quiet();
    thread::sleep(Duration::from_millis(600));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");
    let heard = listeners.heard();
    let talkers: usize = heard.values().map(Vec::len).sum();
    assert_eq!(talkers, SHORT_TCP + SHORT_UDP, "every talker was heard");
    // A UDP port a later talker drew again makes one flow of two processes: whose
    // bytes are whose cannot be told, so such flows are left out of the count.
    let reused_ports = heard.values().filter(|said| said.len() > 1).count();
    assert!(
        reused_ports <= 10,
        "{reused_ports} ports drawn twice: {heard:?}"
    );
    let log = finished.log();
    let (right_bytes, talker_bytes) = attributed(&log, &pair.a_if, &heard, &talker.comm);
    ShortLived {
        reused_ports,
        right_bytes,
        talker_bytes,
        coverage: Coverage::of(&log, &pair.a_if),
        warnings: finished
            .stderr_lines()
            .into_iter()
            .filter(|line| line.contains("process attribution"))
            .map(str::to_owned)
            .collect(),
    }
}

struct ShortLived {
    /// Local ports two talkers drew, whose flows are left out.
    reused_ports: usize,
    /// Bytes of the talkers' flows whose record names the pid its talker said, and its comm.
    right_bytes: u64,
    talker_bytes: u64,
    coverage: Coverage,
    warnings: Vec<String>,
}

impl std::fmt::Display for ShortLived {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} of {} bytes ({:.1}%) to the right pid and comm ({} ports drawn twice left \
             out); totals: {}",
            self.right_bytes,
            self.talker_bytes,
            100.0 * self.right_bytes as f64 / self.talker_bytes.max(1) as f64,
            self.reused_ports,
            self.coverage
        )
    }
}

/// (bytes whose record names the pid its peer said and `comm`, all bytes) of the flow
/// records on `iface` whose local end a listener heard from one talker.
fn attributed(
    log: &Log,
    iface: &str,
    heard: &HashMap<(Proto, SocketAddr), Vec<u32>>,
    comm: &str,
) -> (u64, u64) {
    let (mut right, mut all) = (0, 0);
    for flow in log.of_type("flow") {
        if flow["iface"] != iface {
            continue;
        }
        let proto = match flow["proto"].as_str() {
            Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            _ => continue,
        };
        let local = SocketAddr::new(
            flow["local_ip"].as_str().unwrap().parse().unwrap(),
            flow["local_port"].as_u64().unwrap() as u16,
        );
        let Some(&[said]) = heard.get(&(proto, local)).map(Vec::as_slice) else {
            continue;
        };
        all += bytes(flow);
        if flow["pid"] == said && flow["comm"] == comm {
            right += bytes(flow);
        }
    }
    (right, all)
}

fn bytes(flow: &serde_json::Value) -> u64 {
    flow["rx_bytes"].as_u64().unwrap() + flow["tx_bytes"].as_u64().unwrap()
}

/// The `totals` records' coverage figures summed over a run.
#[derive(Debug, Default)]
struct Coverage {
    process_bytes: u64,
    flow_bytes: u64,
    forwarded: u64,
    kernel_answered: u64,
    socket_gone: u64,
    namespace_hidden: u64,
    resolving: u64,
}

impl Coverage {
    fn of(log: &Log, iface: &str) -> Self {
        let mut sum = Self::default();
        for totals in log.of_type("totals") {
            if totals["iface"] != iface {
                continue;
            }
            let field = |name: &str| {
                totals[name]
                    .as_u64()
                    .unwrap_or_else(|| panic!("totals without {name}: {totals}"))
            };
            let rest = |name: &str| {
                totals["no_process_bytes"][name]
                    .as_u64()
                    .unwrap_or_else(|| panic!("totals without no_process_bytes.{name}: {totals}"))
            };
            let moved = field("rx_bytes") + field("tx_bytes")
                - field("rx_unattributed_bytes")
                - field("tx_unattributed_bytes");
            sum.flow_bytes += moved;
            sum.process_bytes += field("process_bytes");
            sum.forwarded += rest("forwarded");
            sum.kernel_answered += rest("kernel_answered");
            sum.socket_gone += rest("socket_gone");
            sum.namespace_hidden += rest("namespace_hidden");
            sum.resolving += rest("resolving");
        }
        let told = sum.process_bytes
            + sum.forwarded
            + sum.kernel_answered
            + sum.socket_gone
            + sum.namespace_hidden
            + sum.resolving;
        assert_eq!(
            told, sum.flow_bytes,
            "every byte in a flow is told: {sum:?}"
        );
        sum
    }

    fn share(&self) -> f64 {
        self.process_bytes as f64 / self.flow_bytes.max(1) as f64
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "processes {:.1}% of {} bytes (socket gone {}, kernel-answered {}, forwarded {}, \
             hidden {}, resolving {})",
            100.0 * self.share(),
            self.flow_bytes,
            self.socket_gone,
            self.kernel_answered,
            self.forwarded,
            self.namespace_hidden,
            self.resolving
        )
    }
}

// ---------------------------------------------------------------------------------
// A reused pid.

#[test]
fn a_reused_pid_is_not_taken_for_the_process_that_had_it() {
    let pair = host_and_remote();
    let listeners = Listeners::start(&pair.b, REMOTE_IP.into(), TCP_PORT, UDP_PORT);
    let old = Talker::new("fm-old");
    let new = Talker::new("fm-new");
    pair.wait_quiet();
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!("--iface {} --interval {INTERVAL}", pair.a_if),
    );
    // Stopped, flowmeter reads nothing while the pid changes hands; its kernel programs
    // still count and record.
    flowmeter.signal(libc::SIGSTOP);
    let child = old.spawn(&pair.a, &udp_script(listeners.udp, 100));
    let pid = child.id();
    wait_ok(child, "the old talker");
    let successor = Successor::spawn(pid, &new);
    flowmeter.signal(libc::SIGCONT);
    pair.wait_quiet();
    thread::sleep(Duration::from_millis(800));
    let finished = flowmeter.stop();
    drop(successor);
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");

    let heard = listeners.heard();
    assert_eq!(
        heard.values().collect::<Vec<_>>(),
        [&vec![pid]],
        "{heard:?}"
    );
    let log = finished.log();
    let flows: Vec<&serde_json::Value> = log
        .of_type("flow")
        .into_iter()
        .filter(|flow| flow["iface"] == pair.a_if.as_str() && flow["proto"] == "udp")
        .collect();
    assert!(!flows.is_empty(), "the datagram's flow: {:?}", log.records);
    let new_exe = new.path.display().to_string();
    for flow in flows {
        assert_eq!(flow["pid"], pid, "{flow}");
        assert_eq!(flow["comm"], "fm-old", "{flow}");
        assert_ne!(flow["exe"], new_exe.as_str(), "{flow}");
        assert!(!flow["cmdline"].to_string().contains("fm-new"), "{flow}");
    }
}

/// A process made with a given pid (clone3's `set_tid`), running `talker -c 'read -t 30'`,
/// killed and reaped on drop.
struct Successor {
    pid: i32,
}

/// `struct clone_args` of clone3(2), up to `set_tid_size`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

impl Successor {
    fn spawn(pid: u32, talker: &Talker) -> Self {
        let path = CString::new(talker.path.as_os_str().as_encoded_bytes()).unwrap();
        let args = [c"fm-new", c"-c", c"read -t 30 <> <(:)"];
        let argv: Vec<*const libc::c_char> = args
            .iter()
            .map(|arg| arg.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let set_tid = [pid as libc::pid_t];
        let mut clone = CloneArgs {
            exit_signal: libc::SIGCHLD as u64,
            set_tid: set_tid.as_ptr() as u64,
            set_tid_size: 1,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 as fork with a chosen pid; the child only calls execve and
        // _exit, which are async-signal-safe, with memory prepared before the clone.
        let child = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut clone as *mut CloneArgs,
                size_of::<CloneArgs>(),
            )
        };
        if child == 0 {
            // SAFETY: as above.
            unsafe {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(
            child > 0,
            "clone3 with pid {pid}: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(child, i64::from(pid), "the successor has the old pid");
        Self { pid: child as i32 }
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        // SAFETY: our own child, killed and reaped once.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}
