//! Loading the eBPF object and attaching it through links the process owns: when
//! flowmeter exits, however it exits, the kernel closes the links and nothing stays on
//! the interfaces. An interface deleted while metered is let go, and attached again if
//! it comes back ([`Datapath::forget`], [`Datapath::attach_again`], as `presence` asks).

use std::{borrow::Cow, fs, io, sync::Arc};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::{ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink},
};
use aya_log::EbpfLogger;
use flowmeter_common::{
    DEFAULT_FLOW_CAPACITY, DEFAULT_OWNER_CAPACITY, FLOWS_MAP, FLOWS_V4_MAP, IFACES_MAP,
    IfaceConfig, LINK_ETHERNET, LINK_RAW_IP, LINK_UNMETERED, NEW_FLOW_BUDGET_GLOBAL, OVERFLOW_MAP,
    SOCK_OWNERS_MAP, TC_EGRESS_PROG, TC_INGRESS_PROG, TOTALS_MAP, TUPLE_OWNERS_MAP,
    XDP_INGRESS_PROG,
};

use super::{
    Error, HookChoice, IngressHook, Interface, KernelMaps, LinkLayer, hook, interfaces,
    maps::FlowBatches,
    netlink,
    owners::{KernelRecords, SocketRecords},
    preflight, socket_hooks,
};

/// The object built from `xdp/` by build.rs.
static EMBEDDED_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowmeter"));

/// Loads this eBPF object file instead of the embedded one (for developing the programs).
pub const OBJECT_OVERRIDE_ENV: &str = "FLOWMETER_BPF_OBJECT";

/// How to set up the datapath.
#[derive(Clone, Debug)]
pub struct Options {
    pub hook: HookChoice,
    /// Flows the kernel table holds (`--flows`): as many IPv4 flows, and as many IPv6
    /// flows (each family has its own map).
    pub flow_capacity: u32,
    /// New flows per second per CPU that received packets may create
    /// (`--new-flow-budget`); beyond it their traffic is counted per source prefix.
    /// 0 = unlimited.
    pub new_flow_budget: u32,
    /// Let the programs log (one debug line per new flow) through aya-log (`-v`).
    pub kernel_log: bool,
    /// Entries of each socket-owner map (`SOCK_OWNERS`, `TUPLE_OWNERS`): sockets, and
    /// tuples, whose owner the kernel remembers (least recently used go first).
    pub owner_capacity: u32,
    /// Record sockets' owners in the kernel (the cgroup socket hooks, see
    /// `socket_hooks`). Off, attribution reads `/proc` only: the per-connection bench
    /// compares both.
    pub socket_owners: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hook: HookChoice::Auto,
            flow_capacity: DEFAULT_FLOW_CAPACITY,
            new_flow_budget: default_new_flow_budget(DEFAULT_FLOW_CAPACITY),
            kernel_log: false,
            owner_capacity: DEFAULT_OWNER_CAPACITY,
            socket_owners: true,
        }
    }
}

/// Ifindexes the interface map holds beyond the highest one metered at start: room for
/// a deleted interface to come back under a new index (the kernel counts them up) and
/// be metered again. 8 bytes each.
pub const IFINDEX_HEADROOM: u32 = 4096;

/// The new-flow budget when none is given: a flood fills at most 1/32 of the table per
/// second on each CPU, and the rest keeps room for the host's real flows.
pub const fn default_new_flow_budget(flow_capacity: u32) -> u32 {
    flow_capacity / 32
}

/// What is attached to one interface.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub interface: Interface,
    pub ingress: IngressHook,
    /// Why that ingress hook, in words.
    pub reason: String,
}

/// The loaded programs and their links. Dropping it detaches everything.
pub struct Datapath {
    // Declared first so the links are dropped (detached) before the programs.
    /// Each link with the ifindex it is attached to.
    links: Vec<(u32, FdLink)>,
    /// The socket-owner programs' links on the cgroup v2 root (empty if they failed).
    owner_links: Vec<FdLink>,
    /// Where the owners they record are looked up, or why there are none.
    socket_records: Result<Arc<KernelRecords>, String>,
    ebpf: Ebpf,
    /// One per interface, in the order given (its totals slot), as last attached.
    attachments: Vec<Attachment>,
    kernel_log: Option<EbpfLogger<&'static dyn log::Log>>,
    /// `--hook`, for an interface attached again.
    hook: HookChoice,
    /// Entries of the interface map: the ifindexes it can hold.
    ifaces_entries: u32,
}

impl Datapath {
    /// Checks the host, loads the programs and attaches them to `interfaces`; hands
    /// out the maps, which stay readable after the datapath is dropped.
    pub fn start(interfaces: &[Interface], options: &Options) -> Result<(Self, KernelMaps), Error> {
        preflight::check_privileges()?;
        preflight::check_btf()?;
        let attachments: Vec<Attachment> = interfaces
            .iter()
            .map(|interface| {
                let (ingress, reason) = hook::choose(options.hook, &interface.name);
                Attachment {
                    interface: interface.clone(),
                    ingress,
                    reason,
                }
            })
            .collect();
        for attachment in &attachments {
            refuse_foreign_xdp(&attachment.interface)?;
        }

        let max_ifindex = interfaces.iter().map(|i| i.ifindex).max().unwrap_or(0);
        let ifaces_entries = max_ifindex + 1 + IFINDEX_HEADROOM;
        let object = object_bytes()?;
        // The programs check this level before formatting anything: 0 keeps them silent.
        let log_level = if options.kernel_log {
            aya_log::Level::Debug as u8
        } else {
            0
        };
        let new_flow_budget = u64::from(options.new_flow_budget);
        let mut ebpf = EbpfLoader::new()
            .override_global(aya_log::LEVEL, &log_level, true)
            .override_global(NEW_FLOW_BUDGET_GLOBAL, &new_flow_budget, true)
            .map_max_entries(FLOWS_V4_MAP, options.flow_capacity)
            .map_max_entries(FLOWS_MAP, options.flow_capacity)
            .map_max_entries(IFACES_MAP, ifaces_entries)
            .map_max_entries(TOTALS_MAP, 2 * interfaces.len().max(1) as u32)
            .map_max_entries(SOCK_OWNERS_MAP, options.owner_capacity)
            .map_max_entries(TUPLE_OWNERS_MAP, options.owner_capacity)
            .load(&object)
            .map_err(|e| Error::Kernel("loading the eBPF object".into(), format!("{e:#}")))?;
        configure_interfaces(&mut ebpf, interfaces)?;
        let kernel_log =
            match options.kernel_log {
                true => Some(EbpfLogger::init(&mut ebpf).map_err(|e| {
                    Error::Kernel("reading the programs' log".into(), e.to_string())
                })?),
                false => None,
            };

        // Verify every program needed before attaching anything anywhere.
        if attachments.iter().any(|a| a.ingress != IngressHook::Tc) {
            xdp_program(&mut ebpf)?;
        }
        if attachments.iter().any(|a| a.ingress == IngressHook::Tc) {
            tc_program(&mut ebpf, TC_INGRESS_PROG)?;
        }
        tc_program(&mut ebpf, TC_EGRESS_PROG)?;

        let mut links = Vec::new();
        for attachment in &attachments {
            let ifindex = attachment.interface.ifindex;
            let attached = attach_both(&mut ebpf, &attachment.interface.name, attachment.ingress)?;
            links.extend(attached.map(|link| (ifindex, link)));
        }
        // Metering is attached; attribution by the kernel is a bonus that may fail.
        let tuple_owners = HashMap::try_from(take_map(&mut ebpf, TUPLE_OWNERS_MAP)?)
            .map_err(|e| Error::Kernel("opening the socket owners".into(), e.to_string()))?;
        let attached = match options.socket_owners {
            true => socket_hooks::attach(&mut ebpf),
            false => Err("the socket hooks are turned off".to_owned()),
        };
        let (owner_links, socket_records) = match attached {
            Ok(owner_links) => (owner_links, Ok(Arc::new(KernelRecords::new(tuple_owners)))),
            Err(reason) => (Vec::new(), Err(reason)),
        };

        let maps = KernelMaps {
            flows_v4: PerCpuHashMap::try_from(take_map(&mut ebpf, FLOWS_V4_MAP)?)
                .map_err(|e| Error::Kernel("opening the flow table".into(), e.to_string()))?,
            flows_v6: PerCpuHashMap::try_from(take_map(&mut ebpf, FLOWS_MAP)?)
                .map_err(|e| Error::Kernel("opening the flow table".into(), e.to_string()))?,
            totals: PerCpuArray::try_from(take_map(&mut ebpf, TOTALS_MAP)?)
                .map_err(|e| Error::Kernel("opening the totals".into(), e.to_string()))?,
            overflow: PerCpuHashMap::try_from(take_map(&mut ebpf, OVERFLOW_MAP)?).map_err(|e| {
                Error::Kernel("opening the over-budget prefixes".into(), e.to_string())
            })?,
            slots: interfaces
                .iter()
                .enumerate()
                .map(|(slot, i)| (i.ifindex, slot as u32))
                .collect(),
            flow_capacity: options.flow_capacity,
            batches: aya::util::nr_cpus().ok().map(FlowBatches::new),
        };
        Ok((
            Self {
                links,
                owner_links,
                socket_records,
                ebpf,
                attachments,
                kernel_log,
                hook: options.hook,
                ifaces_entries,
            },
            maps,
        ))
    }

    /// What is attached where, and why.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Passes what the programs logged (under `-v`) to the `log` crate.
    pub fn flush_kernel_log(&mut self) {
        if let Some(logger) = &mut self.kernel_log {
            logger.flush();
        }
    }

    /// Where the owners of sockets, as the kernel recorded them, are looked up; the
    /// error is why the kernel records none (one sentence: the caller warns once,
    /// "flowmeter: process attribution falls back to /proc: <reason>", and meters on).
    /// The records stay readable after [`Self::detach`] and after the datapath is dropped.
    pub fn socket_records(&self) -> Result<Arc<dyn SocketRecords>, String> {
        match &self.socket_records {
            Ok(records) => Ok(records.clone()),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Detaches every program now; the maps stay readable.
    pub fn detach(&mut self) {
        self.links.clear();
        self.owner_links.clear();
    }

    /// Lets go of the interface that had `ifindex`, deleted: its links (which the kernel
    /// detached with it) are closed, and the programs no longer meter that index.
    pub fn forget(&mut self, ifindex: u32) {
        self.links.retain(|(attached, _)| *attached != ifindex);
        // Only an index the map holds was configured; a later interface may take it.
        if ifindex < self.ifaces_entries {
            let unmetered = IfaceConfig {
                slot: 0,
                link: LINK_UNMETERED,
            };
            if let Err(error) = set_iface(&mut self.ebpf, ifindex, unmetered) {
                log::debug!("ifindex {ifindex}: {error}");
            }
        }
    }

    /// Attaches the programs again to the interface named `name`, created anew under a
    /// new ifindex after it was deleted: the same hooks as at start would choose, the
    /// same totals slot. The error says why it cannot be metered.
    pub fn attach_again(&mut self, name: &str) -> Result<Attachment, Error> {
        let slot = self
            .attachments
            .iter()
            .position(|a| a.interface.name == name)
            .ok_or_else(|| Error::UnknownInterface(name.into()))?;
        let interface = interfaces::resolve(&[name.to_owned()])?
            .into_iter()
            .next()
            .ok_or_else(|| Error::UnknownInterface(name.into()))?;
        if interface.ifindex >= self.ifaces_entries {
            return Err(Error::IfindexBeyondMap {
                iface: name.into(),
                ifindex: interface.ifindex,
                entries: self.ifaces_entries,
            });
        }
        refuse_foreign_xdp(&interface)?;
        let (ingress, reason) = hook::choose(self.hook, name);
        let ifindex = interface.ifindex;
        set_iface(&mut self.ebpf, ifindex, iface_config(slot, interface.link))?;
        match attach_both(&mut self.ebpf, name, ingress) {
            Ok(links) => self.links.extend(links.map(|link| (ifindex, link))),
            Err(error) => {
                self.forget(ifindex);
                return Err(error);
            }
        }
        let attachment = Attachment {
            interface,
            ingress,
            reason,
        };
        self.attachments[slot] = attachment.clone();
        Ok(attachment)
    }
}

/// Attaches the ingress program on `ingress` and the TC egress program to `iface`.
fn attach_both(ebpf: &mut Ebpf, iface: &str, ingress: IngressHook) -> Result<[FdLink; 2], Error> {
    let ingress = match ingress {
        IngressHook::XdpNative => attach_xdp(ebpf, iface, XdpMode::Driver)?,
        IngressHook::XdpGeneric => attach_xdp(ebpf, iface, XdpMode::Skb)?,
        IngressHook::Tc => attach_tc(ebpf, iface, TC_INGRESS_PROG, TcAttachType::Ingress)?,
    };
    let egress = attach_tc(ebpf, iface, TC_EGRESS_PROG, TcAttachType::Egress)?;
    Ok([ingress, egress])
}

fn object_bytes() -> Result<Cow<'static, [u8]>, Error> {
    match std::env::var_os(OBJECT_OVERRIDE_ENV) {
        Some(path) => fs::read(&path).map(Cow::Owned).map_err(|e| {
            Error::Io(
                format!("reading {OBJECT_OVERRIDE_ENV}={}", path.to_string_lossy()),
                e,
            )
        }),
        None => Ok(Cow::Borrowed(EMBEDDED_OBJECT)),
    }
}

/// Tells the programs which interfaces to meter: each one's totals slot (its position in
/// `interfaces`) and how its frames begin.
fn configure_interfaces(ebpf: &mut Ebpf, interfaces: &[Interface]) -> Result<(), Error> {
    for (slot, interface) in interfaces.iter().enumerate() {
        set_iface(ebpf, interface.ifindex, iface_config(slot, interface.link))?;
    }
    Ok(())
}

/// What the programs know of the interface in totals slot `slot`.
fn iface_config(slot: usize, link: LinkLayer) -> IfaceConfig {
    IfaceConfig {
        slot: slot as u32,
        link: match link {
            LinkLayer::Ethernet => LINK_ETHERNET,
            LinkLayer::RawIp => LINK_RAW_IP,
        },
    }
}

/// Writes the interface map's entry for `ifindex`.
fn set_iface(ebpf: &mut Ebpf, ifindex: u32, config: IfaceConfig) -> Result<(), Error> {
    let map = ebpf.map_mut(IFACES_MAP).ok_or_else(|| {
        Error::Kernel(
            "loading the eBPF object".into(),
            format!("no map {IFACES_MAP}"),
        )
    })?;
    let mut ifaces: Array<_, IfaceConfig> = Array::try_from(map)
        .map_err(|e| Error::Kernel("opening the interface map".into(), e.to_string()))?;
    ifaces
        .set(ifindex, config, 0)
        .map_err(|e| Error::Kernel("filling the interface map".into(), e.to_string()))
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map, Error> {
    ebpf.take_map(name)
        .ok_or_else(|| Error::Kernel("loading the eBPF object".into(), format!("no map {name}")))
}

/// Refuses an interface that already carries an XDP program, ours or another's.
fn refuse_foreign_xdp(interface: &Interface) -> Result<(), Error> {
    match netlink::attached_xdp_program(interface.ifindex) {
        Ok(None) => Ok(()),
        Ok(Some(id)) => Err(Error::XdpInUse {
            iface: interface.name.clone(),
            id,
        }),
        Err(e) => Err(Error::Io(
            format!("asking the kernel about {}'s XDP program", interface.name),
            e,
        )),
    }
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut aya::programs::Program, Error> {
    ebpf.program_mut(name).ok_or_else(|| {
        Error::Kernel(
            "loading the eBPF object".into(),
            format!("no program {name}"),
        )
    })
}

fn wrong_type(name: &'static str, error: ProgramError) -> Error {
    Error::Kernel(format!("program {name}"), error.to_string())
}

/// The XDP program, loaded (and so verified by the kernel) on first use.
fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, Error> {
    let xdp: &mut Xdp = program(ebpf, XDP_INGRESS_PROG)?
        .try_into()
        .map_err(|e| wrong_type(XDP_INGRESS_PROG, e))?;
    if xdp.fd().is_err() {
        xdp.load().map_err(|e| load_error(XDP_INGRESS_PROG, e))?;
    }
    Ok(xdp)
}

/// A TC program, loaded (and so verified by the kernel) on first use.
fn tc_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, Error> {
    let tc: &mut SchedClassifier = program(ebpf, name)?
        .try_into()
        .map_err(|e| wrong_type(name, e))?;
    if tc.fd().is_err() {
        tc.load().map_err(|e| load_error(name, e))?;
    }
    Ok(tc)
}

pub(super) fn load_error(program: &'static str, error: ProgramError) -> Error {
    match error {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let last_line = verifier_complaint(&log).unwrap_or_else(|| io_error.to_string());
            Error::VerifierRejected {
                program,
                last_line,
                log,
            }
        }
        other => Error::Kernel(format!("loading {program}"), other.to_string()),
    }
}

/// The verifier's reason for rejecting: the last line before its closing statistics
/// ("processed N insns ...", "verification time ...", "stack depth ...").
fn verifier_complaint(log: &str) -> Option<String> {
    let is_statistics = |line: &str| {
        [
            "processed ",
            "verification time",
            "stack depth",
            "max_states_per_insn",
        ]
        .iter()
        .any(|prefix| line.starts_with(prefix))
    };
    log.lines()
        .map(str::trim)
        .rev()
        .find(|line| !line.is_empty() && !is_statistics(line))
        .map(str::to_owned)
}

fn attach_xdp(ebpf: &mut Ebpf, iface: &str, mode: XdpMode) -> Result<FdLink, Error> {
    let program = xdp_program(ebpf)?;
    let id = program
        .attach(iface, mode)
        .map_err(|e| match os_error(&e) {
            Some(libc::EBUSY) | Some(libc::EEXIST) => Error::XdpInUse {
                iface: iface.into(),
                id: 0,
            },
            Some(libc::EOPNOTSUPP) if mode == XdpMode::Driver => Error::NoNativeXdp {
                iface: iface.into(),
            },
            _ => Error::Kernel(format!("{iface}: attaching XDP"), error_chain(&e)),
        })?;
    let link = program
        .take_link(id)
        .map_err(|e| Error::Kernel(format!("{iface}: attaching XDP"), e.to_string()))?;
    // A netlink attachment (the fallback on old kernels) would outlive us: refuse it.
    FdLink::try_from(link).map_err(|_| Error::NoBpfLink {
        iface: iface.into(),
        program: "the XDP program",
    })
}

fn attach_tc(
    ebpf: &mut Ebpf,
    iface: &str,
    name: &'static str,
    direction: TcAttachType,
) -> Result<FdLink, Error> {
    let program = tc_program(ebpf, name)?;
    let id = program.attach(iface, direction).map_err(|e| {
        Error::Kernel(
            format!("{iface}: attaching the TC {direction:?} program"),
            error_chain(&e),
        )
    })?;
    let link = program
        .take_link(id)
        .map_err(|e| Error::Kernel(format!("{iface}: attaching TC"), e.to_string()))?;
    FdLink::try_from(link).map_err(|_| Error::NoBpfLink {
        iface: iface.into(),
        program: "the TC program",
    })
}

fn os_error(error: &ProgramError) -> Option<i32> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        source = error.source();
    }
    None
}

pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_complaint_skips_the_closing_statistics() {
        let log = "0: R1=ctx() R10=fp0\n0: (79) r0 = *(u64 *)(r2 +0)\nR2 !read_ok\n\
                   processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0\n\
                   verification time 12 usec\nstack depth 0\n";
        assert_eq!(verifier_complaint(log).as_deref(), Some("R2 !read_ok"));
        assert_eq!(verifier_complaint(""), None);
    }
}
