//! Who owns a flow, in order (the resolving thread's work, see `resolver`):
//!
//! 1. NAT: a flow this host translated is looked up with the ends its socket has
//!    inside (`nat`, from conntrack);
//! 2. the kernel's record of the socket with those ends (`datapath::owners`), made in
//!    the owner's own context when it made, connected or first sent on the socket: it
//!    outlives the socket and the process. The process is completed from `/proc` once
//!    (exe, command line, user, cgroup) if it is still the one that made the socket; a
//!    pid taken over since by another process gives only what the kernel recorded;
//! 3. the socket tables of this network namespace, then of every other one, and the
//!    open files of the processes (`sockets`): what `lsof -i` reads;
//! 4. else a reason: `Forwarded` (translated, or neither end is this namespace's),
//!    `Hidden` (a namespace could not be read), `Unresolved` (a socket with no holder
//!    now), `NoLocalSocket` (addressed to this host, no socket: the kernel answered).

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    ops::RangeInclusive,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    cgroups::{Cgroup, CgroupPaths},
    datapath::{FlowId, SocketRecord, SocketRecords},
    proc::{self, ProcessInfo, UserNames},
};

use super::{
    nat::{self, Translations},
    resolver::Resolve,
    sockets::{self, Owner, ProcPaths, SocketTable, Timing, namespaces},
};

/// The order above, over a socket table of the resolving thread's namespace.
pub struct Owners {
    table: SocketTable,
    records: Option<Arc<dyn SocketRecords>>,
    proc_root: PathBuf,
    /// Processes completed from `/proc`, by pid and the record's comm: once each.
    completed: HashMap<(u32, String), Arc<ProcessInfo>>,
    cgroups: CgroupPaths,
    users: UserNames,
    local: LocalAddresses,
    /// The local ports the kernel hands out to clients (`ip_local_port_range`).
    ephemeral: RangeInclusive<u16>,
}

impl Owners {
    pub fn new(paths: ProcPaths, timing: Timing, records: Option<Arc<dyn SocketRecords>>) -> Self {
        let cgroup_root = crate::datapath::find_cgroup2_root().ok();
        Self {
            proc_root: paths.proc_root.clone(),
            table: SocketTable::new(paths).with_timing(timing),
            records,
            completed: HashMap::new(),
            cgroups: CgroupPaths::new(cgroup_root),
            users: UserNames::default(),
            local: LocalAddresses::default(),
            ephemeral: ephemeral_ports(),
        }
    }

    /// The kernel's record of `ends`, as a process.
    fn recorded(&mut self, ends: &FlowId, now: Instant) -> Option<Arc<ProcessInfo>> {
        let record = self.records.as_ref()?.record(ends)?;
        let key = (record.pid, record.comm.clone());
        if let Some(process) = self.completed.get(&key) {
            return Some(process.clone());
        }
        let process = Arc::new(self.complete(&record, now));
        self.completed.insert(key, process.clone());
        Some(process)
    }

    /// The recorded owner, with what `/proc` adds if the process at its pid is still
    /// the one that made the socket (started no later; it or a thread has the comm).
    fn complete(&mut self, record: &SocketRecord, now: Instant) -> ProcessInfo {
        let same = proc::start_time(&self.proc_root, record.pid)
            .is_some_and(|ticks| started_by(ticks, record.made_boot_ns))
            && proc::has_comm(&self.proc_root, record.pid, &record.comm);
        let described = same
            .then(|| {
                let process = procfs::process::Process::new_with_root(
                    self.proc_root.join(record.pid.to_string()),
                )
                .ok()?;
                proc::describe(&process, &mut self.users)
            })
            .flatten();
        described.unwrap_or_else(|| ProcessInfo {
            pid: record.pid,
            comm: record.comm.clone(),
            exe: None,
            exe_deleted: false,
            uid: record.uid,
            user: self.users.name(record.uid),
            cmdline: String::new(),
            cgroup: Cgroup::clone(&self.cgroups.of_id(record.cgroup_id, now)),
        })
    }
}

/// The calling thread's namespace's `ip_local_port_range` (Linux's default if unreadable).
fn ephemeral_ports() -> RangeInclusive<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let range = text.ok().and_then(|text| {
        let mut ports = text.split_whitespace().map(|port| port.parse::<u16>());
        Some(ports.next()?.ok()?..=ports.next()?.ok()?)
    });
    range.unwrap_or(32768..=60999)
}

/// Clock ticks per second of `/proc/PID/stat`'s start time.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Whether a process that started `start_ticks` after boot existed when a socket was
/// made at `made_boot_ns` (both CLOCK_BOOTTIME): the start is truncated to a tick.
fn started_by(start_ticks: u64, made_boot_ns: u64) -> bool {
    let tick_ns = 1_000_000_000 / ticks_per_second();
    start_ticks.saturating_mul(tick_ns) <= made_boot_ns
}

impl Resolve for Owners {
    fn prime(&mut self) {
        self.table.prime();
    }

    fn owners(&mut self, flows: &[FlowId], now: Instant) -> Vec<Owner> {
        if flows.is_empty() {
            return Vec::new();
        }
        let translations = Translations::dump().unwrap_or_else(|e| {
            log::debug!("{e}");
            Translations::default()
        });
        let inside: Vec<Option<FlowId>> = flows
            .iter()
            .map(|flow| {
                translations
                    .inside(flow)
                    .map(|ends| nat::with_ends(flow, ends))
            })
            .collect();
        // Translated flows have no socket in this namespace under their outside ends.
        let here = self.table.owners(flows, now);
        let mut owners: Vec<Option<Owner>> = vec![None; flows.len()];
        for (at, flow) in flows.iter().enumerate() {
            let ends = inside[at].as_ref().unwrap_or(flow);
            if let Some(process) = self.recorded(ends, now) {
                owners[at] = Some(Owner::Process(process));
            } else if let Owner::Process(_) = here[at] {
                owners[at] = Some(here[at].clone());
            }
        }
        // The rest, in the other namespaces' tables, by their inside ends.
        let missing: Vec<usize> = (0..flows.len())
            .filter(|&at| owners[at].is_none())
            .collect();
        let mut unreadable = false;
        if !missing.is_empty() {
            let asked: Vec<&FlowId> = missing
                .iter()
                .map(|&at| inside[at].as_ref().unwrap_or(&flows[at]))
                .collect();
            let own =
                namespaces::namespace_of(std::path::Path::new("/proc/thread-self/ns/net")).ok();
            let answer = namespaces::look_up(&self.proc_root, own, &asked, &mut self.users);
            for (index, &at) in missing.iter().enumerate() {
                if let Some(process) = answer.owners.get(&index) {
                    owners[at] = Some(Owner::Process(process.clone()));
                } else if answer.closed.contains(&index) {
                    owners[at] = Some(Owner::Unresolved);
                }
            }
            unreadable = answer.unreadable;
        }
        self.local.refresh_if_missing(flows, now);
        flows
            .iter()
            .enumerate()
            .map(|(at, flow)| match owners[at].take() {
                Some(owner) => owner,
                None => self.reason(flow, &here[at], inside[at].is_some(), unreadable),
            })
            .collect()
    }

    fn forget_idle(&mut self, now: Instant) {
        Resolve::forget_idle(&mut self.table, now);
        // Completed processes are few (one per process that owned a flow); a reused pid
        // has another comm or is completed again when its comm matches.
        if self.completed.len() > 4096 {
            self.completed.clear();
        }
    }
}

impl Owners {
    /// Why a flow no step answered has no process.
    fn reason(&self, flow: &FlowId, here: &Owner, translated: bool, unreadable: bool) -> Owner {
        if !sockets::is_tcp_or_udp(flow) {
            return Owner::NoLocalSocket;
        }
        if let Owner::Unresolved = here {
            return Owner::Unresolved;
        }
        if translated || !self.local.contains(flow.local_ip) {
            // Its socket, if any, is in another namespace: one that could not be read
            // may hide it.
            return match unreadable {
                true => Owner::Hidden,
                false => Owner::Forwarded,
            };
        }
        // Addressed to this host and no socket: a client's (its local port one the
        // kernel hands out) has closed; to a service port, the kernel answered.
        match self.ephemeral.contains(&flow.local_port) {
            true => Owner::Unresolved,
            false => here.clone(),
        }
    }
}

/// This namespace's addresses (of the resolving thread), read again when a flow's local
/// address is not among them, at most once a second.
#[derive(Default)]
struct LocalAddresses {
    addresses: HashSet<IpAddr>,
    read: Option<Instant>,
}

impl LocalAddresses {
    fn refresh_if_missing(&mut self, flows: &[FlowId], now: Instant) {
        let missing = flows
            .iter()
            .any(|flow| !self.addresses.contains(&flow.local_ip));
        let due = self
            .read
            .is_none_or(|read| now.saturating_duration_since(read) >= Duration::from_secs(1));
        if missing && due {
            self.addresses = interface_addresses();
            self.read = Some(now);
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
    }
}

/// The addresses of the calling thread's network namespace (getifaddrs: a netlink
/// socket made in it); none if they cannot be listed.
fn interface_addresses() -> HashSet<IpAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return HashSet::new();
    };
    list.filter_map(|entry| {
        let address = entry.address?;
        match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
            (Some(v4), _) => Some(IpAddr::V4(v4.ip())),
            (_, Some(v6)) => Some(IpAddr::V6(v6.ip())),
            _ => None,
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_started_after_the_socket_was_made_is_another() {
        let tick = 1_000_000_000 / ticks_per_second();
        let made = 500 * tick + tick / 2;
        assert!(started_by(400, made));
        // Within the same tick: truncated, it may have been the maker.
        assert!(started_by(500, made));
        assert!(!started_by(501, made));
    }

    #[test]
    fn this_namespace_has_its_loopback_address() {
        let addresses = interface_addresses();
        assert!(
            addresses.contains(&IpAddr::from([127, 0, 0, 1])),
            "{addresses:?}"
        );
    }
}
