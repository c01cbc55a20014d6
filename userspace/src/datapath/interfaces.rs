//! Network interfaces to meter: resolving names (and indexes back to names, for
//! `presence`), the default set, and what sysfs says of a link (its speed, for alerts
//! and summaries).

use std::{ffi::CString, fs, path::Path};

use super::Error;

/// An interface as the kernel names and numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub link: LinkLayer,
}

/// How the interface's frames begin, which the kernel programs must know to parse them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLayer {
    /// An Ethernet header: Ethernet, Wi-Fi, veth, bridges, bonds, VLANs, loopback.
    Ethernet,
    /// The IP header first: tun, WireGuard, PPP, IP-in-IP and GRE tunnels.
    RawIp,
}

impl LinkLayer {
    /// From the ARPHRD_* number in /sys/class/net/IF/type; `None` if flowmeter cannot
    /// parse that kind of link.
    pub fn from_arphrd(arphrd: u32) -> Option<Self> {
        match arphrd {
            // ETHER, LOOPBACK
            1 | 772 => Some(Self::Ethernet),
            // PPP, RAWIP, TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE, NONE
            512 | 519 | 768 | 769 | 776 | 778 | 823 | 65534 => Some(Self::RawIp),
            _ => None,
        }
    }
}

/// Where [`link_speed_bps`] finds `class/net` on this host.
pub const SYSFS_ROOT: &str = "/sys";

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;

/// The interfaces named on the command line, or every up, non-loopback one that
/// flowmeter can parse (others are skipped with a warning).
pub fn resolve(names: &[String]) -> Result<Vec<Interface>, Error> {
    let named = !names.is_empty();
    let names = if named {
        names.to_vec()
    } else {
        default_names()?
    };
    let mut interfaces: Vec<Interface> = Vec::with_capacity(names.len());
    for name in names {
        if interfaces.iter().any(|known| known.name == name) {
            continue;
        }
        let ifindex = ifindex_of(&name).ok_or_else(|| Error::UnknownInterface(name.clone()))?;
        let arphrd = read_sys(&name, "type").unwrap_or(0);
        match LinkLayer::from_arphrd(arphrd) {
            Some(link) => interfaces.push(Interface {
                name,
                ifindex,
                link,
            }),
            None if named => {
                return Err(Error::UnsupportedLink {
                    iface: name,
                    arphrd,
                });
            }
            None => log::warn!("{name}: skipped, link type {arphrd} is neither Ethernet nor IP"),
        }
    }
    if interfaces.is_empty() {
        return Err(Error::NoInterfaces);
    }
    Ok(interfaces)
}

/// A number from /sys/class/net/IF/FILE (decimal or 0x-prefixed hexadecimal).
fn read_sys(iface: &str, file: &str) -> Option<u32> {
    let text = fs::read_to_string(Path::new("/sys/class/net").join(iface).join(file)).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The kernel's index of `name`, or `None` if there is no such interface.
pub fn ifindex_of(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: c_name is a valid NUL-terminated string for the duration of the call.
    let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    (ifindex != 0).then_some(ifindex)
}

/// The name the kernel gives `ifindex` now, or `None` if no interface has that index.
pub fn name_of(ifindex: u32) -> Option<String> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname may write, NUL included.
    let found = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: on success the kernel's name was written into `name`, NUL-terminated.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn default_names() -> Result<Vec<String>, Error> {
    let entries = fs::read_dir("/sys/class/net")
        .map_err(|e| Error::Io("listing /sys/class/net".into(), e))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let flags = read_sys(name, "flags").unwrap_or(0);
            flags & IFF_UP != 0 && flags & IFF_LOOPBACK == 0
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `iface` is administratively up (`IFF_UP`); `None` if sysfs does not say.
pub fn is_up(iface: &str) -> Option<bool> {
    read_sys(iface, "flags").map(|flags| flags & IFF_UP != 0)
}

/// The link speed of `iface` in bits per second, from `SYSFS/class/net/IF/speed` (Mb/s),
/// with `sysfs_root` normally [`SYSFS_ROOT`]. `None` when unknown: the file is missing or
/// unreadable (down interfaces refuse the read), or says -1 or 0, as virtual interfaces
/// often do.
pub fn link_speed_bps(sysfs_root: &Path, iface: &str) -> Option<u64> {
    // An interface name is one path component.
    if iface.is_empty() || iface == "." || iface == ".." || iface.contains('/') {
        return None;
    }
    let path = sysfs_root.join("class/net").join(iface).join("speed");
    let mbps: i64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    // Some drivers print SPEED_UNKNOWN (-1) as an unsigned 32-bit number.
    if mbps <= 0 || mbps >= i64::from(u32::MAX) {
        return None;
    }
    u64::try_from(mbps).ok()?.checked_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_layers_flowmeter_parses() {
        assert_eq!(LinkLayer::from_arphrd(1), Some(LinkLayer::Ethernet));
        assert_eq!(LinkLayer::from_arphrd(772), Some(LinkLayer::Ethernet));
        assert_eq!(LinkLayer::from_arphrd(65534), Some(LinkLayer::RawIp));
        assert_eq!(LinkLayer::from_arphrd(512), Some(LinkLayer::RawIp));
        // InfiniBand and CAN frames are neither.
        assert_eq!(LinkLayer::from_arphrd(32), None);
        assert_eq!(LinkLayer::from_arphrd(280), None);
    }

    #[test]
    fn link_speed_is_read_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let write = |iface: &str, text: &str| {
            let dir = root.path().join("class/net").join(iface);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("speed"), text).unwrap();
        };
        write("eth0", "1000\n");
        write("veth0", "-1\n");
        write("odd0", "4294967295\n");
        write("bad0", "fast\n");
        assert_eq!(link_speed_bps(root.path(), "eth0"), Some(1_000_000_000));
        for unknown in ["veth0", "odd0", "bad0", "missing0", "", "..", "../eth0"] {
            assert_eq!(link_speed_bps(root.path(), unknown), None, "{unknown}");
        }
    }
}
