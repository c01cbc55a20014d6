//! Socket owners, recorded in the owning process's own context.
//!
//! Attached to the cgroup v2 root, these programs run for every socket of the host,
//! whatever its network namespace:
//! - `flowmeter_sock_create` (cgroup/sock_create): a new TCP or UDP socket's owner
//!   (tgid, uid, cgroup id, comm, when) into `SOCK_OWNERS` under its cookie;
//! - `flowmeter_sock_ops` (sockops, TCP_CONNECT_CB, once the local port is chosen): that
//!   owner into `TUPLE_OWNERS` under the connection's tuple;
//! - `flowmeter_sendmsg4`/`flowmeter_sendmsg6` (cgroup/sendmsg*, unconnected UDP sends):
//!   the same under (local address, local port, destination), the local address zero
//!   while the socket is bound to none. One lookup per send; a write only when the tuple
//!   has no owner yet or another one.
//!
//! TC egress ([`join`]) covers the rest (connected UDP, sockets made before attaching
//! cannot be: their owner is unknown) on a flow's first packet per CPU, from the skb's
//! socket. Every program here allows what it sees and changes nothing.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_NOEXIST, BPF_SOCK_OPS_TCP_CONNECT_CB, bpf_sock},
    helpers::generated::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_get_socket_cookie, bpf_ktime_get_boot_ns,
    },
    macros::{cgroup_sock, cgroup_sock_addr, map, sock_ops},
    maps::LruHashMap,
    programs::{SockAddrContext, SockContext, SockOpsContext, TcContext, XdpContext},
};
use flowmeter_common::{
    DEFAULT_OWNER_CAPACITY, FAMILY_IPV4, FAMILY_IPV6, FlowKey, FlowKeyV4, PROTO_TCP, PROTO_UDP,
    SockOwner,
};

use crate::write_zero;

#[map(name = "SOCK_OWNERS")]
static SOCK_OWNERS: LruHashMap<u64, SockOwner> =
    LruHashMap::with_max_entries(DEFAULT_OWNER_CAPACITY, 0);

#[map(name = "TUPLE_OWNERS")]
static TUPLE_OWNERS: LruHashMap<FlowKey, SockOwner> =
    LruHashMap::with_max_entries(DEFAULT_OWNER_CAPACITY, 0);

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
/// What a cgroup sock or sock_addr program returns to let the operation go on.
const ALLOW: i32 = 1;

#[cgroup_sock(sock_create)]
pub fn flowmeter_sock_create(ctx: SockContext) -> i32 {
    // SAFETY: ctx.sock is the kernel's bpf_sock, valid for the program's run.
    let (family, protocol) = unsafe { ((*ctx.sock).family, (*ctx.sock).protocol) };
    let inet = family == AF_INET || family == AF_INET6;
    let tcp_or_udp = protocol == u32::from(PROTO_TCP) || protocol == u32::from(PROTO_UDP);
    if inet && tcp_or_udp {
        // SAFETY: a cgroup sock program's context is what this helper takes.
        let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
        let mut owner = MaybeUninit::uninit();
        let _ = SOCK_OWNERS.insert(&cookie, current_owner(&mut owner), 0);
    }
    ALLOW
}

#[sock_ops]
pub fn flowmeter_sock_ops(ctx: SockOpsContext) -> u32 {
    if ctx.op() == BPF_SOCK_OPS_TCP_CONNECT_CB {
        // SAFETY: a sock_ops program's context is what this helper takes.
        let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
        // SAFETY: a value of a map that is never deleted from but by LRU eviction.
        if let Some(owner) = unsafe { SOCK_OWNERS.get(&cookie) } {
            let mut key = MaybeUninit::uninit();
            // Ports: local in host order, remote in network order in the high half.
            let (local_port, remote_port) =
                (ctx.local_port() as u16, u32::from_be(ctx.remote_port()) as u16);
            let key = match ctx.family() {
                AF_INET => tuple_v4(
                    &mut key,
                    PROTO_TCP,
                    ctx.local_ip4(),
                    local_port,
                    ctx.remote_ip4(),
                    remote_port,
                ),
                AF_INET6 => tuple_v6(
                    &mut key,
                    PROTO_TCP,
                    &ctx.local_ip6(),
                    local_port,
                    &ctx.remote_ip6(),
                    remote_port,
                ),
                _ => return ALLOW as u32,
            };
            let _ = TUPLE_OWNERS.insert(key, owner, 0);
        }
    }
    ALLOW as u32
}

#[cgroup_sock_addr(sendmsg4)]
pub fn flowmeter_sendmsg4(ctx: SockAddrContext) -> i32 {
    let addr = ctx.sock_addr;
    // SAFETY: addr is the kernel's bpf_sock_addr and its sk a full socket, valid for the
    // program's run.
    unsafe {
        if (*addr).protocol == u32::from(PROTO_UDP) {
            let sk = (*addr).__bindgen_anon_1.sk;
            let mut key = MaybeUninit::uninit();
            let key = tuple_v4(
                &mut key,
                PROTO_UDP,
                (*sk).src_ip4,
                (*sk).src_port as u16,
                (*addr).user_ip4,
                u16::from_be((*addr).user_port as u16),
            );
            record_send(&ctx, key);
        }
    }
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn flowmeter_sendmsg6(ctx: SockAddrContext) -> i32 {
    let addr = ctx.sock_addr;
    // SAFETY: as in flowmeter_sendmsg4.
    unsafe {
        if (*addr).protocol == u32::from(PROTO_UDP) {
            let sk: *mut bpf_sock = (*addr).__bindgen_anon_1.sk;
            let mut key = MaybeUninit::uninit();
            let key = tuple_v6(
                &mut key,
                PROTO_UDP,
                &(*sk).src_ip6,
                (*sk).src_port as u16,
                &(*addr).user_ip6,
                u16::from_be((*addr).user_port as u16),
            );
            record_send(&ctx, key);
        }
    }
    ALLOW
}

/// Tuple `key` of an unconnected send gets its socket's owner, unless it has it already.
#[inline(always)]
fn record_send(ctx: &SockAddrContext, key: &FlowKey) {
    // SAFETY: a sock_addr program's context is what this helper takes.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: map values, read only.
    let owner = match unsafe { SOCK_OWNERS.get(&cookie) } {
        Some(owner) => owner,
        None => {
            // A socket made before the programs were attached: this send's process
            // owns it now.
            let mut owner = MaybeUninit::uninit();
            let _ = SOCK_OWNERS.insert(&cookie, current_owner(&mut owner), 0);
            match unsafe { SOCK_OWNERS.get(&cookie) } {
                Some(owner) => owner,
                None => return,
            }
        }
    };
    // SAFETY: as above.
    if let Some(known) = unsafe { TUPLE_OWNERS.get(key) }
        && same_socket_owner(known, owner)
    {
        return;
    }
    let _ = TUPLE_OWNERS.insert(key, owner, 0);
}

/// Whether two records are of the same socket's making (same process, same moment).
#[inline(always)]
fn same_socket_owner(a: &SockOwner, b: &SockOwner) -> bool {
    a.made_boot_ns == b.made_boot_ns && a.tgid == b.tgid
}

/// Joins a flow's tuple to its socket's owner, from TC egress, for a flow's first packet
/// on this CPU: the owner recorded under the skb's socket's cookie, if the tuple has none.
#[inline(always)]
pub fn join<C: SocketCookie, K: Tuple>(ctx: &C, key: &K) {
    let cookie = ctx.socket_cookie();
    if cookie == 0 {
        return;
    }
    // SAFETY: map values, read only.
    let Some(owner) = (unsafe { SOCK_OWNERS.get(&cookie) }) else {
        return;
    };
    let mut tuple = MaybeUninit::uninit();
    let _ = TUPLE_OWNERS.insert(key.tuple(&mut tuple), owner, BPF_NOEXIST as u64);
}

/// The cookie of the socket a packet belongs to (0: none).
pub trait SocketCookie: EbpfContext {
    fn socket_cookie(&self) -> u64;
}

impl SocketCookie for TcContext {
    #[inline(always)]
    fn socket_cookie(&self) -> u64 {
        // SAFETY: a TC program's context is what this helper takes.
        unsafe { bpf_get_socket_cookie(self.as_ptr()) }
    }
}

impl SocketCookie for XdpContext {
    /// XDP sees received frames, before any socket.
    #[inline(always)]
    fn socket_cookie(&self) -> u64 {
        0
    }
}

/// A flow key's tuple as `TUPLE_OWNERS` keys it: the same, with ifindex 0.
pub trait Tuple {
    fn tuple<'k>(&self, place: &'k mut MaybeUninit<FlowKey>) -> &'k FlowKey;
}

impl Tuple for FlowKeyV4 {
    #[inline(always)]
    fn tuple<'k>(&self, place: &'k mut MaybeUninit<FlowKey>) -> &'k FlowKey {
        tuple_v4(
            place,
            self.proto,
            u32::from_ne_bytes(self.local_addr),
            self.local_port,
            u32::from_ne_bytes(self.remote_addr),
            self.remote_port,
        )
    }
}

impl Tuple for FlowKey {
    #[inline(always)]
    fn tuple<'k>(&self, place: &'k mut MaybeUninit<FlowKey>) -> &'k FlowKey {
        let words = |addr: &[u8; 16]| {
            let w = |i: usize| u32::from_ne_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        };
        tuple_v6(
            place,
            self.proto,
            &words(&self.local_addr),
            self.local_port,
            &words(&self.remote_addr),
            self.remote_port,
        )
    }
}

/// An IPv4 tuple, addresses as the kernel holds them (network order), ports in host order.
#[inline(always)]
fn tuple_v4(
    place: &mut MaybeUninit<FlowKey>,
    proto: u8,
    local: u32,
    local_port: u16,
    remote: u32,
    remote_port: u16,
) -> &FlowKey {
    let p = place.as_mut_ptr();
    // SAFETY: `p` points to a FlowKey-sized, aligned place; every field is written before
    // it is handed out as initialised, the addresses as aligned words (the verifier
    // refuses unaligned stack accesses), and no run of zeros as a memset (see write_zero).
    unsafe {
        tuple_head(p, FAMILY_IPV4, proto, local_port, remote_port);
        let (l, r) = address_words(p);
        l.write(local);
        r.write(remote);
        for i in 1..4 {
            write_zero(l.add(i));
            write_zero(r.add(i));
        }
        place.assume_init_ref()
    }
}

/// An IPv6 tuple, as [`tuple_v4`].
#[inline(always)]
fn tuple_v6<'k>(
    place: &'k mut MaybeUninit<FlowKey>,
    proto: u8,
    local: &[u32; 4],
    local_port: u16,
    remote: &[u32; 4],
    remote_port: u16,
) -> &'k FlowKey {
    let p = place.as_mut_ptr();
    // SAFETY: as in tuple_v4.
    unsafe {
        tuple_head(p, FAMILY_IPV6, proto, local_port, remote_port);
        let (l, r) = address_words(p);
        for i in 0..4 {
            l.add(i).write(local[i]);
            r.add(i).write(remote[i]);
        }
        place.assume_init_ref()
    }
}

/// # Safety
/// `p` is valid for writes and aligned.
#[inline(always)]
unsafe fn tuple_head(p: *mut FlowKey, family: u8, proto: u8, local_port: u16, remote_port: u16) {
    // SAFETY: see the function's contract.
    unsafe {
        write_zero(&raw mut (*p).ifindex);
        (&raw mut (*p).family).write(family);
        (&raw mut (*p).proto).write(proto);
        (&raw mut (*p).local_port).write(local_port);
        (&raw mut (*p).remote_port).write(remote_port);
        write_zero(&raw mut (*p).pad);
    }
}

/// The local and remote address fields as 4 words each.
///
/// # Safety
/// `p` is valid and aligned.
#[inline(always)]
unsafe fn address_words(p: *mut FlowKey) -> (*mut u32, *mut u32) {
    // SAFETY: see the function's contract; both fields are 4-byte aligned.
    unsafe {
        (
            (&raw mut (*p).local_addr).cast::<u32>(),
            (&raw mut (*p).remote_addr).cast::<u32>(),
        )
    }
}

/// The calling process as the owner of a socket it makes now, written into `place`.
#[inline(always)]
fn current_owner(place: &mut MaybeUninit<SockOwner>) -> &SockOwner {
    let p = place.as_mut_ptr();
    // SAFETY: `p` points to a SockOwner-sized, aligned place; every field is written
    // (comm by the helper, which NUL-pads it) before it is handed out as initialised.
    unsafe {
        let pid_tgid = bpf_get_current_pid_tgid();
        let uid_gid = bpf_get_current_uid_gid();
        (&raw mut (*p).tgid).write((pid_tgid >> 32) as u32);
        (&raw mut (*p).uid).write(uid_gid as u32);
        (&raw mut (*p).cgroup_id).write(bpf_get_current_cgroup_id());
        (&raw mut (*p).made_boot_ns).write(bpf_ktime_get_boot_ns());
        let comm = &raw mut (*p).comm;
        if bpf_get_current_comm(comm.cast::<c_void>(), 16) != 0 {
            for i in 0..2 {
                write_zero(comm.cast::<u64>().add(i));
            }
        }
        place.assume_init_ref()
    }
}
