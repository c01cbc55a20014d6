//! A packet generator for flood tests, with no external tools: hand-built
//! Ethernet/IPv4/UDP frames written to an AF_PACKET raw socket bound to one interface,
//! so that they leave it as real frames and its veth peer receives them (the metered
//! end never sees them as its own PACKET_LOOPBACK copies).
//!
//! ```ignore
//! let sent = pair.b.run(|| {
//!     let sender = RawSender::bind(&pair.b_if);
//!     let mut random = Random::new(1);
//!     sender.send_udp(100_000, 18, |_| UdpHeaders { src: ..., ..headers })
//! });
//! ```

use std::{
    ffi::CString,
    io,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// Bytes of Ethernet, IPv4 (no options) and UDP headers.
pub const UDP_FRAME_HEADERS: usize = 14 + 20 + 8;

/// A small deterministic generator (xorshift64*): the same seed, the same "random"
/// addresses.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What one frame says.
#[derive(Clone, Copy, Debug)]
pub struct UdpHeaders {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpHeaders {
    /// Writes the headers into `frame` (at least [`UDP_FRAME_HEADERS`] long; the rest
    /// is the payload), with a correct IPv4 header checksum and no UDP checksum.
    pub fn write(&self, frame: &mut [u8]) {
        let ip_len = (frame.len() - 14) as u16;
        frame[0..6].copy_from_slice(&self.dst_mac);
        frame[6..12].copy_from_slice(&self.src_mac);
        frame[12..14].copy_from_slice(&0x0800_u16.to_be_bytes());
        let ip = &mut frame[14..34];
        ip[0] = 0x45; // version 4, 5 words
        ip[1] = 0;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..8].copy_from_slice(&[0, 0, 0x40, 0]); // id 0, don't fragment
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        let checksum = ipv4_checksum(ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        let udp = &mut frame[34..42];
        udp[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
    }
}

/// The one's-complement sum of the header's 16-bit words, complemented.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// "02:00:00:00:00:0a" as bytes.
pub fn mac(text: &str) -> [u8; 6] {
    let mut bytes = [0; 6];
    for (byte, part) in bytes.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16).unwrap_or_else(|e| panic!("MAC {text}: {e}"));
    }
    bytes
}

/// An AF_PACKET raw socket bound to one interface, for sending only.
pub struct RawSender {
    fd: OwnedFd,
}

impl RawSender {
    /// Opens it on `iface`; call it on a thread inside the interface's namespace
    /// (`Netns::run`): the socket stays there.
    pub fn bind(iface: &str) -> Self {
        let name = CString::new(iface).expect("an interface name");
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(
            ifindex,
            0,
            "no interface {iface}: {}",
            io::Error::last_os_error()
        );
        // Protocol 0: this socket receives nothing.
        // SAFETY: plain arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            raw >= 0,
            "socket(AF_PACKET): {}",
            io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; all zero is a valid start.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        address.sll_ifindex = ifindex as i32;
        // SAFETY: a valid sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            rc,
            0,
            "bind(AF_PACKET, {iface}): {}",
            io::Error::last_os_error()
        );
        Self { fd }
    }

    /// Sends one whole frame; waits and retries while the device has no room.
    pub fn send(&self, frame: &[u8]) {
        loop {
            // SAFETY: a valid buffer and its length.
            let sent =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if sent == frame.len() as isize {
                return;
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => std::thread::yield_now(),
                _ => panic!("send on AF_PACKET: {error} ({sent} bytes sent)"),
            }
        }
    }

    /// Sends `count` UDP frames of `payload` bytes each, frame `n` with the headers
    /// `headers(n)` gives. Returns the bytes sent (whole frames).
    pub fn send_udp(
        &self,
        count: u64,
        payload: usize,
        mut headers: impl FnMut(u64) -> UdpHeaders,
    ) -> u64 {
        let mut frame = vec![0; UDP_FRAME_HEADERS + payload];
        for n in 0..count {
            headers(n).write(&mut frame);
            self.send(&frame);
        }
        count * frame.len() as u64
    }
}

/// The IPv4 address of an IPv4 test pair.
pub fn ipv4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => panic!("an IPv4 pair, not {ip}"),
    }
}

/// Frame `n` of a flood where every frame is another flow: a distinct (address, port),
/// 512 hosts of 198.51.100.0/24 and 203.0.113.0/24 times the source ports from 1024 up,
/// to `dst` port 53. `macs`: (destination, source), parsed once by the caller.
pub fn distinct_source(n: u64, dst: Ipv4Addr, macs: ([u8; 6], [u8; 6])) -> UdpHeaders {
    let host = (n / 2 % 256) as u8;
    let src = if n.is_multiple_of(2) {
        Ipv4Addr::new(198, 51, 100, host)
    } else {
        Ipv4Addr::new(203, 0, 113, host)
    };
    UdpHeaders {
        dst_mac: macs.0,
        src_mac: macs.1,
        src,
        dst,
        src_port: 1024 + (n / 512) as u16,
        dst_port: 53,
    }
}
