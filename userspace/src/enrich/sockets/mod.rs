//! Socket → process: which local process owns a flow, as `lsof -i` would say.
//!
//! The kernel's socket tables (`/proc/net/{tcp,tcp6,udp,udp6}`) map a flow to a socket
//! inode; the open files of every process (`/proc/PID/fd`) map the inode to a process.
//! Both are costly on a busy host, so [`SocketTable`] caches its answers per flow and
//! reads `/proc` again only for flows it has not attributed yet:
//!
//! ```no_run
//! # use std::time::Instant;
//! # use flowmeter::{datapath::Snapshot, enrich::sockets::{Owner, ProcPaths, SocketTable}};
//! # fn each_interval(snapshot: &Snapshot, table: &mut SocketTable) {
//! table.resolve(snapshot.flows.iter().map(|delta| &delta.id), Instant::now());
//! for delta in &snapshot.flows {
//!     if let Some(Owner::Process(process)) = table.owner(&delta.id) {
//!         println!("{} {}", process.pid, process.comm);
//!     }
//! }
//! # }
//! ```

mod holders;
pub mod namespaces;
mod tables;

#[cfg(test)]
mod fixture;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use flowmeter_common::{PROTO_TCP, PROTO_UDP};
use rustc_hash::FxHashMap;

use crate::{
    datapath::{FlowId, Protocol},
    proc::UserNames,
    shrink,
};
use tables::{Lookup, SocketIndex};

/// The process owning a flow, as the shared `/proc` reader ([`crate::proc`]) describes it.
pub use crate::proc::ProcessInfo;

/// Who owns a flow on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The process holding the flow's socket, or the socket listening for it.
    Process(Arc<ProcessInfo>),
    /// A socket on this host carries the flow, but no process holding it could be found:
    /// the connection has closed (TIME_WAIT), its process exited, or `/proc` hides it.
    Unresolved,
    /// No socket on this host matches the flow, which is addressed to this host: the
    /// kernel answered it (ICMP, a reset or port unreachable to a closed port) or a raw
    /// socket took it. Not a guess at some process.
    NoLocalSocket,
    /// Neither end is an address of this host (of the metered namespace): routed,
    /// bridged or NATed through it, and no socket here or behind the NAT was found.
    Forwarded,
    /// Its socket may be in a network namespace whose tables this process may not read
    /// (`/proc/PID/ns/net` or `/proc/PID/net` refused): the owner is hidden, not absent.
    Hidden,
    /// Not known yet: the flow is new and its lookup in `/proc` has not answered within
    /// the interval's budget (see `enrich::resolver`). Judged by the flow alone until
    /// its owner arrives; an owner found never goes back to this.
    Resolving,
}

impl Owner {
    /// The owning process, if there is one.
    pub fn process(&self) -> Option<&ProcessInfo> {
        match self {
            Owner::Process(process) => Some(process),
            Owner::Unresolved
            | Owner::NoLocalSocket
            | Owner::Forwarded
            | Owner::Hidden
            | Owner::Resolving => None,
        }
    }
}

/// A socket waiting for peers: a listening TCP socket, or an unconnected UDP one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub proto: Protocol,
    /// The address it is bound to; the unspecified address means all of the host's.
    pub local: SocketAddr,
    /// The process holding it (the lowest pid if several do); `None` if none was found.
    pub owner: Option<Arc<ProcessInfo>>,
}

/// Every listening TCP and unconnected UDP socket in the tables of `paths` (for
/// [`ProcPaths::system`], the reading thread's network namespace), with its holder,
/// sorted by protocol and address. One read of the tables and one scan of `/proc/*/fd`;
/// `audit` uses it to find exposed services.
pub fn listeners(paths: &ProcPaths) -> Vec<Listener> {
    let index = SocketIndex::read(&paths.net_dir);
    let mut bound: Vec<(Protocol, SocketAddr, u64)> = index.bound().collect();
    bound.sort_unstable_by_key(|&(proto, local, _)| (proto.0, local));
    let wanted: HashSet<u64> = bound.iter().map(|&(_, _, inode)| inode).collect();
    let holders = holders::find_holders(
        &paths.proc_root,
        &wanted,
        |inode| index.is_live(inode),
        &mut UserNames::default(),
    );
    bound
        .into_iter()
        .map(|(proto, local, inode)| Listener {
            proto,
            local,
            owner: holders.get(&inode).cloned(),
        })
        .collect()
}

/// Where `/proc` is read: the seam for tests (a fixture tree) and for namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcPaths {
    /// Holds the `PID/` directories.
    pub proc_root: PathBuf,
    /// Holds the `tcp`, `tcp6`, `udp`, `udp6` tables.
    pub net_dir: PathBuf,
}

impl ProcPaths {
    /// This host: `/proc`, and the socket tables of the network namespace of the thread
    /// that reads them (`/proc/thread-self/net`; `/proc/net` would follow the main
    /// thread's namespace, and a meter thread may have entered another with setns).
    pub fn system() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            net_dir: PathBuf::from("/proc/thread-self/net"),
        }
    }
}

impl Default for ProcPaths {
    fn default() -> Self {
        Self::system()
    }
}

/// How long answers are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A flow without a process (no socket, or no holder found) is looked up again
    /// after this long: its socket may appear later. Bounds the rescans on a host that
    /// forwards traffic.
    pub retry_unowned: Duration,
    /// A flow not asked about for this long is forgotten (and looked up afresh if it
    /// comes back), so memory follows the live flows.
    pub forget_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            retry_unowned: Duration::from_secs(10),
            forget_after: Duration::from_secs(120),
        }
    }
}

/// What one [`SocketTable::resolve`] call read from `/proc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refresh {
    /// The socket tables were read (some flow was due for a lookup).
    pub tables_read: bool,
    /// `/proc/*/fd` was scanned (some flow's socket had no known holder).
    pub processes_scanned: bool,
}

/// Flow → owner, cached. Call [`resolve`](Self::resolve) once per interval with the
/// interval's flows, then ask [`owner`](Self::owner) for each.
#[derive(Debug)]
pub struct SocketTable {
    paths: ProcPaths,
    timing: Timing,
    /// Fx hashing: this map is probed for every flow of every interval.
    flows: FxHashMap<FlowId, Cached>,
    /// Holders of sockets seen at the last refresh, so that a new flow on a known socket
    /// (another peer of a UDP or listening socket) needs no scan of `/proc/*/fd`.
    holders: HashMap<u64, Arc<ProcessInfo>>,
    users: UserNames,
}

#[derive(Debug)]
struct Cached {
    owner: Owner,
    /// When the owner was looked up.
    checked: Instant,
    /// When the flow was last asked about.
    seen: Instant,
}

/// The answer for flows that no socket can carry, whatever the tables say.
const NOT_TCP_OR_UDP: &Owner = &Owner::NoLocalSocket;

impl SocketTable {
    pub fn new(paths: ProcPaths) -> Self {
        Self {
            paths,
            timing: Timing::default(),
            flows: FxHashMap::default(),
            holders: HashMap::new(),
            users: UserNames::default(),
        }
    }

    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// How long answers are kept: callers that keep owners of their own follow it.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Makes [`owner`](Self::owner) answer for `flows`. Flows already attributed are
    /// answered from the cache with no I/O; the others (new ones, and unowned ones due
    /// for a retry) are looked up together, with one read of the socket tables and at
    /// most one scan of `/proc/*/fd`. Flows not passed for a while are forgotten.
    pub fn resolve<'a>(
        &mut self,
        flows: impl IntoIterator<Item = &'a FlowId>,
        now: Instant,
    ) -> Refresh {
        let due: Vec<&FlowId> = flows
            .into_iter()
            .filter(|flow| self.touch(flow, now))
            .collect();
        let refresh = if due.is_empty() {
            Refresh::default()
        } else {
            self.look_up(&due, now)
        };
        self.forget_idle(now);
        refresh
    }

    /// The owner of `flow`; `None` if it was never resolved (or was forgotten).
    pub fn owner(&self, flow: &FlowId) -> Option<&Owner> {
        if !is_tcp_or_udp(flow) {
            return Some(NOT_TCP_OR_UDP);
        }
        self.flows.get(flow).map(|cached| &cached.owner)
    }

    /// Finds the holders of every listening TCP and unconnected UDP socket now: the
    /// sockets that take new peers, whose flows then need no scan of `/proc/*/fd` of
    /// their own. One read of the tables and one scan, as [`listeners`] makes.
    pub fn prime(&mut self) {
        let index = SocketIndex::read(&self.paths.net_dir);
        let bound: HashSet<u64> = index.bound().map(|(_, _, inode)| inode).collect();
        let is_live = |inode| index.is_live(inode);
        let found = holders::find_holders(&self.paths.proc_root, &bound, is_live, &mut self.users);
        self.holders.extend(found);
    }

    /// How many flows are cached.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Marks `flow` as seen; true if it needs a lookup.
    fn touch(&mut self, flow: &FlowId, now: Instant) -> bool {
        if !is_tcp_or_udp(flow) {
            return false;
        }
        let Some(cached) = self.flows.get_mut(flow) else {
            return true;
        };
        cached.seen = now;
        match cached.owner {
            Owner::Process(_) => false,
            Owner::Unresolved
            | Owner::NoLocalSocket
            | Owner::Forwarded
            | Owner::Hidden
            | Owner::Resolving => {
                now.saturating_duration_since(cached.checked) >= self.timing.retry_unowned
            }
        }
    }

    /// Reads the tables once, scans for the holders of sockets not seen before, and
    /// caches an owner for each of `due`.
    fn look_up(&mut self, due: &[&FlowId], now: Instant) -> Refresh {
        let index = SocketIndex::read(&self.paths.net_dir);
        // Closed sockets' inodes may be reused by new sockets: forget their holders.
        self.holders.retain(|&inode, _| index.is_live(inode));
        let lookups: Vec<Lookup> = due.iter().map(|flow| index.lookup(flow)).collect();
        let unknown: HashSet<u64> = lookups
            .iter()
            .filter_map(|lookup| match lookup {
                Lookup::Socket(inode) if !self.holders.contains_key(inode) => Some(*inode),
                _ => None,
            })
            .collect();
        if !unknown.is_empty() {
            let is_live = |inode| index.is_live(inode);
            let found =
                holders::find_holders(&self.paths.proc_root, &unknown, is_live, &mut self.users);
            for (inode, process) in found {
                self.holders.entry(inode).or_insert(process);
            }
        }
        for (flow, lookup) in due.iter().zip(lookups) {
            let owner = self.owner_of(lookup);
            let cached = Cached {
                owner,
                checked: now,
                seen: now,
            };
            self.flows.insert((*flow).clone(), cached);
        }
        Refresh {
            tables_read: true,
            processes_scanned: !unknown.is_empty(),
        }
    }

    fn owner_of(&self, lookup: Lookup) -> Owner {
        match lookup {
            Lookup::Socket(inode) => match self.holders.get(&inode) {
                Some(process) => Owner::Process(Arc::clone(process)),
                None => Owner::Unresolved,
            },
            Lookup::Closed => Owner::Unresolved,
            Lookup::NoSocket => Owner::NoLocalSocket,
        }
    }

    /// Forgets flows not asked about for [`Timing::forget_after`], and flows without
    /// a process once their retry is due: they would be looked up afresh anyway, and a
    /// flood's spoofed flows, which have no process, are not kept for minutes.
    pub fn forget_idle(&mut self, now: Instant) {
        let Timing {
            forget_after,
            retry_unowned,
        } = self.timing;
        self.flows.retain(|_, cached| match cached.owner {
            Owner::Process(_) => now.saturating_duration_since(cached.seen) < forget_after,
            _ => now.saturating_duration_since(cached.checked) < retry_unowned,
        });
        shrink::to_live(&mut self.flows);
    }
}

/// Whether a socket can carry `flow`: the others need no lookup, they have none.
pub fn is_tcp_or_udp(flow: &FlowId) -> bool {
    flow.proto.0 == PROTO_TCP || flow.proto.0 == PROTO_UDP
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixture::{ESTABLISHED, FakeProc, FakeProcess, LISTEN, TCP, UDP, flow};

    const SECOND: Duration = Duration::from_secs(1);

    /// A host running sshd (pid 700: a listener and one accepted connection) and a
    /// resolver (pid 53: one unconnected UDP socket).
    fn host() -> FakeProc {
        let fake = FakeProc::new();
        fake.tcp("0.0.0.0:22", "0.0.0.0:0", LISTEN, 100);
        fake.tcp("192.0.2.1:22", "203.0.113.9:50000", ESTABLISHED, 101);
        fake.udp("[::]:53", "[::]:0", 102);
        fake.process(&FakeProcess {
            pid: 700,
            comm: "sshd",
            args: &["sshd: admin [priv]"],
            uid: 0,
            exe: Some("/usr/sbin/sshd"),
        });
        fake.fd(700, 3, 100);
        fake.fd(700, 4, 101);
        fake.process(&FakeProcess {
            pid: 53,
            comm: "named",
            args: &["/usr/sbin/named", "-u", "bind"],
            uid: 0,
            exe: Some("/usr/sbin/named"),
        });
        fake.fd(53, 9, 102);
        fake
    }

    fn ssh() -> FlowId {
        flow(TCP, "192.0.2.1:22", "203.0.113.9:50000")
    }

    fn dns() -> FlowId {
        flow(UDP, "[2001:db8::1]:53", "[2001:db8::99]:40000")
    }

    fn forwarded() -> FlowId {
        flow(TCP, "10.1.0.5:443", "198.51.100.20:61000")
    }

    fn pid(table: &SocketTable, flow: &FlowId) -> Option<u32> {
        table.owner(flow)?.process().map(|process| process.pid)
    }

    #[test]
    fn listeners_are_the_bound_sockets_with_their_holders() {
        let fake = host();
        fake.tcp("127.0.0.1:6379", "0.0.0.0:0", LISTEN, 103);
        let found: Vec<(u8, String, Option<u32>)> = listeners(&fake.paths())
            .into_iter()
            .map(|l| (l.proto.0, l.local.to_string(), l.owner.map(|p| p.pid)))
            .collect();
        assert_eq!(
            found,
            [
                (TCP, "0.0.0.0:22".to_owned(), Some(700)),
                (TCP, "127.0.0.1:6379".to_owned(), None),
                (UDP, "[::]:53".to_owned(), Some(53)),
            ]
        );
    }

    #[test]
    fn one_batch_reads_the_tables_once_and_attributes_every_flow() {
        let fake = host();
        let mut table = SocketTable::new(fake.paths());
        let icmp = flow(1, "192.0.2.1:0", "203.0.113.9:0");
        let refresh = table.resolve([&ssh(), &dns(), &forwarded(), &icmp], Instant::now());
        assert_eq!(
            refresh,
            Refresh {
                tables_read: true,
                processes_scanned: true
            }
        );
        assert_eq!(pid(&table, &ssh()), Some(700));
        assert_eq!(pid(&table, &dns()), Some(53));
        assert_eq!(table.owner(&forwarded()), Some(&Owner::NoLocalSocket));
        assert_eq!(table.owner(&icmp), Some(&Owner::NoLocalSocket));
        // Only TCP and UDP flows take room.
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn known_flows_are_answered_without_reading_proc() {
        let fake = host();
        let mut table = SocketTable::new(fake.paths());
        let start = Instant::now();
        table.resolve([&ssh(), &dns()], start);
        fake.remove_everything();
        let refresh = table.resolve([&ssh(), &dns()], start + 5 * SECOND);
        assert_eq!(refresh, Refresh::default());
        assert_eq!(
            (pid(&table, &ssh()), pid(&table, &dns())),
            (Some(700), Some(53))
        );
    }

    #[test]
    fn a_new_flow_on_a_known_socket_needs_no_process_scan() {
        let fake = host();
        let mut table = SocketTable::new(fake.paths());
        let start = Instant::now();
        table.resolve([&ssh()], start);
        let new_client = flow(TCP, "192.0.2.1:22", "203.0.113.10:40404");
        let refresh = table.resolve([&ssh(), &new_client], start + SECOND);
        assert_eq!(
            refresh,
            Refresh {
                tables_read: true,
                processes_scanned: false
            }
        );
        assert_eq!(pid(&table, &new_client), Some(700));
    }

    #[test]
    fn flows_without_a_socket_are_retried_only_after_a_while() {
        let fake = host();
        let mut table = SocketTable::new(fake.paths());
        let start = Instant::now();
        let late = flow(UDP, "192.0.2.1:123", "198.51.100.1:123");
        let first = table.resolve([&late, &forwarded()], start);
        // Traffic that no socket carries costs a table read, never a scan of /proc/*/fd.
        assert_eq!(
            first,
            Refresh {
                tables_read: true,
                processes_scanned: false
            }
        );
        assert_eq!(table.owner(&late), Some(&Owner::NoLocalSocket));
        // The socket appears; the cached answer stands until the retry is due.
        fake.udp("0.0.0.0:123", "0.0.0.0:0", 200);
        fake.fd(53, 10, 200);
        for after in 1..10 {
            let refresh = table.resolve([&late, &forwarded()], start + after * SECOND);
            assert_eq!(refresh, Refresh::default(), "{after} s after");
        }
        let retry = table.resolve([&late, &forwarded()], start + 10 * SECOND);
        assert_eq!(
            retry,
            Refresh {
                tables_read: true,
                processes_scanned: true
            }
        );
        assert_eq!(pid(&table, &late), Some(53));
        assert_eq!(table.owner(&forwarded()), Some(&Owner::NoLocalSocket));
    }

    #[test]
    fn a_socket_whose_process_is_gone_is_unresolved_until_a_holder_appears() {
        let fake = host();
        fake.tcp("192.0.2.1:41000", "198.51.100.7:443", ESTABLISHED, 300);
        let outbound = flow(TCP, "192.0.2.1:41000", "198.51.100.7:443");
        let mut table = SocketTable::new(fake.paths());
        let start = Instant::now();
        table.resolve([&outbound], start);
        assert_eq!(table.owner(&outbound), Some(&Owner::Unresolved));
        fake.process(&FakeProcess {
            pid: 900,
            comm: "curl",
            args: &["curl", "https://example.com/"],
            uid: 0,
            exe: Some("/usr/bin/curl"),
        });
        fake.fd(900, 3, 300);
        table.resolve([&outbound], start + 10 * SECOND);
        assert_eq!(pid(&table, &outbound), Some(900));
    }

    #[test]
    fn an_attributed_flow_keeps_its_process() {
        let fake = host();
        let mut table = SocketTable::new(fake.paths());
        let start = Instant::now();
        table.resolve([&ssh()], start);
        fake.exit(700);
        fake.close_all_sockets();
        table.resolve([&ssh()], start + 60 * SECOND);
        assert_eq!(pid(&table, &ssh()), Some(700));
    }

    #[test]
    fn flows_not_seen_for_a_while_are_forgotten() {
        let fake = host();
        let timing = Timing {
            retry_unowned: 10 * SECOND,
            forget_after: 30 * SECOND,
        };
        let mut table = SocketTable::new(fake.paths()).with_timing(timing);
        let start = Instant::now();
        table.resolve([&ssh(), &dns(), &forwarded()], start);
        // The forwarded flow has no process: forgotten once its retry was due (10 s).
        table.resolve([&dns()], start + 29 * SECOND);
        assert_eq!(table.len(), 2);
        assert_eq!(table.owner(&forwarded()), None);
        table.resolve([&dns()], start + 30 * SECOND);
        assert_eq!(table.len(), 1);
        assert_eq!(table.owner(&ssh()), None);
        assert_eq!(pid(&table, &dns()), Some(53));
        assert_eq!(table.resolve([], start + 60 * SECOND), Refresh::default());
        assert!(table.is_empty());
    }

    #[test]
    fn the_system_paths_follow_the_calling_threads_namespace() {
        let paths = ProcPaths::default();
        assert_eq!(paths.proc_root, PathBuf::from("/proc"));
        assert_eq!(paths.net_dir, PathBuf::from("/proc/thread-self/net"));
    }
}
