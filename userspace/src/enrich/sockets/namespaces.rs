//! Sockets of the host's other network namespaces (containers, `ip netns`): their
//! processes are found by `/proc/PID/ns/net`, each namespace's tables read once per
//! lookup through one of its processes (`/proc/PID/net/*`), and the holders of the
//! sockets found in one scan of `/proc/*/fd` (socket inodes are unique host-wide).

use std::{
    collections::{HashMap, HashSet},
    fs, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    holders,
    tables::{Lookup, SocketIndex},
};
use crate::{
    datapath::FlowId,
    proc::{ProcessInfo, UserNames},
};

/// What the other namespaces say about some flows.
#[derive(Debug, Default)]
pub struct Found {
    /// The holder of each flow's socket, where one was found (by the flow's index).
    pub owners: HashMap<usize, Arc<ProcessInfo>>,
    /// A flow's socket was found there, but no process holds it now.
    pub closed: HashSet<usize>,
    /// Some namespace could not be read: a flow none answered may be hidden there.
    pub unreadable: bool,
}

/// Looks `flows` up in every network namespace but `own` (the inode of
/// `/proc/thread-self/ns/net`), under `proc_root`.
pub fn look_up(
    proc_root: &Path,
    own: Option<u64>,
    flows: &[&FlowId],
    users: &mut UserNames,
) -> Found {
    let mut found = Found::default();
    let (namespaces, unreadable) = namespaces(proc_root, own);
    found.unreadable = unreadable;
    let mut sockets: HashMap<usize, u64> = HashMap::new();
    let mut live: HashSet<u64> = HashSet::new();
    for net_dir in namespaces {
        if let Err(e) = fs::File::open(net_dir.join("tcp"))
            && e.kind() == io::ErrorKind::PermissionDenied
        {
            found.unreadable = true;
            continue;
        }
        let index = SocketIndex::read(&net_dir);
        for (at, flow) in flows.iter().enumerate() {
            if sockets.contains_key(&at) {
                continue;
            }
            match index.lookup(flow) {
                Lookup::Socket(inode) => {
                    sockets.insert(at, inode);
                    live.insert(inode);
                }
                Lookup::Closed => {
                    found.closed.insert(at);
                }
                Lookup::NoSocket => {}
            }
        }
    }
    if sockets.is_empty() {
        return found;
    }
    let wanted: HashSet<u64> = sockets.values().copied().collect();
    let holders = holders::find_holders(proc_root, &wanted, |inode| live.contains(&inode), users);
    for (at, inode) in sockets {
        match holders.get(&inode) {
            Some(holder) => {
                found.closed.remove(&at);
                found.owners.insert(at, holder.clone());
            }
            None => {
                found.closed.insert(at);
            }
        }
    }
    found
}

/// The inode of the network namespace a `ns/net` link names (`net:[4026531840]`).
pub fn namespace_of(link: &Path) -> io::Result<u64> {
    let target = fs::read_link(link)?;
    let text = target.to_string_lossy();
    text.strip_prefix("net:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inode| inode.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not a network namespace: {text}")))
}

/// The socket-table directory of each network namespace but `own` (one process's
/// `/proc/PID/net` each), and whether some process's namespace could not be read.
fn namespaces(proc_root: &Path, own: Option<u64>) -> (Vec<PathBuf>, bool) {
    let mut seen: HashSet<u64> = own.into_iter().collect();
    let mut dirs = Vec::new();
    let mut unreadable = false;
    let Ok(entries) = fs::read_dir(proc_root) else {
        return (dirs, true);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let process = proc_root.join(pid);
        match namespace_of(&process.join("ns").join("net")) {
            Ok(inode) => {
                if seen.insert(inode) {
                    dirs.push(process.join("net"));
                }
            }
            // Kernel threads have no namespace links to read; a process gone meanwhile
            // neither. Only a refusal hides a namespace.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => unreadable = true,
            Err(_) => {}
        }
    }
    (dirs, unreadable)
}
