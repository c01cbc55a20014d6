//! Process attribution against real sockets: each test makes its own network namespace,
//! opens TCP and UDP sockets on its loopback from a thread that entered it, and asks a
//! `SocketTable` reading that thread's tables (`/proc/thread-self/net`) who owns the
//! flows. The owner must be this test process.
//!
//! Needs root (namespaces, and reading every process's fds); fails without it.

mod common;

use std::{
    fs,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use flowmeter::{
    datapath::{FlowId, Protocol},
    enrich::sockets::{Owner, ProcPaths, ProcessInfo, Refresh, SocketTable},
};

use common::netns::{Netns, unique_name};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// Longest wait for any socket operation: loopback answers at once, so this only bounds
/// a broken run.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

/// A remote port no socket in a fresh namespace uses (privileged, never ephemeral).
const UNSEEN_PORT: u16 = 1;

#[test]
fn ipv4_tcp_and_udp_flows_belong_to_this_process() {
    attribute_loopback_traffic(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
}

#[test]
fn ipv6_tcp_and_udp_flows_belong_to_this_process() {
    attribute_loopback_traffic(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    );
}

/// IPv4 clients of sockets bound to the IPv6 wildcard: the tables show them under
/// tcp6/udp6 with IPv4-mapped addresses, the flows as plain IPv4.
#[test]
fn ipv4_flows_on_dual_stack_sockets_belong_to_this_process() {
    attribute_loopback_traffic(
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
}

#[test]
fn flows_without_a_local_socket_say_so() {
    in_fresh_namespace(|| {
        let mut table = SocketTable::new(ProcPaths::system());
        let flows = [
            flow(TCP, "127.0.0.1:9", "127.0.0.1:40000"),
            flow(UDP, "[::1]:9", "[::1]:40000"),
            flow(ICMP, "127.0.0.1:0", "127.0.0.1:0"),
        ];
        table.resolve(&flows, Instant::now());
        for flow in &flows {
            assert_eq!(table.owner(flow), Some(&Owner::NoLocalSocket), "{flow:?}");
        }
    });
}

/// Opens a TCP connection and a UDP exchange whose servers bind `bind` and whose clients
/// reach them over `loopback`, then checks every flow's owner from both ends, and an
/// inbound flow from a port no socket has seen.
fn attribute_loopback_traffic(bind: IpAddr, loopback: IpAddr) {
    let me = Me::read();
    in_fresh_namespace(|| {
        let traffic = Traffic::exchange(bind, loopback);
        let flows = traffic.flows();
        let mut table = SocketTable::new(ProcPaths::system());
        let start = Instant::now();
        let first = table.resolve(flows.iter().map(|(_, flow)| flow), start);
        assert_eq!(
            first,
            Refresh {
                tables_read: true,
                processes_scanned: true
            }
        );
        for (what, flow) in &flows {
            match table.owner(flow) {
                Some(Owner::Process(process)) => me.assert_is(process, what),
                other => panic!("{what} ({flow:?}): owner {other:?}, expected this process"),
            }
        }
        // Answered from the cache from now on.
        let again = table.resolve(
            flows.iter().map(|(_, flow)| flow),
            start + Duration::from_secs(1),
        );
        assert_eq!(again, Refresh::default());
        drop(traffic);
    });
}

/// This test process, as `/proc/self` describes it.
struct Me {
    pid: u32,
    comm: String,
    exe: PathBuf,
}

impl Me {
    fn read() -> Self {
        let comm = fs::read_to_string("/proc/self/comm").expect("reading /proc/self/comm");
        Self {
            pid: std::process::id(),
            comm: comm.trim_end_matches('\n').to_owned(),
            exe: std::env::current_exe().expect("this test's executable"),
        }
    }

    fn assert_is(&self, process: &ProcessInfo, what: &str) {
        assert_eq!(process.pid, self.pid, "{what}: pid");
        assert_eq!(process.comm, self.comm, "{what}: comm");
        assert_eq!(
            (process.uid, process.user.as_str()),
            (0, "root"),
            "{what}: user"
        );
        assert_eq!(process.exe.as_ref(), Some(&self.exe), "{what}: exe");
        assert!(!process.exe_deleted, "{what}: exe deleted");
        let name = self.exe.file_name().unwrap().to_string_lossy();
        assert!(
            process.cmdline.contains(name.as_ref()),
            "{what}: cmdline {:?}",
            process.cmdline
        );
    }
}

/// Runs `f` on a thread inside a new network namespace whose loopback is up; the
/// namespace is deleted afterwards, also if `f` panics.
fn in_fresh_namespace<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let netns = Netns::new(unique_name());
    netns.run(f)
}

/// A TCP connection and a UDP exchange that each carried a few bytes both ways; the
/// sockets stay open as long as this lives.
struct Traffic {
    listener: TcpListener,
    client: TcpStream,
    server: TcpStream,
    /// Connected to `udp_server`.
    udp_client: UdpSocket,
    /// Unconnected: it takes datagrams from anyone.
    udp_server: UdpSocket,
}

impl Traffic {
    fn exchange(bind: IpAddr, loopback: IpAddr) -> Self {
        let listener = TcpListener::bind((bind, 0)).expect("TCP listener");
        let port = listener.local_addr().unwrap().port();
        let mut client =
            TcpStream::connect_timeout(&SocketAddr::new(loopback, port), SOCKET_TIMEOUT)
                .expect("TCP connect over loopback");
        // The handshake is done: the connection waits in the accept queue.
        let (mut server, _) = listener.accept().expect("TCP accept");
        for stream in [&client, &server] {
            stream.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
        }
        client.write_all(b"ping").unwrap();
        expect_bytes(&mut server, b"ping");
        server.write_all(b"pong").unwrap();
        expect_bytes(&mut client, b"pong");

        let udp_server = UdpSocket::bind((bind, 0)).expect("UDP server socket");
        let udp_client = UdpSocket::bind((loopback, 0)).expect("UDP client socket");
        let server_address = SocketAddr::new(loopback, udp_server.local_addr().unwrap().port());
        udp_client.connect(server_address).unwrap();
        for socket in [&udp_client, &udp_server] {
            socket.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
        }
        udp_client.send(b"hello").unwrap();
        let mut buffer = [0; 16];
        let (length, from) = udp_server.recv_from(&mut buffer).expect("UDP datagram");
        assert_eq!(&buffer[..length], b"hello");
        udp_server.send_to(b"hi", from).unwrap();
        let length = udp_client.recv(&mut buffer).expect("UDP reply");
        assert_eq!(&buffer[..length], b"hi");
        Self {
            listener,
            client,
            server,
            udp_client,
            udp_server,
        }
    }

    /// The flows this traffic made (and one it could make), each as seen from this host.
    fn flows(&self) -> Vec<(&'static str, FlowId)> {
        let client = self.client.local_addr().unwrap();
        let server = self.client.peer_addr().unwrap();
        let udp_client = self.udp_client.local_addr().unwrap();
        let udp_server = self.udp_client.peer_addr().unwrap();
        let unseen = SocketAddr::new(server.ip(), UNSEEN_PORT);
        // The server's socket sees the client over its own family (mapped if dual-stack).
        assert_eq!(self.server.local_addr().unwrap().port(), server.port());
        assert_eq!(self.listener.local_addr().unwrap().port(), server.port());
        assert_eq!(
            self.udp_server.local_addr().unwrap().port(),
            udp_server.port()
        );
        vec![
            ("TCP client", flow_of(TCP, client, server)),
            ("TCP server", flow_of(TCP, server, client)),
            ("TCP listener, unseen peer", flow_of(TCP, server, unseen)),
            ("UDP client", flow_of(UDP, udp_client, udp_server)),
            ("UDP server", flow_of(UDP, udp_server, udp_client)),
        ]
    }
}

fn expect_bytes(stream: &mut TcpStream, expected: &[u8]) {
    let mut received = vec![0; expected.len()];
    stream.read_exact(&mut received).expect("TCP bytes");
    assert_eq!(received, expected);
}

/// A flow on `lo` from this host's point of view.
fn flow_of(proto: u8, local: SocketAddr, remote: SocketAddr) -> FlowId {
    FlowId {
        iface: Arc::from("lo"),
        proto: Protocol(proto),
        local_ip: local.ip(),
        local_port: local.port(),
        remote_ip: remote.ip(),
        remote_port: remote.port(),
    }
}

fn flow(proto: u8, local: &str, remote: &str) -> FlowId {
    flow_of(proto, local.parse().unwrap(), remote.parse().unwrap())
}
