//! The kernel side, seen from userspace: check the host, load and attach the eBPF
//! programs, and read their maps into per-interval snapshots.
//!
//! Data flows one way: [`Datapath::start`] attaches and hands out [`KernelMaps`];
//! a [`Reader`] turns what the maps hold into a [`Snapshot`] each interval.

pub mod batch;
pub mod hook;
pub mod interfaces;
mod loader;
mod maps;
pub mod memory;
mod metered;
mod netlink;
mod overflow;
pub mod owners;
pub mod preflight;
pub mod presence;
mod reader;
mod snapshot;
mod socket_hooks;
pub use socket_hooks::find_cgroup2_root;

use std::io;

pub use hook::{HookChoice, IngressHook};
pub use interfaces::{Interface, LinkLayer};
pub use loader::{Attachment, Datapath, Options, default_new_flow_budget};
pub use maps::{FlowSource, FlowTable, KernelMaps, sum_flow_counters, sum_totals};
pub use overflow::PrefixTable;
pub use owners::{KernelRecords, MemoryRecords, SocketRecord, SocketRecords};
pub use reader::{IDLE_FLOW_TIMEOUT, Reader};
pub use snapshot::{
    DirectionTotals, FlowDelta, FlowId, InterfaceTotals, PrefixDelta, Protocol, Snapshot,
    SourcePrefix,
};

/// Everything that can stop the datapath, each worded for the user with what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no interface named '{0}' (list them with `ip link`)")]
    UnknownInterface(String),
    #[error("no interface is up besides loopback; name one with --iface")]
    NoInterfaces,
    #[error(
        "{iface}: link type {arphrd} carries neither Ethernet nor IP frames; meter the \
         interface below it instead"
    )]
    UnsupportedLink { iface: String, arphrd: u32 },
    #[error(
        "not allowed to load BPF programs: missing {0} (run it as root with sudo, or grant \
         the missing capabilities with setcap or systemd's AmbientCapabilities)"
    )]
    MissingCapabilities(String),
    #[error(
        "the kernel has no BTF ({} is missing): flowmeter needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later)",
        preflight::KERNEL_BTF
    )]
    NoBtf,
    #[error(
        "{iface} already has an XDP program (id {id}); flowmeter will not replace it: \
         detach it first (`ip link set dev {iface} xdp off`) or meter another interface"
    )]
    XdpInUse { iface: String, id: u32 },
    #[error(
        "{iface}: its index {ifindex} is beyond the {entries} the programs' interface map \
         was sized for at start; restart flowmeter to meter it"
    )]
    IfindexBeyondMap {
        iface: String,
        ifindex: u32,
        entries: u32,
    },
    #[error("{iface}: the driver has no native XDP; use --hook tc (or --hook xdp-generic)")]
    NoNativeXdp { iface: String },
    #[error(
        "{iface}: the kernel could only attach {program} through netlink, which would stay \
         after flowmeter exits; refusing (BPF links need Linux 5.9+ for XDP, 6.6+ for TC)"
    )]
    NoBpfLink {
        iface: String,
        program: &'static str,
    },
    #[error(
        "the kernel's verifier rejected {program}: {last_line} (run with -v for its last lines)"
    )]
    VerifierRejected {
        program: &'static str,
        last_line: String,
        log: String,
    },
    #[error("{0}: {1}")]
    Io(String, io::Error),
    #[error("{0}: {1}")]
    Kernel(String, String),
}
