//! Giving memory back after a flood. A table that held a flood's flows keeps its room
//! when they are forgotten (hash maps and vectors never shrink by themselves), and glibc
//! keeps the freed heap for the next allocation instead of returning it to the system.
//! Every per-flow table calls [`to_live`] once its dead entries are gone: it shrinks a
//! table that holds far fewer entries than it has room for, and once enough has been
//! given back since the last time, returns the free heap to the system
//! (`malloc_trim`), so the process's RSS falls back after the flood. [`one_heap`], at
//! the start of `main`, keeps every thread's allocations in the heap that trimming
//! returns whole.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, Hash},
    sync::atomic::{AtomicUsize, Ordering},
};

/// Tables this small are never shrunk: their room costs little, and a table that
/// swings between a few and a few hundred entries should not reallocate each time.
pub const SMALL: usize = 1024;

/// Bytes given back by shrinks since the heap was last trimmed.
static FREED: AtomicUsize = AtomicUsize::new(0);

/// How much must be given back before the heap is trimmed: trimming walks the whole
/// heap, so it is done once after a large shrink, not after every small one.
const TRIM_AFTER: usize = 1 << 20;

/// A table whose room can be given back.
pub trait Shrink {
    fn live(&self) -> usize;
    fn room(&self) -> usize;
    fn shrink_room_to(&mut self, room: usize);
    /// Bytes one unit of room takes.
    fn unit_bytes(&self) -> usize;
}

/// Shrinks `table` when it has room for more than four times its live entries (and
/// more than [`SMALL`]), to twice those: a steady table is never shrunk, and a table
/// shrunk has room to grow by half again before it reallocates. Returns whether it
/// shrank.
pub fn to_live(table: &mut impl Shrink) -> bool {
    let live = table.live().max(SMALL);
    let room = table.room();
    if room <= 4 * live {
        return false;
    }
    table.shrink_room_to(2 * live);
    let freed = room.saturating_sub(table.room()) * table.unit_bytes();
    note_freed(freed);
    true
}

/// Counts `bytes` as given back (by a table shrunk some other way), and trims the heap
/// once enough has been.
pub fn note_freed(bytes: usize) {
    let freed = FREED.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if freed >= TRIM_AFTER && FREED.swap(0, Ordering::Relaxed) >= TRIM_AFTER {
        trim_heap();
    }
}

/// Makes every thread allocate from the one main heap (glibc: `M_ARENA_MAX` 1). Call it
/// first in `main`, before any thread allocates. glibc gives each thread that allocates
/// a heap of its own, and `malloc_trim` cannot return the free end of those: the
/// resolving thread kept 15 MB of a flood's lookups for good. flowmeter's threads
/// allocate little next to the metering thread, so sharing one heap costs them nothing
/// measurable.
pub fn one_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the allocator's free memory to the system.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The standard tables have the same `len`, `capacity` and `shrink_to`.
macro_rules! shrink_by_capacity {
    ($([$($generics:tt)*] $table:ty, $entry:ty;)*) => {$(
        impl<$($generics)*> Shrink for $table {
            fn live(&self) -> usize {
                self.len()
            }
            fn room(&self) -> usize {
                self.capacity()
            }
            fn shrink_room_to(&mut self, room: usize) {
                self.shrink_to(room);
            }
            fn unit_bytes(&self) -> usize {
                size_of::<$entry>()
            }
        }
    )*};
}

shrink_by_capacity! {
    [K: Eq + Hash, V, S: BuildHasher] HashMap<K, V, S>, (K, V);
    [T: Eq + Hash, S: BuildHasher] HashSet<T, S>, T;
    [T] Vec<T>, T;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_mostly_empty_shrinks_to_twice_its_live_entries() {
        let mut table: HashMap<u64, u64> = (0..100_000).map(|n| (n, n)).collect();
        table.retain(|&key, _| key < 5_000);
        assert!(to_live(&mut table));
        assert!(table.capacity() >= 10_000 && table.capacity() < 40_000);
        assert_eq!(table.len(), 5_000);
    }

    #[test]
    fn a_steady_or_small_table_keeps_its_room() {
        let mut steady: Vec<u64> = Vec::with_capacity(100_000);
        steady.extend(0..60_000);
        assert!(!to_live(&mut steady));
        assert_eq!(steady.capacity(), 100_000);
        let mut small: Vec<u64> = Vec::with_capacity(4 * SMALL);
        assert!(!to_live(&mut small));
        assert_eq!(small.capacity(), 4 * SMALL);
    }

    #[test]
    fn a_shrunk_table_does_not_shrink_again_until_it_empties_further() {
        let mut table: Vec<u64> = Vec::with_capacity(1_000_000);
        table.extend(0..10_000);
        assert!(to_live(&mut table));
        let room = table.capacity();
        table.truncate(6_000);
        assert!(!to_live(&mut table));
        assert_eq!(table.capacity(), room);
    }
}
