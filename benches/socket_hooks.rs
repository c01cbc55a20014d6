//! What recording sockets' owners in the kernel (issue 15) adds to each connection: a
//! TCP connect and close to a listener, and one datagram from a new UDP socket, over
//! loopback in a network namespace of the bench's own. Three configurations side by
//! side in one run, each measured on the same machine minutes apart at most:
//!
//! - `unmetered`: nothing attached;
//! - `metered`: flowmeter's programs on the namespace's loopback (TC both ways), the
//!   socket hooks turned off (`Options::socket_owners`), as the /proc fallback runs;
//! - `metered_owners`: the same with the socket hooks on the cgroup v2 root, as `top`
//!   and `log` run: `sock_create` on every socket, `sock_ops` on connect, `sendmsg` on
//!   an unconnected UDP send, and TC egress's join on a flow's first packet.
//!
//! `metered_owners / metered` is the hooks' cost per connection. The hooks sit on the
//! root cgroup, so they see (and record) every socket the machine makes while they run.
//!
//! Run as root: `cargo bench --bench socket_hooks` (or `cargo xtask bench --only
//! socket_hooks`).

use std::{
    hint::black_box,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    process::Command,
    thread,
};

use criterion::Criterion;
use flowmeter::datapath::{Datapath, KernelMaps, Options, interfaces};

/// The configurations, in the order they run.
const CONFIGURATIONS: [(&str, Option<bool>); 3] = [
    ("unmetered", None),
    ("metered", Some(false)),
    ("metered_owners", Some(true)),
];

fn main() -> anyhow::Result<()> {
    own_network_namespace()?;
    let tcp = tcp_listener()?;
    let udp = udp_sink()?;
    let mut criterion = Criterion::default().configure_from_args();

    let mut group = criterion.benchmark_group("socket_hooks_tcp_connect");
    for (name, owners) in CONFIGURATIONS {
        let _attached = attach(owners)?;
        group.bench_function(name, |b| b.iter(|| connect_and_close(tcp)));
    }
    group.finish();

    let mut group = criterion.benchmark_group("socket_hooks_udp_datagram");
    for (name, owners) in CONFIGURATIONS {
        let _attached = attach(owners)?;
        group.bench_function(name, |b| b.iter(|| one_datagram(udp)));
    }
    group.finish();

    criterion.final_summary();
    Ok(())
}

/// Moves the bench (this thread, and every thread and child it makes from now on) into
/// a new network namespace, whose loopback `ip` brings up: no traffic leaves it.
fn own_network_namespace() -> anyhow::Result<()> {
    // SAFETY: unshare has no memory preconditions; the bench has no other thread yet.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        anyhow::bail!(
            "unshare(CLONE_NEWNET): {} (the bench needs root)",
            std::io::Error::last_os_error()
        );
    }
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()?;
    anyhow::ensure!(status.success(), "ip link set lo up: {status}");
    Ok(())
}

/// A listener on loopback that accepts every connection and lets it go.
fn tcp_listener() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let address = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(address)
}

/// A UDP socket on loopback that reads whatever arrives.
fn udp_sink() -> anyhow::Result<SocketAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let address = socket.local_addr()?;
    thread::spawn(move || {
        let mut buffer = [0u8; 64];
        while socket.recv(&mut buffer).is_ok() {}
    });
    Ok(address)
}

/// The datapath on this namespace's loopback, with the socket hooks or not; `None`
/// attaches nothing.
fn attach(owners: Option<bool>) -> anyhow::Result<Option<(Datapath, KernelMaps)>> {
    let Some(socket_owners) = owners else {
        return Ok(None);
    };
    let lo = interfaces::resolve(&["lo".to_owned()])?;
    let options = Options {
        socket_owners,
        ..Options::default()
    };
    let (datapath, maps) = Datapath::start(&lo, &options)?;
    anyhow::ensure!(
        datapath.socket_records().is_ok() == socket_owners,
        "the socket hooks did not attach as asked: {:?}",
        datapath.socket_records().err()
    );
    Ok(Some((datapath, maps)))
}

/// One TCP connection: handshake, then closed with a reset (linger 0), so that no
/// TIME_WAIT socket is left to run the ephemeral ports out over a long run.
fn connect_and_close(to: SocketAddr) {
    let stream = TcpStream::connect(to).expect("connecting over loopback");
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a `linger` of the size given.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(black_box(stream));
}

/// A new UDP socket sends one datagram (unconnected) and is closed.
fn one_datagram(to: SocketAddr) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a UDP socket");
    socket
        .send_to(b"flowmeter", to)
        .expect("sending over loopback");
}
