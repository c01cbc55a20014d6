//! Reading a whole BPF hash map in a few syscalls: `BPF_MAP_LOOKUP_BATCH`, which aya
//! 0.14 does not wrap (its iterator costs two syscalls per key, and a key evicted while
//! it walks makes the kernel start the walk again from the first bucket).
//!
//! The kernel copies up to `count` elements per call, bucket by bucket, and hands back a
//! token for the next bucket; the walk ends with `ENOENT`. A bucket holding more elements
//! than fit in one call answers `ENOSPC`: the buffers grow and the same bucket is asked
//! again. Elements arrive as raw bytes, keys and values each in one array; for per-CPU
//! maps a value is one 8-byte-aligned slot per possible CPU, as `BPF_MAP_LOOKUP_ELEM`
//! returns them.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

/// `BPF_MAP_LOOKUP_BATCH` from `enum bpf_cmd` (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// The `batch` member of `union bpf_attr`, as the kernel lays it out.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Reusable buffers for reading one map whole, interval after interval.
pub struct BatchLookup {
    key_size: usize,
    value_size: usize,
    /// Elements asked for per call; doubled when a bucket does not fit.
    chunk: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
}

/// The most elements one call may ask for: keeps the buffers bounded (a few MB).
const MAX_CHUNK: usize = 1 << 16;

impl BatchLookup {
    /// For a map whose keys are `key_size` bytes and whose values, as the lookup
    /// returns them, are `value_size` bytes (for a per-CPU map: the value size rounded
    /// up to 8, times the number of possible CPUs), reading `chunk` elements per call.
    pub fn new(key_size: usize, value_size: usize, chunk: usize) -> Self {
        let chunk = chunk.clamp(1, MAX_CHUNK);
        Self {
            key_size,
            value_size,
            chunk,
            keys: vec![0; chunk * key_size],
            values: vec![0; chunk * value_size],
        }
    }

    /// Calls `each(key, value)` for every element of the map behind `map`, in the
    /// kernel's bucket order. Elements added or removed during the walk may or may not
    /// be seen; every element present throughout is seen exactly once.
    pub fn for_each(
        &mut self,
        map: BorrowedFd<'_>,
        mut each: impl FnMut(&[u8], &[u8]),
    ) -> io::Result<()> {
        // The token is the next bucket's index (a u32 for hash maps); 8 bytes is room
        // for any map type's token.
        let mut token_in = [0u8; 8];
        let mut token_out = [0u8; 8];
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
                out_batch: token_out.as_mut_ptr() as u64,
                keys: self.keys.as_mut_ptr() as u64,
                values: self.values.as_mut_ptr() as u64,
                count: self.chunk as u32,
                map_fd: map.as_raw_fd() as u32,
                ..BatchAttr::default()
            };
            // SAFETY: `attr` is a valid `bpf_attr.batch`, its pointers address buffers
            // of `count` keys and values (and 8-byte tokens) that outlive the call.
            let result = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    &mut attr as *mut BatchAttr,
                    std::mem::size_of::<BatchAttr>(),
                )
            };
            let error = (result < 0).then(io::Error::last_os_error);
            match error.as_ref().and_then(io::Error::raw_os_error) {
                Some(libc::ENOSPC) if self.chunk < MAX_CHUNK => {
                    // One bucket holds more than a call's worth: ask again, with room.
                    self.grow();
                    continue;
                }
                None | Some(libc::ENOENT) => {}
                Some(_) => return Err(error.expect("an errno comes with an error")),
            }
            let count = (attr.count as usize).min(self.chunk);
            for index in 0..count {
                each(
                    &self.keys[index * self.key_size..(index + 1) * self.key_size],
                    &self.values[index * self.value_size..(index + 1) * self.value_size],
                );
            }
            if error.is_some() {
                // ENOENT: that was the last bucket.
                return Ok(());
            }
            token_in = token_out;
            first = false;
        }
    }

    fn grow(&mut self) {
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        self.keys.resize(self.chunk * self.key_size, 0);
        self.values.resize(self.chunk * self.value_size, 0);
    }
}
