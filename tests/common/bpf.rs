//! BPF maps made with the bare syscall, for tests and benchmarks of map readers that
//! need a real kernel map but no program (`datapath::batch`). Needs root.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
/// The flow table's type.
pub const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a zeroed 128-byte bpf_attr with the fields of `cmd` filled in;
    // pointers in it address buffers that outlive the call.
    let result = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(result)
}

/// A new map; panics with the kernel's reason if it cannot be made.
pub fn create_map(map_type: u32, key_size: usize, value_size: usize, max_entries: u32) -> OwnedFd {
    let mut attr = [0u64; 16];
    // map_type | key_size, value_size | max_entries (little-endian u32 pairs).
    attr[0] = u64::from(map_type) | (key_size as u64) << 32;
    attr[1] = value_size as u64 | u64::from(max_entries) << 32;
    let fd = bpf(BPF_MAP_CREATE, &mut attr).expect("BPF_MAP_CREATE");
    // SAFETY: the kernel just returned this fd to us.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Sets `key` to `value` (for a per-CPU map: every possible CPU's slot, each rounded up
/// to 8 bytes).
pub fn update(map: &OwnedFd, key: &[u8], value: &[u8]) {
    let mut attr = [0u64; 16];
    attr[0] = map.as_raw_fd() as u64;
    attr[1] = key.as_ptr() as u64;
    attr[2] = value.as_ptr() as u64;
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).expect("BPF_MAP_UPDATE_ELEM");
}
