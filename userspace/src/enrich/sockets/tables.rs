//! The kernel's TCP and UDP socket tables (`NET_DIR/{tcp,tcp6,udp,udp6}`), indexed so
//! that a flow finds its socket inode.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

use flowmeter_common::{PROTO_TCP, PROTO_UDP};
use procfs::{
    FromReadSI, ProcResult, current_system_info,
    net::{TcpNetEntries, TcpState, UdpNetEntries},
};

use crate::datapath::{FlowId, Protocol};

/// What the tables say about a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// A live socket carries the flow.
    Socket(u64),
    /// Only a socket that no process holds any more (TCP TIME_WAIT, inode 0) matches.
    Closed,
    /// No socket on this host matches: forwarded or raw traffic, or not TCP/UDP.
    NoSocket,
}

/// One moment's TCP and UDP sockets, from one network namespace.
#[derive(Debug, Default)]
pub(super) struct SocketIndex {
    /// Connected sockets by (protocol, local, remote). Inode 0: closed (TIME_WAIT).
    connected: HashMap<(Protocol, SocketAddr, SocketAddr), u64>,
    /// Listening TCP and unconnected UDP sockets by (protocol, local address, port); the
    /// address may be the wildcard.
    bound: HashMap<(Protocol, IpAddr, u16), u64>,
    /// Every live inode in the tables, to forget cached sockets that closed.
    live: HashSet<u64>,
}

impl SocketIndex {
    /// Reads the four tables under `net_dir`. A table that is missing (IPv6 disabled) or
    /// unreadable is left out: the flows it would carry then have no socket.
    pub(super) fn read(net_dir: &Path) -> Self {
        let mut index = Self::default();
        for name in ["tcp", "tcp6"] {
            if let Some(table) = read_table::<TcpNetEntries>(net_dir, name) {
                for entry in table.0 {
                    let listening = entry.state == TcpState::Listen;
                    index.add(
                        TCP,
                        entry.local_address,
                        entry.remote_address,
                        listening,
                        entry.inode,
                    );
                }
            }
        }
        for name in ["udp", "udp6"] {
            if let Some(table) = read_table::<UdpNetEntries>(net_dir, name) {
                for entry in table.0 {
                    // An unconnected UDP socket has no remote: it takes any peer.
                    let unconnected = is_unspecified(entry.remote_address);
                    index.add(
                        UDP,
                        entry.local_address,
                        entry.remote_address,
                        unconnected,
                        entry.inode,
                    );
                }
            }
        }
        index
    }

    /// The listening TCP and unconnected UDP sockets: protocol, local address (maybe the
    /// wildcard) and inode, one per address and port.
    pub(super) fn bound(&self) -> impl Iterator<Item = (Protocol, SocketAddr, u64)> + '_ {
        self.bound
            .iter()
            .map(|(&(proto, ip, port), &inode)| (proto, SocketAddr::new(ip, port), inode))
    }

    /// Whether `inode` is still in the tables.
    pub(super) fn is_live(&self, inode: u64) -> bool {
        self.live.contains(&inode)
    }

    /// Finds the socket of `flow`: its own connected socket first, then a socket bound to
    /// its local port (on its local address, else on a wildcard), then a closed one.
    pub(super) fn lookup(&self, flow: &FlowId) -> Lookup {
        if flow.proto != TCP && flow.proto != UDP {
            return Lookup::NoSocket;
        }
        let local_ip = flow.local_ip.to_canonical();
        let local = SocketAddr::new(local_ip, flow.local_port);
        let remote = SocketAddr::new(flow.remote_ip.to_canonical(), flow.remote_port);
        let connected = self.connected.get(&(flow.proto, local, remote)).copied();
        if let Some(inode) = connected.filter(|&inode| inode != 0) {
            return Lookup::Socket(inode);
        }
        let bound = bind_candidates(local_ip)
            .into_iter()
            .flatten()
            .find_map(|ip| self.bound.get(&(flow.proto, ip, flow.local_port)));
        match (bound, connected) {
            (Some(&inode), _) => Lookup::Socket(inode),
            (None, Some(_)) => Lookup::Closed,
            (None, None) => Lookup::NoSocket,
        }
    }

    /// Files one table entry. Mapped addresses (`::ffff:a.b.c.d`, a dual-stack socket
    /// talking IPv4) become IPv4, as the flow sees them.
    fn add(
        &mut self,
        proto: Protocol,
        local: SocketAddr,
        remote: SocketAddr,
        bound: bool,
        inode: u64,
    ) {
        let local = canonical(local);
        if inode != 0 {
            self.live.insert(inode);
        }
        if bound {
            if inode != 0 {
                // Several sockets on one port (SO_REUSEPORT): keep one, the same each time.
                let slot = self
                    .bound
                    .entry((proto, local.ip(), local.port()))
                    .or_insert(inode);
                *slot = (*slot).min(inode);
            }
            return;
        }
        if is_unspecified(remote) {
            return; // a TCP socket bound but neither listening nor connected moves nothing
        }
        let slot = self
            .connected
            .entry((proto, local, canonical(remote)))
            .or_insert(inode);
        // A live socket wins over a closed one on the same 4-tuple.
        if *slot == 0 || (inode != 0 && inode < *slot) {
            *slot = inode;
        }
    }
}

const TCP: Protocol = Protocol(PROTO_TCP);
const UDP: Protocol = Protocol(PROTO_UDP);

/// The local addresses a socket serving `local_ip` may be bound to, most specific first:
/// the address itself, its family's wildcard, and for IPv4 the IPv6 wildcard (a
/// dual-stack socket takes IPv4 unless IPV6_V6ONLY, which the tables do not show).
fn bind_candidates(local_ip: IpAddr) -> [Option<IpAddr>; 3] {
    let v6_any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    match local_ip {
        IpAddr::V4(_) => [
            Some(local_ip),
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Some(v6_any),
        ],
        IpAddr::V6(_) => [Some(local_ip), Some(v6_any), None],
    }
}

fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

fn is_unspecified(address: SocketAddr) -> bool {
    address.ip().is_unspecified() && address.port() == 0
}

/// Parses one table; `None` (logged) if it is missing or does not parse.
fn read_table<T: FromReadSI>(net_dir: &Path, name: &str) -> Option<T> {
    let path = net_dir.join(name);
    let table: ProcResult<T> = T::from_file(&path, current_system_info());
    match table {
        Ok(table) => Some(table),
        Err(e) => {
            log::debug!("skipping socket table {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::enrich::sockets::fixture::{
        CLOSE, ESTABLISHED, FakeProc, LISTEN, TCP, TIME_WAIT, UDP, flow,
    };

    fn index(fake: &FakeProc) -> SocketIndex {
        SocketIndex::read(&fake.paths().net_dir)
    }

    #[test]
    fn connected_tcp_matches_its_exact_four_tuple_only() {
        let fake = FakeProc::new();
        fake.tcp("192.0.2.1:40000", "198.51.100.7:443", ESTABLISHED, 11);
        fake.tcp("[2001:db8::1]:40001", "[2001:db8::7]:443", ESTABLISHED, 12);
        let index = index(&fake);
        let v4 = flow(TCP, "192.0.2.1:40000", "198.51.100.7:443");
        let v6 = flow(TCP, "[2001:db8::1]:40001", "[2001:db8::7]:443");
        assert_eq!(index.lookup(&v4), Lookup::Socket(11));
        assert_eq!(index.lookup(&v6), Lookup::Socket(12));
        // The same ports seen the other way round are another flow: not ours.
        let reversed = flow(TCP, "198.51.100.7:443", "192.0.2.1:40000");
        assert_eq!(index.lookup(&reversed), Lookup::NoSocket);
        let other_remote = flow(TCP, "192.0.2.1:40000", "198.51.100.8:443");
        assert_eq!(index.lookup(&other_remote), Lookup::NoSocket);
    }

    #[test]
    fn inbound_flows_belong_to_the_listening_socket() {
        let fake = FakeProc::new();
        fake.tcp("0.0.0.0:22", "0.0.0.0:0", LISTEN, 21);
        fake.tcp("192.0.2.1:80", "0.0.0.0:0", LISTEN, 22);
        fake.tcp("[::]:443", "[::]:0", LISTEN, 23);
        let index = index(&fake);
        let ssh = flow(TCP, "192.0.2.1:22", "203.0.113.9:51515");
        assert_eq!(index.lookup(&ssh), Lookup::Socket(21));
        let web = flow(TCP, "192.0.2.1:80", "203.0.113.9:51516");
        assert_eq!(index.lookup(&web), Lookup::Socket(22));
        // Bound to another address than the flow's: not the flow's socket.
        let web_elsewhere = flow(TCP, "192.0.2.2:80", "203.0.113.9:51517");
        assert_eq!(index.lookup(&web_elsewhere), Lookup::NoSocket);
        let tls = flow(TCP, "[2001:db8::1]:443", "[2001:db8::9]:51518");
        assert_eq!(index.lookup(&tls), Lookup::Socket(23));
    }

    #[test]
    fn ipv4_flows_find_dual_stack_sockets() {
        let fake = FakeProc::new();
        // An accepted IPv4 connection on an IPv6 socket, and an IPv6 wildcard listener.
        fake.tcp(
            "[::ffff:192.0.2.1]:8080",
            "[::ffff:203.0.113.9]:50000",
            ESTABLISHED,
            31,
        );
        fake.tcp("[::]:8080", "[::]:0", LISTEN, 32);
        fake.udp("[::ffff:192.0.2.1]:5353", "[::]:0", 33);
        let index = index(&fake);
        let accepted = flow(TCP, "192.0.2.1:8080", "203.0.113.9:50000");
        assert_eq!(index.lookup(&accepted), Lookup::Socket(31));
        let new_peer = flow(TCP, "192.0.2.1:8080", "203.0.113.9:50001");
        assert_eq!(index.lookup(&new_peer), Lookup::Socket(32));
        let mdns = flow(UDP, "192.0.2.1:5353", "192.0.2.77:5353");
        assert_eq!(index.lookup(&mdns), Lookup::Socket(33));
    }

    #[test]
    fn udp_prefers_the_connected_then_the_most_specific_bound_socket() {
        let fake = FakeProc::new();
        fake.udp("127.0.0.1:53", "0.0.0.0:0", 41);
        fake.udp("0.0.0.0:53", "0.0.0.0:0", 42);
        fake.udp("192.0.2.1:53", "192.0.2.50:3333", 43);
        fake.udp("[::]:53", "[::]:0", 44);
        let index = index(&fake);
        let lookup = |local, remote| index.lookup(&flow(UDP, local, remote));
        assert_eq!(lookup("127.0.0.1:53", "127.0.0.1:6000"), Lookup::Socket(41));
        assert_eq!(
            lookup("192.0.2.1:53", "192.0.2.60:6000"),
            Lookup::Socket(42)
        );
        assert_eq!(
            lookup("192.0.2.1:53", "192.0.2.50:3333"),
            Lookup::Socket(43)
        );
        assert_eq!(
            lookup("[2001:db8::1]:53", "[2001:db8::60]:6000"),
            Lookup::Socket(44)
        );
    }

    #[test]
    fn protocols_do_not_mix() {
        let fake = FakeProc::new();
        fake.udp("0.0.0.0:53", "0.0.0.0:0", 51);
        fake.tcp("0.0.0.0:25", "0.0.0.0:0", LISTEN, 52);
        let index = index(&fake);
        assert_eq!(
            index.lookup(&flow(TCP, "192.0.2.1:53", "192.0.2.9:4000")),
            Lookup::NoSocket
        );
        assert_eq!(
            index.lookup(&flow(UDP, "192.0.2.1:25", "192.0.2.9:4000")),
            Lookup::NoSocket
        );
        // ICMP and other protocols have no socket in these tables.
        let icmp = flow(1, "192.0.2.1:53", "192.0.2.9:0");
        assert_eq!(index.lookup(&icmp), Lookup::NoSocket);
    }

    #[test]
    fn closed_connections_say_so_unless_a_listener_owns_the_port() {
        let fake = FakeProc::new();
        fake.tcp("192.0.2.1:40000", "198.51.100.7:443", TIME_WAIT, 0);
        fake.tcp("192.0.2.1:22", "203.0.113.9:50000", TIME_WAIT, 0);
        fake.tcp("0.0.0.0:22", "0.0.0.0:0", LISTEN, 61);
        let index = index(&fake);
        let outbound = flow(TCP, "192.0.2.1:40000", "198.51.100.7:443");
        assert_eq!(index.lookup(&outbound), Lookup::Closed);
        let inbound = flow(TCP, "192.0.2.1:22", "203.0.113.9:50000");
        assert_eq!(index.lookup(&inbound), Lookup::Socket(61));
        assert!(index.is_live(61) && !index.is_live(0));
    }

    #[test]
    fn sockets_neither_listening_nor_connected_carry_nothing() {
        let fake = FakeProc::new();
        fake.tcp("0.0.0.0:7000", "0.0.0.0:0", CLOSE, 71);
        let index = index(&fake);
        assert_eq!(
            index.lookup(&flow(TCP, "192.0.2.1:7000", "192.0.2.9:4000")),
            Lookup::NoSocket
        );
    }

    #[test]
    fn shared_ports_pick_the_same_socket_every_time() {
        let fake = FakeProc::new();
        // SO_REUSEPORT: one listening socket per worker.
        fake.tcp("0.0.0.0:80", "0.0.0.0:0", LISTEN, 83);
        fake.tcp("0.0.0.0:80", "0.0.0.0:0", LISTEN, 81);
        fake.tcp("0.0.0.0:80", "0.0.0.0:0", LISTEN, 82);
        let index = index(&fake);
        assert_eq!(
            index.lookup(&flow(TCP, "192.0.2.1:80", "192.0.2.9:4000")),
            Lookup::Socket(81)
        );
    }

    #[test]
    fn missing_or_garbled_tables_are_left_out() {
        let fake = FakeProc::new();
        fake.tcp("0.0.0.0:22", "0.0.0.0:0", LISTEN, 91);
        fake.udp("0.0.0.0:53", "0.0.0.0:0", 92);
        let net = fake.paths().net_dir;
        fs::remove_file(net.join("tcp6")).unwrap();
        fs::write(net.join("udp6"), "header\n   0: not a socket line\n").unwrap();
        let index = index(&fake);
        assert_eq!(
            index.lookup(&flow(TCP, "192.0.2.1:22", "192.0.2.9:4000")),
            Lookup::Socket(91)
        );
        assert_eq!(
            index.lookup(&flow(UDP, "192.0.2.1:53", "192.0.2.9:4000")),
            Lookup::Socket(92)
        );
        assert_eq!(
            SocketIndex::read(&net.join("absent")).lookup(&flow(
                TCP,
                "192.0.2.1:22",
                "192.0.2.9:4000"
            )),
            Lookup::NoSocket
        );
    }
}
