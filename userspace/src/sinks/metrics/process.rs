//! The standard `process_*` metrics of the Prometheus client libraries (CPU seconds,
//! resident and virtual memory, start time, open and maximum file descriptors), read
//! from `/proc/self` at each scrape by the endpoint's thread (`endpoint.rs`), since the
//! `prometheus-client` crate has no collector for them. A value that cannot be read is
//! left out rather than reported as 0.

use procfs::process::{LimitValue, Process};
use prometheus_client::{
    encoding::text,
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

/// Appends the process metrics to `out`, in the text format.
pub fn encode(out: &mut String) -> std::fmt::Result {
    let mut registry = Registry::default();
    if let Ok(me) = Process::myself() {
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            registry.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                ConstCounter::new((stat.utime + stat.stime) as f64 / ticks),
            );
            registry.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                ConstGauge::new((stat.rss * procfs::page_size()) as i64),
            );
            registry.register(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                ConstGauge::new(stat.vsize as i64),
            );
            if let Ok(boot) = procfs::boot_time_secs() {
                registry.register(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch in seconds",
                    ConstGauge::new(boot as f64 + stat.starttime as f64 / ticks),
                );
            }
        }
        if let Ok(open) = me.fd_count() {
            registry.register(
                "process_open_fds",
                "Number of open file descriptors",
                ConstGauge::new(open as i64),
            );
        }
        if let Ok(limits) = me.limits()
            && let LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            registry.register(
                "process_max_fds",
                "Maximum number of open file descriptors",
                ConstGauge::new(max as i64),
            );
        }
    }
    text::encode_registry(out, &registry)
}
