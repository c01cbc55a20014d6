//! Socket owners as the kernel recorded them: for each socket, the process that made
//! it (pid, uid, comm, cgroup), written by eBPF programs that run in that process's own
//! context when it creates the socket and when it first connects or sends on it. The
//! record outlives the socket and the process, so a connection of 20 ms, or a process
//! gone before the next read, still has its owner.
//!
//! [`SocketRecords`] is the seam: the kernel map behind it in production, a table in
//! tests ([`MemoryRecords`]).

use std::{collections::HashMap, sync::Mutex};

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
