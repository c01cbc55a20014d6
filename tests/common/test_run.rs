//! The three eBPF programs loaded for BPF_PROG_TEST_RUN: one object with maps small
//! enough to read whole, the test-run interface configured as userspace would, and the
//! maps read back summed over the CPUs. Shared by the crafted-frame table
//! (`datapath_test_run.rs`), the fuzzer (`fuzz_parser.rs`) and the GSO cases. Needs root.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::{fmt, io};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, PerCpuArray, PerCpuHashMap, PerCpuValues},
    programs::{ProgramError, SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use flowmeter::datapath::{sum_flow_counters, sum_totals};
use flowmeter_common::{
    DIR_RX, DIR_TX, FLOWS_MAP, FLOWS_V4_MAP, FlowCounters, FlowKey, FlowKeyV4, IFACES_MAP,
    IfaceConfig, LINK_ETHERNET, NEW_FLOW_BUDGET_GLOBAL, OVERFLOW_MAP, PrefixCounters, PrefixKey,
    TC_EGRESS_PROG, TC_INGRESS_PROG, TOTALS_MAP, Totals, XDP_INGRESS_PROG,
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowmeter"));

/// BPF_PROG_TEST_RUN without a context runs on the netns loopback device (seen here:
/// ifindex 1, for XDP's ingress_ifindex and the skb's ifindex alike).
pub const IFINDEX: u32 = 1;
/// The metered interface's slot in the totals, as userspace would configure it.
pub const SLOT: u32 = 0;
/// Totals slots for the one interface (rx, tx), so every slot can be checked.
pub const TOTALS_SLOTS: u32 = 2;
pub const FLOW_CAPACITY: u32 = 64;

pub const XDP_PASS: u32 = 2;
pub const TC_ACT_OK: u32 = 0;
/// TC_ACT_UNSPEC (-1): TCX_NEXT, the packet goes on to later programs, then passes.
pub const TC_ACT_UNSPEC: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    XdpIngress,
    TcIngress,
    TcEgress,
}

pub const PROGRAMS: [Program; 3] = [Program::XdpIngress, Program::TcIngress, Program::TcEgress];

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::XdpIngress => XDP_INGRESS_PROG,
            Program::TcIngress => TC_INGRESS_PROG,
            Program::TcEgress => TC_EGRESS_PROG,
        }
    }

    pub fn direction(self) -> u32 {
        match self {
            Program::XdpIngress | Program::TcIngress => DIR_RX,
            Program::TcEgress => DIR_TX,
        }
    }

    pub fn passed(self, return_value: u32) -> bool {
        match self {
            Program::XdpIngress => return_value == XDP_PASS,
            Program::TcIngress | Program::TcEgress => {
                return_value == TC_ACT_UNSPEC || return_value == TC_ACT_OK
            }
        }
    }

    pub fn load(self, ebpf: &mut Ebpf) {
        let program = ebpf
            .program_mut(self.name())
            .expect("program in the object");
        let loaded = match self {
            Program::XdpIngress => <&mut Xdp>::try_from(program).expect("XDP").load(),
            _ => <&mut SchedClassifier>::try_from(program)
                .expect("classifier")
                .load(),
        };
        loaded.unwrap_or_else(|e| panic!("{}: the verifier refused it: {e:?}", self.name()));
    }

    /// Whether it runs on an skb (TC), not an XDP buffer.
    pub fn is_skb(self) -> bool {
        !matches!(self, Program::XdpIngress)
    }

    /// The part of `frame` a test run of the program reads and counts: the linear part
    /// (see [`LONGEST_XDP_FRAME`]).
    pub fn visible(self, frame: &[u8]) -> &[u8] {
        match self {
            Program::XdpIngress => &frame[..frame.len().min(LONGEST_XDP_FRAME)],
            Program::TcIngress | Program::TcEgress => frame,
        }
    }

    pub fn run(self, ebpf: &Ebpf, frame: &[u8]) -> Result<u32, ProgramError> {
        self.run_in_context(ebpf, frame, None)
    }

    /// Like [`Self::run`], with the program's context (`struct __sk_buff` or `xdp_md`,
    /// as bytes) given, e.g. an skb's `gso_segs` and `gso_size`; `None`: the kernel's.
    pub fn run_in_context(
        self,
        ebpf: &Ebpf,
        frame: &[u8],
        context: Option<&[u8]>,
    ) -> Result<u32, ProgramError> {
        let program = ebpf.program(self.name()).expect("program in the object");
        let options = TestRunOptions {
            data_in: Some(frame),
            ctx_in: context,
            ..Default::default()
        };
        let result = match self {
            Program::XdpIngress => <&Xdp>::try_from(program)?.test_run(options),
            _ => <&SchedClassifier>::try_from(program)?.test_run(options),
        };
        result.map(|r| r.return_value)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fresh object, maps small enough to check whole, with the given programs loaded,
/// metering the test-run interface as an Ethernet link.
pub fn load(programs: &[Program]) -> Ebpf {
    load_on(programs, LINK_ETHERNET)
}

/// Like [`load`], with the interface's frames beginning as `link` says
/// (`LINK_UNMETERED` leaves it out of the interface map).
pub fn load_on(programs: &[Program], link: u32) -> Ebpf {
    load_with(programs, link, None)
}

/// Like [`load`], with the new-flow budget set as userspace sets it (`None` leaves the
/// object's own value: no budget).
pub fn load_with(programs: &[Program], link: u32, new_flow_budget: Option<u64>) -> Ebpf {
    load_sized(programs, link, new_flow_budget, FLOW_CAPACITY)
}

/// Like [`load_with`], with room for `flow_capacity` flows in each flow map (the fuzzer
/// checks a whole batch of frames at once).
pub fn load_sized(
    programs: &[Program],
    link: u32,
    new_flow_budget: Option<u64>,
    flow_capacity: u32,
) -> Ebpf {
    let mut loader = EbpfLoader::new();
    if let Some(budget) = &new_flow_budget {
        loader.override_global(NEW_FLOW_BUDGET_GLOBAL, budget, true);
    }
    let mut ebpf = loader
        .map_max_entries(IFACES_MAP, IFINDEX + 1)
        .map_max_entries(TOTALS_MAP, TOTALS_SLOTS)
        .map_max_entries(FLOWS_MAP, flow_capacity)
        .map_max_entries(FLOWS_V4_MAP, flow_capacity)
        .load(OBJECT)
        .unwrap_or_else(|e| {
            panic!(
                "loading the eBPF object failed: {e:?} (these tests need root: run them with sudo)"
            )
        });
    let mut ifaces = Array::<_, IfaceConfig>::try_from(ebpf.map_mut(IFACES_MAP).expect("IFACES"))
        .expect("IFACES is an array");
    ifaces
        .set(IFINDEX, IfaceConfig { slot: SLOT, link }, 0)
        .expect("configure the interface");
    for program in programs {
        program.load(&mut ebpf);
    }
    ebpf
}

/// Every totals slot, summed over the CPUs.
pub fn totals(ebpf: &Ebpf) -> Vec<Totals> {
    let map = PerCpuArray::<_, Totals>::try_from(ebpf.map(TOTALS_MAP).expect("TOTALS map"))
        .expect("TOTALS is a per-CPU array");
    (0..TOTALS_SLOTS)
        .map(|slot| sum_totals(map.get(&slot, 0).expect("read a totals slot").iter()))
        .collect()
}

/// Every flow of both maps (IPv4 keys widened to dual-family ones, as userspace reads
/// them), summed over the CPUs.
pub fn flows(ebpf: &Ebpf) -> Vec<(FlowKey, FlowCounters)> {
    let v4 = PerCpuHashMap::<_, FlowKeyV4, FlowCounters>::try_from(
        ebpf.map(FLOWS_V4_MAP).expect("FLOWS_V4 map"),
    )
    .expect("FLOWS_V4 is a per-CPU hash");
    let v6 = PerCpuHashMap::<_, FlowKey, FlowCounters>::try_from(
        ebpf.map(FLOWS_MAP).expect("FLOWS map"),
    )
    .expect("FLOWS is a per-CPU hash");
    let summed = |per_cpu: PerCpuValues<FlowCounters>| sum_flow_counters(per_cpu.iter());
    let v4 = v4.iter().map(|entry| {
        let (key, per_cpu) = entry.expect("read an IPv4 flow");
        (key.widen(), summed(per_cpu))
    });
    let v6 = v6.iter().map(|entry| {
        let (key, per_cpu) = entry.expect("read an IPv6 flow");
        (key, summed(per_cpu))
    });
    v4.chain(v6).collect()
}

/// Every prefix of the over-budget map, summed over the CPUs.
pub fn overflow(ebpf: &Ebpf) -> Vec<(PrefixKey, PrefixCounters)> {
    let map = PerCpuHashMap::<_, PrefixKey, PrefixCounters>::try_from(
        ebpf.map(OVERFLOW_MAP).expect("OVERFLOW map"),
    )
    .expect("OVERFLOW is a per-CPU hash");
    map.iter()
        .map(|entry| {
            let (key, per_cpu) = entry.expect("read a prefix");
            let sum = per_cpu
                .iter()
                .fold(PrefixCounters::default(), |sum, cpu| PrefixCounters {
                    packets: sum.packets + cpu.packets,
                    bytes: sum.bytes + cpu.bytes,
                });
            (key, sum)
        })
        .collect()
}

/// Empties every map, so that the next case starts from nothing. (Cheaper than a
/// fresh object per case: parsing the object takes about 0.1 s in a debug build.)
pub fn clear_maps(ebpf: &mut Ebpf) {
    let cpus = aya::util::nr_cpus().expect("number of CPUs");
    let mut map = PerCpuArray::<_, Totals>::try_from(ebpf.map_mut(TOTALS_MAP).expect("TOTALS map"))
        .expect("TOTALS is a per-CPU array");
    for slot in 0..TOTALS_SLOTS {
        let zeros = PerCpuValues::try_from(vec![Totals::default(); cpus]).expect("per-CPU zeros");
        map.set(slot, zeros, 0).expect("zero a totals slot");
    }
    clear_flows::<FlowKeyV4>(ebpf, FLOWS_V4_MAP);
    clear_flows::<FlowKey>(ebpf, FLOWS_MAP);
}

fn clear_flows<K: aya::Pod>(ebpf: &mut Ebpf, name: &str) {
    let mut map =
        PerCpuHashMap::<_, K, FlowCounters>::try_from(ebpf.map_mut(name).expect("a flow map"))
            .expect("a flow map is a per-CPU hash");
    let keys: Vec<K> = map
        .keys()
        .map(|key| key.expect("read a flow key"))
        .collect();
    for key in keys {
        map.remove(&key).expect("remove a flow");
    }
}

/// Why BPF_PROG_TEST_RUN itself refuses (EINVAL) to run `program` on `frame`, seen on
/// kernel 6.18: it checks frames before any program sees them. Those runs can only
/// check that nothing was counted; the tagged variants of the crafted table reach the
/// programs with the same truncated IP headers.
pub fn kernel_refusal(program: Program, frame: &[u8]) -> Option<&'static str> {
    if frame.len() < ETH_HLEN {
        return Some("frames shorter than an Ethernet header");
    }
    if program.is_skb() && frame.len() > LONGEST_SKB_FRAME {
        return Some("skbs longer than a page less its headroom and tailroom");
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip_bytes = frame.len() - ETH_HLEN;
    match program {
        Program::XdpIngress => None,
        // An skb's untagged IP header must be there in full (20 or 40 bytes).
        _ if ethertype == ETH_P_IP && ip_bytes < IPV4_HLEN => {
            Some("skbs with an IPv4 ethertype and a short IPv4 header")
        }
        _ if ethertype == ETH_P_IPV6 && ip_bytes < IPV6_HLEN => {
            Some("skbs with an IPv6 ethertype and a short IPv6 header")
        }
        _ => None,
    }
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
/// What an XDP test run puts in the linear part, where the program reads: 4096 less
/// XDP_PACKET_HEADROOM (256) and the shared info (320). The rest of a longer frame goes
/// to fragments, which flowmeter's XDP program (not frags-aware) neither reads nor
/// counts; attached, such a program never meets a longer frame (drivers refuse it an
/// MTU beyond a page, and generic XDP linearises the skb first).
pub const LONGEST_XDP_FRAME: usize = 3520;
/// 4096 less NET_SKB_PAD (64) and the shared info (320).
pub const LONGEST_SKB_FRAME: usize = 3712;

/// Whether a test run failed with EINVAL, the kernel's refusal of a frame.
pub fn is_einval(error: &ProgramError) -> bool {
    let ProgramError::SyscallError(error) = error else {
        return false;
    };
    error.io_error.kind() == io::ErrorKind::InvalidInput
}
