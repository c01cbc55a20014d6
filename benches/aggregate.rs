//! One aggregation cycle at 1k, 10k, 100k and 1M flows that all moved: ingest the interval's
//! snapshot, then the console's default view (by remote host, sorted by the 2 s total,
//! top 50). The aggregator has 40 s of history first, so each ingest also retires a
//! full interval from every window: the steady state of a busy host.
//!
//! Before timing, it prints the heap the aggregator holds per flow in that state,
//! measured by a counting allocator.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::atomic::{AtomicIsize, Ordering},
    time::Duration,
};

#[path = "common/steady.rs"]
mod steady;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flowmeter::{
    datapath::{FlowId, Snapshot},
    flow::{Aggregator, GroupBy, SortBy},
};
use steady::snapshot;

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator; only a counter is
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc`/`realloc` above, that is from System.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc`, and the caller's guarantees for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// An aggregator after 40 one-second intervals of `snapshot`.
fn steady(snapshot: &Snapshot) -> Aggregator {
    // Room for every flow: above the default limit, the oldest would be evicted.
    let limit = snapshot
        .flows
        .len()
        .max(flowmeter::flow::DEFAULT_FLOW_LIMIT);
    let mut aggregator = Aggregator::with_flow_limit(limit);
    for _ in 0..40 {
        aggregator.ingest(snapshot);
    }
    aggregator
}

/// Flow counts measured: up to a million live flows.
const SIZES: [u32; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn no_process(_: &FlowId) -> Option<u32> {
    None
}

fn cycle(aggregator: &mut Aggregator, snapshot: &Snapshot) {
    aggregator.ingest(snapshot);
    let top = aggregator.top(GroupBy::RemoteHost, SortBy::default(), 50, &no_process);
    black_box(top);
}

fn aggregate_cycle(c: &mut Criterion) {
    for flows in SIZES {
        let snapshot = snapshot(flows);
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let aggregator = steady(&snapshot);
        let held = LIVE_BYTES.load(Ordering::Relaxed) - before;
        println!(
            "aggregate/{flows}: {} bytes per flow with 40 s of history ({:.1} MB)",
            held / flows as isize,
            held as f64 / 1e6
        );
        drop(aggregator);
    }

    let mut group = c.benchmark_group("aggregate_cycle");
    group.measurement_time(Duration::from_secs(5));
    for flows in SIZES {
        if flows >= 1_000_000 {
            // A cycle takes a good part of a second: fewer, longer samples.
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        let snapshot = snapshot(flows);
        let mut aggregator = steady(&snapshot);
        // Each iteration is one more second of the same traffic: the state stays steady.
        group.bench_with_input(BenchmarkId::from_parameter(flows), &flows, |b, _| {
            b.iter(|| cycle(&mut aggregator, &snapshot))
        });
    }
    group.finish();
}

criterion_group!(benches, aggregate_cycle);
criterion_main!(benches);
