//! Socket owners as the kernel recorded them: for each socket, the process that made
//! it (pid, uid, comm, cgroup), written by eBPF programs that run in that process's own
//! context when it creates the socket and when it first connects or sends on it. The
//! record outlives the socket and the process, so a connection of 20 ms, or a process
//! gone before the next read, still has its owner.
//!
//! [`SocketRecords`] is the seam: the kernel map behind it in production
//! ([`KernelRecords`], from [`super::Datapath::socket_records`]), a table in tests
//! ([`MemoryRecords`]).

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use aya::maps::{HashMap as BpfHashMap, MapData};
use flowmeter_common::{FAMILY_IPV4, FAMILY_IPV6, FlowKey, SockOwner};

use super::FlowId;

/// A socket's owner as the kernel recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    /// The process (thread group) id, as the host's (root) pid namespace numbers it.
    pub pid: u32,
    pub uid: u32,
    /// The kernel's short name of the process when it made the socket.
    pub comm: String,
    /// The cgroup v2 id (the inode of its directory) the process ran in.
    pub cgroup_id: u64,
    /// When the socket was made, CLOCK_BOOTTIME in ns: a process that started later
    /// (a reused pid) is not its owner.
    pub made_boot_ns: u64,
}

/// Where recorded owners are looked up.
pub trait SocketRecords: Send + Sync {
    /// The owner of the socket that carries `flow`, keyed as the socket's own network
    /// namespace sees it (local end, remote end, protocol; the interface is ignored).
    fn record(&self, flow: &FlowId) -> Option<SocketRecord>;
}

/// Records kept in memory: for tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    records: Mutex<HashMap<Tuple, SocketRecord>>,
}

/// A flow's key without its interface.
type Tuple = (u8, std::net::IpAddr, u16, std::net::IpAddr, u16);

fn tuple(flow: &FlowId) -> Tuple {
    (
        flow.proto.0,
        flow.local_ip,
        flow.local_port,
        flow.remote_ip,
        flow.remote_port,
    )
}

impl MemoryRecords {
    pub fn insert(&self, flow: &FlowId, record: SocketRecord) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.insert(tuple(flow), record);
    }
}

impl SocketRecords for MemoryRecords {
    fn record(&self, flow: &FlowId) -> Option<SocketRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.get(&tuple(flow)).cloned()
    }
}

/// The owners the kernel's socket programs recorded (`TUPLE_OWNERS`, see
/// `xdp/src/owners.rs`). A lookup is one syscall; safe to use from any thread.
pub struct KernelRecords {
    tuples: BpfHashMap<MapData, FlowKey, SockOwner>,
}

impl KernelRecords {
    pub(super) fn new(tuples: BpfHashMap<MapData, FlowKey, SockOwner>) -> Self {
        Self { tuples }
    }
}

impl SocketRecords for KernelRecords {
    /// The exact tuple first; then, for UDP, the tuple with the local address zero: an
    /// unconnected socket bound to no address is recorded so when it sends.
    fn record(&self, flow: &FlowId) -> Option<SocketRecord> {
        let exact = tuple_key(flow);
        let owner = self.tuples.get(&exact, 0).ok().or_else(|| {
            (flow.proto.0 == flowmeter_common::PROTO_UDP)
                .then_some(FlowKey {
                    local_addr: [0; 16],
                    ..exact
                })
                .and_then(|unbound| self.tuples.get(&unbound, 0).ok())
        })?;
        Some(socket_record(&owner))
    }
}

/// The key `TUPLE_OWNERS` holds `flow` under: its tuple, with ifindex 0.
pub fn tuple_key(flow: &FlowId) -> FlowKey {
    let (family, local_addr, remote_addr) = match (flow.local_ip, flow.remote_ip) {
        (IpAddr::V4(local), IpAddr::V4(remote)) => {
            (FAMILY_IPV4, in_16(&local.octets()), in_16(&remote.octets()))
        }
        (local, remote) => (FAMILY_IPV6, v6(local), v6(remote)),
    };
    FlowKey {
        ifindex: 0,
        family,
        proto: flow.proto.0,
        local_port: flow.local_port,
        remote_port: flow.remote_port,
        pad: 0,
        local_addr,
        remote_addr,
    }
}

fn in_16(v4: &[u8; 4]) -> [u8; 16] {
    let mut wide = [0; 16];
    wide[..4].copy_from_slice(v4);
    wide
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A kernel record as the rest of flowmeter sees it.
pub fn socket_record(owner: &SockOwner) -> SocketRecord {
    let end = owner
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(owner.comm.len());
    SocketRecord {
        pid: owner.tgid,
        uid: owner.uid,
        comm: String::from_utf8_lossy(&owner.comm[..end]).into_owned(),
        cgroup_id: owner.cgroup_id,
        made_boot_ns: owner.made_boot_ns,
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, sync::Arc};

    use super::*;
    use crate::datapath::Protocol;

    #[test]
    fn an_ipv4_flow_keys_as_the_kernel_writes_it() {
        let flow = FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(17),
            local_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            local_port: 40_000,
            remote_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            remote_port: 53,
        };
        let key = tuple_key(&flow);
        assert_eq!(key.ifindex, 0);
        assert_eq!(key.family, FAMILY_IPV4);
        assert_eq!(key.local_addr[..4], [198, 51, 100, 1]);
        assert_eq!(key.local_addr[4..], [0; 12]);
        assert_eq!(key.remote_addr[..4], [203, 0, 113, 9]);
        assert_eq!((key.local_port, key.remote_port), (40_000, 53));
    }

    #[test]
    fn comm_stops_at_its_first_nul() {
        let mut comm = [0; 16];
        comm[..4].copy_from_slice(b"curl");
        let owner = SockOwner {
            tgid: 7,
            uid: 1000,
            cgroup_id: 42,
            made_boot_ns: 5,
            comm,
        };
        let record = socket_record(&owner);
        assert_eq!(record.comm, "curl");
        assert_eq!((record.pid, record.uid, record.cgroup_id), (7, 1000, 42));
        assert_eq!(
            socket_record(&SockOwner {
                comm: *b"sixteen-bytes-ab",
                ..owner
            })
            .comm,
            "sixteen-bytes-ab"
        );
    }
}
