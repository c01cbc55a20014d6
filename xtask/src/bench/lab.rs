//! The bench's network: two namespaces of its own, a sender and a receiver, joined by a
//! veth pair with one end in each, as in tests/common/netns.rs. Nothing touches the root
//! namespace or the machine's interfaces; dropping the [`Lab`] deletes both namespaces and
//! with them the veth pair.
//!
//! The link is quiet, so that counters compare exactly: no IPv6, and permanent neighbour
//! entries (no ARP).

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::procs;
use crate::cmd;

pub const SENDER_IP: &str = "10.98.0.1";
pub const RECEIVER_IP: &str = "10.98.0.2";
pub const SENDER_MAC: &str = "02:00:00:00:01:0a";
pub const RECEIVER_MAC: &str = "02:00:00:00:01:0b";

// The C library that std links anyway; xtask has no libc crate.
unsafe extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

const CLONE_NEWNET: i32 = 0x4000_0000;

/// A network namespace, deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    fn new(name: String) -> Result<Self> {
        cmd::output(Command::new("ip").args(["netns", "add", &name]))?;
        let netns = Self { name };
        netns.ip("link set lo up")?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME WORDS...`.
    fn ip(&self, words: &str) -> Result<String> {
        cmd::output(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(words.split_whitespace()),
        )
    }

    /// `ip netns exec NAME PROGRAM`: the program itself (ip execs it), in this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

/// Moves the calling thread into the namespace called `name`, for good: call it first
/// thing on a thread of its own. Sockets it makes then belong there.
pub fn enter(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: a valid namespace fd; setns changes only the calling thread.
    if unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd::output(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// An interface's packet and byte counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

impl Counters {
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            rx_packets: self.rx_packets - earlier.rx_packets,
            rx_bytes: self.rx_bytes - earlier.rx_bytes,
            tx_packets: self.tx_packets - earlier.tx_packets,
            tx_bytes: self.tx_bytes - earlier.tx_bytes,
        }
    }
}

/// Sender and receiver namespaces joined by a veth pair.
pub struct Lab {
    // Dropped in this order: the receiver's namespace takes the veth pair with it.
    pub receiver: Netns,
    pub sender: Netns,
    pub receiver_if: String,
    pub sender_if: String,
}

impl Lab {
    pub fn new() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // `fmb<pid>x<n>` + one letter: at most 15 characters, the limit for interfaces.
        let name = format!("fmb{}x{n}", std::process::id());
        let receiver = Netns::new(format!("{name}-r"))?;
        let sender = Netns::new(format!("{name}-s"))?;
        let lab = Self {
            receiver_if: format!("{name}r"),
            sender_if: format!("{name}s"),
            receiver,
            sender,
        };
        lab.configure()?;
        lab.wait_quiet()?;
        Ok(lab)
    }

    fn configure(&self) -> Result<()> {
        let (s, r) = (&self.sender, &self.receiver);
        let (s_if, r_if) = (&self.sender_if, &self.receiver_if);
        s.ip(&format!(
            "link add {s_if} address {SENDER_MAC} type veth peer name {r_if} \
             address {RECEIVER_MAC} netns {}",
            r.name()
        ))?;
        for (ns, iface, ip, peer_ip, peer_mac) in [
            (s, s_if, SENDER_IP, RECEIVER_IP, RECEIVER_MAC),
            (r, r_if, RECEIVER_IP, SENDER_IP, SENDER_MAC),
        ] {
            cmd::output(
                ns.command("sysctl")
                    .args(["-qw", &format!("net.ipv6.conf.{iface}.disable_ipv6=1")]),
            )?;
            ns.ip(&format!("addr add {ip} peer {peer_ip} dev {iface}"))?;
            ns.ip(&format!("link set {iface} up"))?;
            ns.ip(&format!(
                "neigh add {peer_ip} lladdr {peer_mac} dev {iface} nud permanent"
            ))?;
        }
        Ok(())
    }

    /// The receiver interface's counters, from sysfs inside its namespace.
    pub fn counters(&self) -> Result<Counters> {
        let dir = format!("/sys/class/net/{}/statistics", self.receiver_if);
        let files =
            ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"].map(|f| format!("{dir}/{f}"));
        let text = cmd::output(self.receiver.command("cat").args(&files))?;
        let n: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {dir}: {text:?}"))?;
        let [rx_packets, rx_bytes, tx_packets, tx_bytes] = n[..] else {
            bail!("reading {dir}: {text:?}");
        };
        Ok(Counters {
            rx_packets,
            rx_bytes,
            tx_packets,
            tx_bytes,
        })
    }

    /// Waits (at most 10 s) until the receiver's counters stand still for 200 ms, so that
    /// no packet is in flight, and returns them.
    pub fn wait_quiet(&self) -> Result<Counters> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = self.counters()?;
        let mut still_since = Instant::now();
        loop {
            procs::sleep(Duration::from_millis(40))?;
            let now = self.counters()?;
            if now != last {
                (last, still_since) = (now, Instant::now());
            } else if still_since.elapsed() >= Duration::from_millis(200) {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("{} never went quiet: {now:?}", self.receiver_if);
            }
        }
    }

    /// Whether the receiver listens on TCP `port` (`ss` in its namespace).
    pub fn listening(&self, port: u16) -> Result<bool> {
        let out = cmd::output(
            self.receiver
                .command("ss")
                .args(["-Hltn", &format!("sport = :{port}")]),
        )?;
        Ok(!out.trim().is_empty())
    }
}
