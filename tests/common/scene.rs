//! The scene of the attribution tests of `log` and `top`: two test namespaces joined by a
//! veth pair, a UDP receiver in `b`, an unconnected sender in `a`, and a country database
//! that puts `a` in DE and `b` in NL (documentation ranges).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    path::PathBuf,
};

use super::{geo::write_country_db, netns::VethPair};

/// The port the receiver listens on.
const PORT: u16 = 9000;

pub struct CountryScene {
    pub pair: VethPair,
    /// Maps 192.0.2.0/24 (the local end) to DE and 198.51.100.0/24 (the remote) to NL.
    pub db: PathBuf,
    pub receiver: UdpSocket,
    /// Bound in `a`, on an ephemeral port.
    pub sender: UdpSocket,
    /// Where the sender sends to: the receiver's address.
    pub remote: SocketAddr,
}

impl CountryScene {
    pub fn new() -> Self {
        let local_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let remote_ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
        let db = write_country_db(&[("192.0.2.0/24", "DE"), ("198.51.100.0/24", "NL")]);
        let pair = VethPair::with_ips(local_ip, remote_ip);
        let receiver = pair
            .b
            .run(|| UdpSocket::bind((remote_ip, PORT)).expect("bind in b"));
        let sender = pair
            .a
            .run(|| UdpSocket::bind((local_ip, 0)).expect("bind in a"));
        Self {
            pair,
            db,
            receiver,
            sender,
            remote: SocketAddr::new(remote_ip, PORT),
        }
    }
}

/// The test's own short name, as the kernel keeps it (at most 15 bytes).
pub fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .expect("read /proc/self/comm")
        .trim()
        .to_owned()
}
