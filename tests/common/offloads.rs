//! An interface's segmentation offloads (TSO, GSO, GRO), read and set as `ethtool -k` /
//! `ethtool -K` do, through the SIOCETHTOOL ioctl (ethtool itself may be missing).
//!
//! With them on, a veth pair passes TCP as super-packets of up to 64 KB and its own
//! counters (`ip -s link`) count those; with them off, the kernel segments before the
//! device and the counters count the packets a NIC would put on the wire. flowmeter
//! counts segments either way, so the tests compare its totals with the counters of
//! links whose offloads are off (the default of `VethPair`), and check links with
//! offloads on against the segments' arithmetic (`tso_transfer.rs`).

use std::{io, net::UdpSocket, os::fd::AsRawFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// A segmentation offload, by its legacy ethtool get/set commands.
#[derive(Clone, Copy, Debug)]
pub enum Offload {
    /// tcp-segmentation-offload: the device takes TCP super-packets.
    Tso,
    /// generic-segmentation-offload: the kernel segments late, at the device.
    Gso,
    /// generic-receive-offload: received segments are merged into super-packets.
    Gro,
}

impl Offload {
    pub const ALL: [Offload; 3] = [Offload::Tso, Offload::Gso, Offload::Gro];

    /// (ETHTOOL_G..., ETHTOOL_S...) from linux/ethtool.h.
    fn commands(self) -> (u32, u32) {
        match self {
            Offload::Tso => (0x1e, 0x1f),
            Offload::Gso => (0x23, 0x24),
            Offload::Gro => (0x2b, 0x2c),
        }
    }
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with `ifr_data` (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    pad: [u8; 16],
}

/// One SIOCETHTOOL command with a value, on `iface` of the caller's network namespace.
fn ethtool(iface: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let socket = UdpSocket::bind("0.0.0.0:0").or_else(|_| UdpSocket::bind("[::]:0"))?;
    let mut value = EthtoolValue { cmd, data };
    let mut request = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        pad: [0; 16],
    };
    assert!(
        iface.len() < libc::IFNAMSIZ,
        "interface name too long: {iface}"
    );
    request.name[..iface.len()].copy_from_slice(iface.as_bytes());
    // SAFETY: SIOCETHTOOL reads the name and the ethtool_value `data` points to, both
    // alive for the call, and writes only the value.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut request) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data)
}

/// Whether `offload` is on for `iface` (in the calling thread's namespace).
pub fn is_on(iface: &str, offload: Offload) -> bool {
    let (get, _) = offload.commands();
    ethtool(iface, get, 0).unwrap_or_else(|e| panic!("reading {offload:?} of {iface}: {e}")) != 0
}

/// Turns `offload` on or off for `iface` (in the calling thread's namespace).
pub fn set(iface: &str, offload: Offload, on: bool) {
    let (_, set) = offload.commands();
    ethtool(iface, set, u32::from(on))
        .unwrap_or_else(|e| panic!("turning {offload:?} of {iface} to {on}: {e}"));
}
