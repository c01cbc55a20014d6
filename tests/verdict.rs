//! Verdicts on a real process: a fake "miner" (a copy of bash under /tmp) sends a
//! datagram to a mining-pool port on the loopback of a test network namespace. A
//! `SocketTable` reading that namespace's tables finds the process, and the built-in
//! rules judge it suspicious for both reasons.
//!
//! Needs root (namespaces, and reading another process's fds); fails without it.

mod common;

use std::{
    fs,
    io::Read,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use flowmeter::{
    datapath::{FlowId, Protocol},
    enrich::{
        geo::{HomeCountries, Location},
        sockets::{Owner, ProcPaths, ProcessInfo, SocketTable},
        verdict::{FlowContext, Reason, Rules, Verdict, hugetlb_kb},
    },
};

use common::netns::{Netns, unique_name};

const UDP: u8 = 17;

/// A port on the built-in list of mining-pool ports.
const POOL_PORT: u16 = 3333;

/// Longest wait for the miner's datagram: loopback delivers at once, so this only bounds
/// a broken run.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The shell the miner is copied from; its `/dev/udp` redirections send without any
/// other program.
const SHELL: &str = "/bin/bash";

/// Opens a UDP socket to the pool, sends one line, then waits on standard input (a
/// builtin, so no child process shares the socket) until the test closes it.
const MINER_SCRIPT: &str = "exec 3<>/dev/udp/127.0.0.1/3333 && echo share >&3 && read -r _";

#[test]
fn a_miner_run_from_tmp_sending_to_a_pool_port_is_suspicious() {
    // Dropped in reverse order: the miner is killed, its executable removed, then the
    // namespace deleted, on every path.
    let netns = Netns::new(unique_name());
    let exe = CopiedExecutable::new(Path::new(SHELL));
    let pool =
        netns.run(|| UdpSocket::bind((Ipv4Addr::LOCALHOST, POOL_PORT)).expect("pool socket on lo"));
    pool.set_read_timeout(Some(SEND_TIMEOUT)).unwrap();
    let mut miner = Miner::spawn(&netns, exe.path());

    let mut buffer = [0; 16];
    let (length, from) = pool.recv_from(&mut buffer).unwrap_or_else(|e| {
        panic!(
            "no datagram from the miner in {SEND_TIMEOUT:?} ({e}); {}",
            miner.stop()
        )
    });
    assert_eq!(&buffer[..length], b"share\n");
    let flow = miner_flow(from);

    let process = netns.run(|| owner_of(&flow));
    assert_eq!(process.pid, miner.pid(), "the miner owns the flow");
    assert_eq!(process.exe.as_deref(), Some(exe.path()));
    assert!(!process.exe_deleted);

    let home = HomeCountries::default();
    let mut context = FlowContext::new(Location::Local, &home);
    context.remote_hosts_of_process = 1;
    context.hugetlb_kb = hugetlb_kb(Path::new("/proc"), process.pid);
    assert_eq!(context.hugetlb_kb, Some(0), "bash maps no huge pages");

    let judgement = Rules::default().judge(&flow, Some(&process), &context);
    assert_eq!(judgement.verdict, Verdict::Suspicious, "{judgement:?}");
    assert_eq!(
        judgement.reasons,
        [
            Reason::ExeInTempDir { dir: "/tmp".into() },
            Reason::MiningPort { port: POOL_PORT },
        ]
    );
    let lines: Vec<String> = judgement.reasons.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "executable under /tmp",
            "remote port 3333 is a common mining-pool port"
        ]
    );
    assert!(!judgement.foreign);

    miner.stop();
    let copied = exe.path().to_owned();
    drop(exe);
    assert!(!copied.exists(), "{} was not removed", copied.display());
}

/// The miner's flow on `lo`, from the host's point of view: its own socket (`local`,
/// as the pool saw it) to the pool.
fn miner_flow(local: SocketAddr) -> FlowId {
    FlowId {
        iface: Arc::from("lo"),
        proto: Protocol(UDP),
        local_ip: local.ip(),
        local_port: local.port(),
        remote_ip: Ipv4Addr::LOCALHOST.into(),
        remote_port: POOL_PORT,
    }
}

/// The process owning `flow`, as a `SocketTable` on the calling thread's namespace
/// finds it.
fn owner_of(flow: &FlowId) -> ProcessInfo {
    let mut table = SocketTable::new(ProcPaths::system());
    table.resolve([flow], Instant::now());
    match table.owner(flow) {
        Some(Owner::Process(process)) => ProcessInfo::clone(process),
        other => panic!("owner of the miner's flow {flow:?}: {other:?}, expected a process"),
    }
}

/// A copy of an executable at a unique path under /tmp, removed when dropped.
struct CopiedExecutable {
    path: PathBuf,
}

impl CopiedExecutable {
    fn new(original: &Path) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/tmp/fm-miner-{}-{n}", std::process::id()));
        // The copy keeps the original's permissions, execute bits included.
        fs::copy(original, &path).unwrap_or_else(|e| {
            panic!("copying {} to {}: {e}", original.display(), path.display())
        });
        Self { path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CopiedExecutable {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The fake miner running in a namespace; killed and reaped when dropped.
struct Miner {
    child: Child,
}

impl Miner {
    /// `ip netns exec NS EXE -c SCRIPT`: `ip` execs the miner, so the child's pid is
    /// the miner's.
    fn spawn(netns: &Netns, exe: &Path) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg(exe)
            .args(["-c", MINER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning the miner {}: {e}", exe.display()));
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the miner (closing its input, then killing it) and says how it ended and
    /// what it wrote on stderr, for failure messages.
    fn stop(&mut self) -> String {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let status = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        format!("miner {status:?}, stderr: {:?}", stderr.trim())
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
