//! What flows are grouped by, and the groups the aggregator keeps between refreshes.

use std::{collections::HashMap, fmt, net::IpAddr, sync::Arc};

use super::{rates::Peak, slab::Slab};
use crate::datapath::{FlowId, Protocol};
use crate::shrink;

/// What one line of the view stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// One line per remote address (iftop's default).
    #[default]
    RemoteHost,
    /// One line per (local address, remote address).
    HostPair,
    /// One line per remote protocol and port.
    RemotePort,
    /// One line per local protocol and port.
    LocalPort,
    /// One line per process, as told by the caller; flows of no known process share one line.
    Process,
    /// One line per container or systemd unit the caller tells; flows of neither share one.
    Container,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::RemoteHost,
        GroupBy::HostPair,
        GroupBy::RemotePort,
        GroupBy::LocalPort,
        GroupBy::Process,
        GroupBy::Container,
    ];

    /// The groupings decided by the flow's own addresses, which the aggregator keeps.
    pub(super) const ADDRESS: [GroupBy; 4] = [
        GroupBy::RemoteHost,
        GroupBy::HostPair,
        GroupBy::RemotePort,
        GroupBy::LocalPort,
    ];

    /// The position in [`ADDRESS`](Self::ADDRESS), or `None` for the owner groupings.
    pub(super) fn address_index(self) -> Option<usize> {
        Self::ADDRESS.iter().position(|&group_by| group_by == self)
    }
}

/// A transport protocol and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    pub proto: Protocol,
    pub port: u16,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto, self.port)
    }
}

/// The key of one line; `P` is the caller's process key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey<P> {
    RemoteHost(IpAddr),
    HostPair {
        local: IpAddr,
        remote: IpAddr,
    },
    RemotePort(Port),
    LocalPort(Port),
    /// `None` is the line of flows whose process is not known.
    Process(Option<P>),
    /// A container or systemd unit; `None` is the line of flows of neither.
    Container(Option<Arc<str>>),
}

/// What the caller knows of a flow's owner, which the owner groupings ask (owners are
/// known only downstream of the flow layer). A closure tells processes only.
pub trait OwnerOf<P> {
    fn process(&self, flow: &FlowId) -> Option<P>;

    /// The container (else the systemd unit) its process runs in.
    fn container(&self, flow: &FlowId) -> Option<Arc<str>> {
        let _ = flow;
        None
    }
}

impl<P, F: Fn(&FlowId) -> Option<P>> OwnerOf<P> for F {
    fn process(&self, flow: &FlowId) -> Option<P> {
        self(flow)
    }
}

impl<P> GroupKey<P> {
    /// The line `flow` belongs to under `group_by`, by the rule the aggregator groups
    /// with; `owners` is asked only by the owner groupings.
    pub fn of(group_by: GroupBy, flow: &FlowId, owners: &impl OwnerOf<P>) -> Self {
        match group_by {
            GroupBy::Process => GroupKey::Process(owners.process(flow)),
            GroupBy::Container => GroupKey::Container(owners.container(flow)),
            address => AddressKey::of(address, flow).to_group_key(),
        }
    }

    pub fn group_by(&self) -> GroupBy {
        match self {
            GroupKey::RemoteHost(_) => GroupBy::RemoteHost,
            GroupKey::HostPair { .. } => GroupBy::HostPair,
            GroupKey::RemotePort(_) => GroupBy::RemotePort,
            GroupKey::LocalPort(_) => GroupBy::LocalPort,
            GroupKey::Process(_) => GroupBy::Process,
            GroupKey::Container(_) => GroupBy::Container,
        }
    }

    /// Whether `flow` is in this group; `owners` is asked only for owner groups.
    pub fn contains(&self, flow: &FlowId, owners: &impl OwnerOf<P>) -> bool
    where
        P: PartialEq,
    {
        GroupKey::of(self.group_by(), flow, owners) == *self
    }
}

/// A [`GroupKey`] of an address grouping, without the process type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum AddressKey {
    RemoteHost(IpAddr),
    HostPair(IpAddr, IpAddr),
    RemotePort(Port),
    LocalPort(Port),
}

impl AddressKey {
    /// The group of `flow` under an address grouping (not an owner grouping).
    pub fn of(group_by: GroupBy, flow: &FlowId) -> Self {
        match group_by {
            GroupBy::RemoteHost => Self::RemoteHost(flow.remote_ip),
            GroupBy::HostPair => Self::HostPair(flow.local_ip, flow.remote_ip),
            GroupBy::RemotePort => Self::RemotePort(Port {
                proto: flow.proto,
                port: flow.remote_port,
            }),
            GroupBy::LocalPort => Self::LocalPort(Port {
                proto: flow.proto,
                port: flow.local_port,
            }),
            GroupBy::Process | GroupBy::Container => unreachable!("owners are not addresses"),
        }
    }

    /// The address key of a line's key; `None` for a process line.
    pub fn from_group_key<P>(key: &GroupKey<P>) -> Option<Self> {
        Some(match *key {
            GroupKey::RemoteHost(ip) => Self::RemoteHost(ip),
            GroupKey::HostPair { local, remote } => Self::HostPair(local, remote),
            GroupKey::RemotePort(port) => Self::RemotePort(port),
            GroupKey::LocalPort(port) => Self::LocalPort(port),
            GroupKey::Process(_) | GroupKey::Container(_) => return None,
        })
    }

    pub fn to_group_key<P>(self) -> GroupKey<P> {
        match self {
            Self::RemoteHost(ip) => GroupKey::RemoteHost(ip),
            Self::HostPair(local, remote) => GroupKey::HostPair { local, remote },
            Self::RemotePort(port) => GroupKey::RemotePort(port),
            Self::LocalPort(port) => GroupKey::LocalPort(port),
        }
    }
}

/// A group kept between refreshes, for its peak: the highest 2 s rate of all its flows
/// together cannot be rebuilt from the flows' own peaks.
#[derive(Debug)]
pub(super) struct Group {
    pub key: AddressKey,
    pub flows: u32,
    pub peak: Peak,
}

/// The live groups of one address grouping. Each flow keeps its group's index, so a
/// refresh sums flows into groups without hashing.
#[derive(Debug, Default)]
pub(super) struct GroupTable {
    index: HashMap<AddressKey, u32>,
    pub groups: Slab<Group>,
}

impl GroupTable {
    /// Adds a flow to the group `key`, creating it; returns the group's index.
    pub fn join(&mut self, key: AddressKey) -> u32 {
        let groups = &mut self.groups;
        let group = *self.index.entry(key).or_insert_with(|| {
            groups.insert(Group {
                key,
                flows: 0,
                peak: Peak::default(),
            })
        });
        groups[group].flows += 1;
        group
    }

    /// The index of the live group `key`.
    pub fn find(&self, key: &AddressKey) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// Gives back the room of groups forgotten (see [`Slab::tidy`]).
    pub fn tidy(&mut self) {
        self.groups.tidy();
        shrink::to_live(&mut self.index);
    }

    /// Takes a flow out of a group, forgetting the group (and its peak) with its last flow.
    pub fn leave(&mut self, group: u32) {
        self.groups[group].flows -= 1;
        if self.groups[group].flows == 0 {
            let forgotten = self.groups.remove(group);
            self.index.remove(&forgotten.key);
        }
    }
}
