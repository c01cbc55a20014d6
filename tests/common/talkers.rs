//! Short-lived processes that talk, and the listeners that hear them: the scenes of the
//! owner tests (`tests/owners.rs`).
//!
//! A talker is a copy of bash under a name of the test's choosing (so its comm and exe
//! are its own), run with a script that uses only bash's builtins: `/dev/tcp` and
//! `/dev/udp` redirections open connected sockets, `printf` writes, `read -t` waits. Each
//! talker says its own pid (`pid N`) as the first thing it sends, and the listeners note
//! which peer address said which pid: that is how a test knows the right owner of every
//! flow without trusting flowmeter.

use std::{
    collections::HashMap,
    fs,
    io::{ErrorKind, Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use super::netns::Netns;

/// A copy of bash named `comm`, in a temporary directory removed on drop.
pub struct Talker {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub comm: String,
}

impl Talker {
    pub fn new(comm: &str) -> Self {
        assert!(comm.len() <= 15, "a comm holds 15 bytes: {comm}");
        let bash = ["/usr/bin/bash", "/bin/bash"]
            .into_iter()
            .map(Path::new)
            .find(|path| path.exists())
            .expect("bash is installed");
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(comm);
        fs::copy(bash, &path).unwrap_or_else(|e| panic!("copying {}: {e}", bash.display()));
        Self {
            _dir: dir,
            path,
            comm: comm.to_owned(),
        }
    }

    /// Runs `script` in `netns` (`ip netns exec` execs the talker: the child's pid is
    /// the talker's).
    pub fn spawn(&self, netns: &Netns, script: &str) -> Child {
        self.command(netns, script)
            .stdin(Stdio::null())
            .spawn_talker(&self.comm)
    }

    /// Like [`Self::spawn`], but the script waits for [`open_gate`] before it starts:
    /// time for the test to move the talker into a cgroup (which `ip netns exec`,
    /// mounting a /sys of its own, hides from the talker).
    pub fn spawn_gated(&self, netns: &Netns, script: &str) -> Child {
        self.command(netns, &format!("read -r _ && {script}"))
            .stdin(Stdio::piped())
            .spawn_talker(&self.comm)
    }

    fn command(&self, netns: &Netns, script: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns.name()])
            .arg(&self.path)
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

/// Lets a talker of [`Talker::spawn_gated`] go on.
pub fn open_gate(child: &mut Child) {
    let mut gate = child.stdin.take().expect("a gated talker");
    gate.write_all(b"go\n").expect("opening the gate");
}

trait SpawnTalker {
    fn spawn_talker(&mut self, comm: &str) -> Child;
}

impl SpawnTalker for Command {
    fn spawn_talker(&mut self, comm: &str) -> Child {
        self.spawn()
            .unwrap_or_else(|e| panic!("spawning {comm}: {e}"))
    }
}

/// Waits for `child` and panics with its stderr unless it succeeded.
pub fn wait_ok(child: Child, what: &str) {
    let output = child.wait_with_output().expect("waiting for a talker");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The script of a short TCP connection: connect, say the pid, wait `hold_ms` (the
/// server sends nothing, so `read` times out), close.
pub fn tcp_script(server: SocketAddr, hold_ms: u32) -> String {
    format!(
        "exec 3<>/dev/tcp/{}/{} && printf 'pid %d\\n' $$ >&3 && {{ read -t 0.{hold_ms:03} -u 3; exec 3>&-; }}",
        server.ip(),
        server.port()
    )
}

/// The script of one UDP datagram (a connected socket, as bash, nc and glibc's
/// resolver use): `pid N` and `pad` spaces.
pub fn udp_script(server: SocketAddr, pad: usize) -> String {
    format!(
        "printf 'pid %d %{pad}s\\n' $$ '' > /dev/udp/{}/{}",
        server.ip(),
        server.port()
    )
}

/// Protocol numbers as flowmeter's records name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// The pids each peer (protocol, address) said, in the order heard.
type Heard = Arc<Mutex<HashMap<(Proto, SocketAddr), Vec<u32>>>>;

/// A TCP and a UDP listener in a namespace, each noting which peer said which pid.
pub struct Listeners {
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    heard: Heard,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Listeners {
    pub fn start(netns: &Netns, ip: IpAddr, tcp_port: u16, udp_port: u16) -> Self {
        let (tcp, udp) = netns.run(move || {
            let tcp = TcpListener::bind((ip, tcp_port)).expect("TCP listener");
            let udp = UdpSocket::bind((ip, udp_port)).expect("UDP socket");
            (tcp, udp)
        });
        let heard = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let addresses = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
        let threads = vec![
            spawn_tcp(tcp, heard.clone(), stop.clone()),
            spawn_udp(udp, heard.clone(), stop.clone()),
        ];
        Self {
            tcp: addresses.0,
            udp: addresses.1,
            heard,
            stop,
            threads,
        }
    }

    /// Which pids said they were each peer, so far: one, unless a port was used again
    /// by a later talker.
    pub fn heard(&self) -> HashMap<(Proto, SocketAddr), Vec<u32>> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const POLL: Duration = Duration::from_millis(20);

/// The pid in a talker's first words, `pid N ...`.
fn said_pid(words: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(words).ok()?;
    text.strip_prefix("pid ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn spawn_tcp(listener: TcpListener, heard: Heard, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let mut readers = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let heard = heard.clone();
                    // Each connection read to its end on its own thread: a talker
                    // that holds its connection open never holds up the next one.
                    readers.push(thread::spawn(move || {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        let mut words = Vec::new();
                        let _ = stream.read_to_end(&mut words);
                        if let Some(pid) = said_pid(&words) {
                            heard
                                .lock()
                                .unwrap()
                                .entry((Proto::Tcp, peer))
                                .or_default()
                                .push(pid);
                        }
                    }));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        for reader in readers {
            let _ = reader.join();
        }
    })
}

fn spawn_udp(socket: UdpSocket, heard: Heard, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    socket.set_read_timeout(Some(POLL)).unwrap();
    thread::spawn(move || {
        let mut buffer = [0; 2048];
        while !stop.load(Ordering::Relaxed) {
            match socket.recv_from(&mut buffer) {
                Ok((len, peer)) => {
                    if let Some(pid) = said_pid(&buffer[..len]) {
                        heard
                            .lock()
                            .unwrap()
                            .entry((Proto::Udp, peer))
                            .or_default()
                            .push(pid);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    })
}
