//! The service's view on a local socket (`log --control-socket`): a client that connects
//! gets a header (the recording's, with the service's pid and how many seconds follow at
//! once), the ring's seconds, then every new second as it is recorded, as the JSON lines
//! of a recording file. `top` on the same host reads it ([`super::live`]).
//!
//! Serving never holds metering up: [`Server::publish`] hands the serialised second to
//! the hub thread through a bounded channel without waiting (a full channel drops the
//! second); the hub keeps its own copy of the ring and hands each client's thread its
//! lines through a bounded channel of its own: a client that falls that far behind is
//! dropped, and a client that stops reading is cut off by a write timeout.

use std::{
    fs::{self, DirBuilder, Permissions},
    io::{self, BufWriter, ErrorKind, Write},
    os::unix::{
        fs::{DirBuilderExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select};

use super::{
    file::{Entry, Header},
    ring::{Line, Ring},
};

/// Seconds waiting for the hub: a hub this far behind loses seconds, metering none.
const HUB_SLACK: usize = 64;
/// New seconds a client may lag behind before it is dropped.
const CLIENT_SLACK: usize = 32;
/// A client that takes no bytes for this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why no socket is served.
#[derive(Debug, thiserror::Error)]
pub enum NotServed {
    #[error(
        "another flowmeter log serves its view on {0}; this one serves none (give it \
         another --control-socket)"
    )]
    Busy(PathBuf),
    #[error("cannot serve the view on {path} ({error}); metering and the log go on")]
    Failed { path: PathBuf, error: io::Error },
}

pub struct Server {
    path: PathBuf,
    seconds: Option<Sender<Line>>,
    clients: Arc<AtomicUsize>,
    hub: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path` (its directory made 0700 if missing, the socket 0600). A socket
    /// file left by a log that was killed is replaced; one that answers is another
    /// log's, and left alone. Clients get `header` and up to `capacity` seconds.
    pub fn open(path: &Path, header: Header, capacity: usize) -> Result<Self, NotServed> {
        let failed = |error| NotServed::Failed {
            path: path.to_path_buf(),
            error,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
            && !dir.exists()
        {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(failed)?;
        }
        match UnixStream::connect(path) {
            Ok(_) => return Err(NotServed::Busy(path.to_path_buf())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                fs::remove_file(path).map_err(failed)?
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(failed)?;
        fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(failed)?;
        let (seconds, incoming) = bounded(HUB_SLACK);
        let (arrived, connections) = bounded(4);
        thread::Builder::new()
            .name("control-accept".into())
            .spawn(move || accept(&listener, &arrived))
            .map_err(failed)?;
        let clients = Arc::new(AtomicUsize::new(0));
        let hub = Hub {
            header,
            ring: Ring::with_capacity(capacity),
            clients: Vec::new(),
            count: clients.clone(),
        };
        let hub = thread::Builder::new()
            .name("control-hub".into())
            .spawn(move || hub.run(&incoming, &connections))
            .map_err(failed)?;
        Ok(Self {
            path: path.to_path_buf(),
            seconds: Some(seconds),
            clients,
            hub: Some(hub),
        })
    }

    /// Hands over the newest second; never waits (the hub that far behind misses it).
    pub fn publish(&self, line: Line) {
        if let Some(seconds) = &self.seconds {
            let _ = seconds.try_send(line);
        }
    }

    /// Clients being served now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    /// Stops the hub (its clients see the end of the stream), wakes the accepting
    /// thread so it sees no hub, and removes the socket.
    fn drop(&mut self) {
        self.seconds = None;
        if let Some(hub) = self.hub.take() {
            let _ = hub.join();
        }
        let _ = UnixStream::connect(&self.path);
        let _ = fs::remove_file(&self.path);
    }
}

fn accept(listener: &UnixListener, arrived: &Sender<UnixStream>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if arrived.send(stream).is_err() {
            return;
        }
    }
}

struct Hub {
    header: Header,
    ring: Ring,
    clients: Vec<Sender<Line>>,
    count: Arc<AtomicUsize>,
}

impl Hub {
    fn run(mut self, seconds: &Receiver<Line>, connections: &Receiver<UnixStream>) {
        loop {
            select! {
                recv(seconds) -> line => match line {
                    Ok(line) => self.send(line),
                    Err(_) => return,
                },
                recv(connections) -> stream => match stream {
                    Ok(stream) => self.welcome(stream),
                    Err(_) => return,
                },
            }
        }
    }

    fn send(&mut self, line: Line) {
        self.ring.push(line.clone());
        // A client whose lines are not taken is dropped, not waited for.
        self.clients
            .retain(|client| match client.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
        self.count.store(self.clients.len(), Ordering::Relaxed);
    }

    fn welcome(&mut self, stream: UnixStream) {
        let mut header = self.header.clone();
        header.backlog = Some(self.ring.len());
        let mut first = vec![Arc::from(
            serde_json::to_string(&Entry::Header(header)).expect("a header serialises"),
        )];
        first.extend(self.ring.lines());
        let (client, lines) = bounded(CLIENT_SLACK);
        let started = thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                let _ = serve(stream, &first, &lines);
            });
        if started.is_ok() {
            self.clients.push(client);
            self.count.store(self.clients.len(), Ordering::Relaxed);
        }
    }
}

/// Writes the header and the ring, then each new second, until the client goes, stops
/// reading for [`WRITE_TIMEOUT`], or is dropped.
fn serve(stream: UnixStream, first: &[Line], lines: &Receiver<Line>) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut out = BufWriter::new(stream);
    for line in first {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    for line in lines {
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        io::Read,
        time::{Duration, Instant},
    };

    use super::*;
    use crate::recorder::{live, second::Second};

    const T0_MS: u64 = 1_800_000_000_000;

    /// Second `n` of a quiet host, as the ring keeps it (`padding` makes it longer).
    fn line(n: u64, padding: usize) -> Line {
        let second = Second {
            ts: "x".repeat(padding),
            at_ms: T0_MS + n * 1000,
            interval_s: 1.0,
            flows: 0,
            interfaces: Vec::new(),
            remotes: Vec::new(),
            processes: Vec::new(),
        };
        Arc::from(serde_json::to_string(&Entry::Second(second)).unwrap())
    }

    fn header() -> Header {
        let mut header = Header::new(1.0, 900.0, 180.0, vec!["eth0".into()]);
        header.pid = Some(4242);
        header
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "waited 10 s for {what}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_client_gets_the_header_the_ring_then_each_new_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/log.sock");
        let server = Server::open(&path, header(), 3).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        // A first client sees every second in order, whichever the hub took before it
        // came (the ring) or after (new ones).
        for n in 0..2 {
            server.publish(line(n, 0));
        }
        let first = live::connect(&path).unwrap().expect("the server answers");
        for n in 2..5 {
            server.publish(line(n, 0));
        }
        let mut seen: Vec<u64> = first.recording.seconds.iter().map(|s| s.at_ms).collect();
        while seen.len() < 5 {
            seen.push(
                first
                    .seconds
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap()
                    .at_ms,
            );
        }
        assert_eq!(seen, (0..5).map(|n| T0_MS + n * 1000).collect::<Vec<_>>());
        // The hub has taken all five: a new client gets the ring's last three at once,
        // the pid, and then the new seconds.
        let second = live::connect(&path).unwrap().unwrap();
        assert_eq!(second.pid, 4242);
        assert_eq!(second.recording.header.backlog, Some(3));
        assert_eq!(second.recording.header.interfaces, ["eth0"]);
        let ring: Vec<u64> = second.recording.seconds.iter().map(|s| s.at_ms).collect();
        assert_eq!(ring, [2, 3, 4].map(|n| T0_MS + n * 1000));
        server.publish(line(5, 0));
        let next = second
            .seconds
            .recv_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(next.at_ms, T0_MS + 5000);
        // When the log stops, the clients' streams end and the socket goes.
        drop(server);
        assert!(
            second
                .seconds
                .recv_timeout(Duration::from_secs(10))
                .is_err()
        );
        assert!(!path.exists());
        assert!(live::connect(&path).unwrap().is_none(), "no service: none");
    }

    #[test]
    fn a_stuck_client_is_dropped_and_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = Server::open(&path, header(), 4).unwrap();
        // Connected, and never reads a byte.
        let mut stuck = UnixStream::connect(&path).unwrap();
        wait_until("the stuck client to be served", || server.clients() == 1);
        // Far more than the socket's buffer and the client's slack: every publish
        // returns (the test would hang otherwise), and the stuck client is dropped.
        let mut n = 0;
        while server.clients() > 0 {
            server.publish(line(n, 64 * 1024));
            n += 1;
            thread::sleep(Duration::from_millis(1));
            assert!(n < 100_000, "the stuck client was never dropped");
        }
        // Another client is served as ever, the newest seconds first in its ring.
        let reader = live::connect(&path).unwrap().unwrap();
        assert_eq!(reader.recording.header.backlog, Some(4));
        server.publish(line(n, 0));
        let next = reader
            .seconds
            .recv_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(next.at_ms, T0_MS + n * 1000);
        // What the stuck client is given ends, whole lines only up to its end.
        let mut got = Vec::new();
        stuck
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stuck.read_to_end(&mut got);
        assert!(!got.is_empty());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        // What a killed log leaves: the file, nobody listening.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = Server::open(&path, header(), 2).unwrap();
        server.publish(line(0, 0));
        assert!(live::connect(&path).unwrap().is_some());
        let busy = Server::open(&path, header(), 2).err().expect("busy");
        assert!(matches!(busy, NotServed::Busy(_)), "{busy}");
        assert!(busy.to_string().contains("another flowmeter log serves"));
        // The first one still serves.
        let reader = live::connect(&path).unwrap().unwrap();
        assert_eq!(reader.recording.seconds[0].at_ms, T0_MS);
    }
}
