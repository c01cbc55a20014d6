//! Network namespaces and veth pairs for integration tests.
//!
//! Every test builds its own pair of namespaces joined by a veth pair, with names made
//! unique by the process id and a counter, and sends traffic only between them. The
//! guards delete the namespaces (and with them the veth pair) when dropped, so also
//! when a test panics. Nothing here touches the root namespace's interfaces.
//!
//! The links are made quiet so that packet counts are exact: IPv4 pairs have IPv6
//! turned off, IPv6 pairs have no link-local address and no duplicate address
//! detection, and both ends know each other's MAC address through permanent
//! neighbour entries (no ARP, no neighbour discovery). Their segmentation offloads are
//! off, so that the interfaces' own counters count segments, as flowmeter does (see
//! `offloads.rs`).

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use super::offloads::{self, Offload};

/// Panics unless the test runs as root: these tests must fail, not skip, without it.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test creates network namespaces and attaches eBPF programs: run it as root"
    );
}

/// A short name unique within this machine for as long as this process lives:
/// `fm<pid>x<counter>`, at most 13 characters (interface names allow 15).
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("fm{}x{n}", std::process::id())
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    output
}

/// A network namespace, deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(name: String) -> Self {
        require_root();
        run("ip", &["netns", "add", &name]);
        let netns = Self { name };
        netns.ip("link set lo up");
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME COMMAND`, the command's words separated by spaces (no quoting);
    /// panics if it fails.
    pub fn ip(&self, command: &str) -> Output {
        let mut args = vec!["-n", self.name.as_str()];
        args.extend(command.split_whitespace());
        run("ip", &args)
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program} in {}: {e}", self.name))
    }

    /// Sets sysctls (`key=value`) inside the namespace.
    pub fn sysctl(&self, settings: &[&str]) {
        let mut args = vec!["netns", "exec", self.name.as_str(), "sysctl", "-qw"];
        args.extend_from_slice(settings);
        run("ip", &args);
    }

    /// Runs `f` on a thread that has entered this namespace. Sockets made there stay
    /// in the namespace and can be used from any thread afterwards.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|scope| {
            let entered = scope.spawn(|| {
                let netns = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                // SAFETY: a valid namespace fd; setns changes only this thread.
                let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
                f()
            });
            entered
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The interface's own packet and byte counters (`ip -s -j link`).
    pub fn counters(&self, iface: &str) -> Counters {
        let output = self.ip(&format!("-s -j link show dev {iface}"));
        let links: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("`ip -j link` prints JSON");
        let stats = &links[0]["stats64"];
        let number = |direction: &str, field: &str| {
            stats[direction][field]
                .as_u64()
                .unwrap_or_else(|| panic!("no stats64.{direction}.{field} for {iface}: {links}"))
        };
        Counters {
            rx_packets: number("rx", "packets"),
            rx_bytes: number("rx", "bytes"),
            tx_packets: number("tx", "packets"),
            tx_bytes: number("tx", "bytes"),
        }
    }

    /// Waits (at most 10 s) until the kernel reports the interface's operstate as UP.
    pub fn wait_operstate_up(&self, iface: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.ip(&format!("-j link show dev {iface}"));
            let links: serde_json::Value =
                serde_json::from_slice(&output.stdout).expect("`ip -j link` prints JSON");
            if links[0]["operstate"] == "UP" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{iface} in {} is not up: {links}",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the interface's counters have not moved for a while, so that no
    /// packet is in flight when the caller reads them.
    pub fn wait_quiet(&self, iface: &str) -> Counters {
        const STILL: Duration = Duration::from_millis(200);
        const POLL: Duration = Duration::from_millis(40);
        const TIMEOUT: Duration = Duration::from_secs(10);
        let deadline = Instant::now() + TIMEOUT;
        let mut last = self.counters(iface);
        let mut still_since = Instant::now();
        loop {
            thread::sleep(POLL);
            let now = self.counters(iface);
            if now != last {
                last = now;
                still_since = Instant::now();
            } else if still_since.elapsed() >= STILL {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "{iface} in {} never went quiet: {now:?}",
                self.name
            );
        }
    }

    /// Turns TSO, GSO and GRO of `iface` on or off; panics unless they read back so.
    pub fn set_offloads(&self, iface: &str, on: bool) {
        self.run(|| {
            for offload in Offload::ALL {
                offloads::set(iface, offload, on);
                assert_eq!(
                    offloads::is_on(iface, offload),
                    on,
                    "{offload:?} of {iface} in {} did not turn {on}",
                    self.name
                );
            }
        });
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys the interfaces in it, veth peers included.
        let deleted = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&deleted, Ok(output) if output.status.success()) && !thread::panicking() {
            panic!(
                "could not delete network namespace {}: {deleted:?}",
                self.name
            );
        }
    }
}

/// An interface's packet and byte counters, as the kernel keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

impl Counters {
    /// What moved between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            rx_packets: self.rx_packets - earlier.rx_packets,
            rx_bytes: self.rx_bytes - earlier.rx_bytes,
            tx_packets: self.tx_packets - earlier.tx_packets,
            tx_bytes: self.tx_bytes - earlier.tx_bytes,
        }
    }

    /// The sum of both.
    pub fn plus(&self, other: &Counters) -> Counters {
        Counters {
            rx_packets: self.rx_packets + other.rx_packets,
            rx_bytes: self.rx_bytes + other.rx_bytes,
            tx_packets: self.tx_packets + other.tx_packets,
            tx_bytes: self.tx_bytes + other.tx_bytes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Bytes of the IP header on the wire (no options, no extension headers).
    pub fn ip_header(self) -> u64 {
        match self {
            Family::V4 => 20,
            Family::V6 => 40,
        }
    }
}

/// Bytes of an Ethernet header, which flowmeter and the interface counters include.
pub const ETHERNET_HEADER: u64 = 14;

pub const MAC_A: &str = "02:00:00:00:00:0a";
pub const MAC_B: &str = "02:00:00:00:00:0b";

/// Two namespaces, `a` and `b`, joined by a veth pair `a_if` <-> `b_if`, with one
/// address each in one family.
pub struct VethPair {
    // Dropping `a` deletes its namespace and so the whole veth pair; `b` follows.
    pub a: Netns,
    pub b: Netns,
    pub a_if: String,
    pub b_if: String,
    pub a_ip: IpAddr,
    pub b_ip: IpAddr,
    pub family: Family,
}

impl VethPair {
    /// A pair with private addresses of `family` (10.99.0.0/24 or fd00:99::/64).
    pub fn new(family: Family) -> Self {
        match family {
            Family::V4 => Self::with_ips(
                Ipv4Addr::new(10, 99, 0, 1).into(),
                Ipv4Addr::new(10, 99, 0, 2).into(),
            ),
            Family::V6 => Self::with_ips(
                Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1).into(),
                Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2).into(),
            ),
        }
    }

    /// A pair with these addresses (same family; IPv6 ones in one /64), on one link:
    /// e.g. documentation ranges that a test GeoIP database maps to countries.
    pub fn with_ips(a_ip: IpAddr, b_ip: IpAddr) -> Self {
        require_root();
        let family = if a_ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let name = unique_name();
        let a = Netns::new(format!("{name}-a"));
        let b = Netns::new(format!("{name}-b"));
        let pair = Self {
            a,
            b,
            a_if: format!("{name}a"),
            b_if: format!("{name}b"),
            a_ip,
            b_ip,
            family,
        };
        pair.add_link(None);
        pair.wait_quiet();
        pair
    }

    /// Creates the veth pair between the namespaces, addressed and quiet as [`Self::new`]
    /// describes: at start, or again after a test deleted it. `index`: a's ifindex, if
    /// the test wants one.
    pub fn add_link(&self, index: Option<u32>) {
        let (a, b, a_if, b_if) = (&self.a, &self.b, &self.a_if, &self.b_if);
        let (a_ip, b_ip) = (self.a_ip, self.b_ip);
        let index = index.map(|i| format!(" index {i}")).unwrap_or_default();
        a.ip(&format!(
            "link add {a_if}{index} address {MAC_A} type veth peer name {b_if} address {MAC_B} \
             netns {}",
            b.name()
        ));
        for (netns, iface, ip) in [(a, a_if, a_ip), (b, b_if, b_ip)] {
            match self.family {
                Family::V4 => {
                    netns.sysctl(&[&format!("net.ipv6.conf.{iface}.disable_ipv6=1")]);
                    let peer = if ip == a_ip { b_ip } else { a_ip };
                    netns.ip(&format!("addr add {ip} peer {peer} dev {iface}"));
                }
                Family::V6 => {
                    // No link-local address (so no router solicitation), and the
                    // unavoidable MLD reports sent at once rather than over seconds.
                    netns.sysctl(&[
                        &format!("net.ipv6.conf.{iface}.addr_gen_mode=1"),
                        &format!("net.ipv6.conf.{iface}.mldv1_unsolicited_report_interval=1"),
                        &format!("net.ipv6.conf.{iface}.mldv2_unsolicited_report_interval=1"),
                    ]);
                    // Both addresses must share this /64.
                    netns.ip(&format!("addr add {ip}/64 dev {iface} nodad"));
                }
            }
        }
        a.ip(&format!("link set {a_if} up"));
        b.ip(&format!("link set {b_if} up"));
        a.set_offloads(a_if, false);
        b.set_offloads(b_if, false);
        // IPv6 sends its MLD reports once the kernel sees the carrier (operstate UP),
        // which can lag by a second; only then can the link go quiet for good.
        a.wait_operstate_up(a_if);
        b.wait_operstate_up(b_if);
        for (netns, iface, peer_ip, peer_mac) in [(a, a_if, b_ip, MAC_B), (b, b_if, a_ip, MAC_A)] {
            netns.ip(&format!(
                "neigh add {peer_ip} lladdr {peer_mac} dev {iface} nud permanent"
            ));
        }
    }

    /// Waits until nothing moves on `a_if`, and returns its counters.
    pub fn wait_quiet(&self) -> Counters {
        self.a.wait_quiet(&self.a_if)
    }

    /// `a_if`'s counters now.
    pub fn a_counters(&self) -> Counters {
        self.a.counters(&self.a_if)
    }

    /// Turns TSO, GSO and GRO on or off at both ends.
    pub fn set_offloads(&self, on: bool) {
        self.a.set_offloads(&self.a_if, on);
        self.b.set_offloads(&self.b_if, on);
    }
}
