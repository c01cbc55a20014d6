//! `--metrics ADDR:PORT`: Prometheus metrics of `log`, `top` and `bench`, at
//! `http://ADDR:PORT/metrics`, in the OpenMetrics text format of the `prometheus-client`
//! crate. Every metric, its labels and the most series a host can produce are in
//! `docs/metrics.md`.
//!
//! Two threads, one way. The metering thread adds each interval to the metric families
//! (`families.rs`; process names bounded by `named.rs`) and publishes their encoding as
//! one immutable text; the endpoint's thread (`endpoint.rs`) answers each scrape with the
//! latest text and the `process_*` metrics it reads from `/proc/self` then
//! (`process.rs`). A scrape never waits for an interval, and an interval never waits
//! for a scrape: they share one pointer, swapped under a lock held for that long.

mod endpoint;
mod families;
mod named;
mod process;

#[cfg(test)]
mod tests;

use std::{net::SocketAddr, time::Duration};

use crate::{datapath::Snapshot, enrich::EnrichedSnapshot, sinks::alerts::Alert};

pub use endpoint::{CONTENT_TYPE, Endpoint};
pub use families::{Families, OTHER, UNOWNED};

/// The families and their endpoint: what a metering command holds with `--metrics`.
pub struct Metrics {
    families: Families,
    endpoint: Endpoint,
}

/// What the families are sized by, known before the first interval.
#[derive(Clone, Debug)]
pub struct Setup {
    /// `--metrics-top`: process names labelled; the rest are `other`.
    pub top_processes: usize,
    /// `--flows`: the kernel table's room, for IPv4 and for IPv6 each.
    pub flow_capacity: u32,
    /// The metered interfaces and their link speeds in bits per second, where known.
    pub interfaces: Vec<(String, Option<u64>)>,
    /// The command raises alerts (`log`): their families start at 0 for every kind.
    pub alerts: bool,
}

impl Metrics {
    /// Listens on `address` and publishes the families at zero; fails with a message
    /// that names the address when it cannot listen.
    pub fn serve(address: SocketAddr, setup: &Setup) -> anyhow::Result<Self> {
        let endpoint = Endpoint::serve(address).map_err(|error| {
            anyhow::anyhow!(
                "--metrics {address}: cannot listen ({error}); choose a free port, on an \
                 address of this host"
            )
        })?;
        let metrics = Self {
            families: Families::new(setup),
            endpoint,
        };
        metrics.publish();
        Ok(metrics)
    }

    /// Where it listens (the port the system chose, for port 0).
    pub fn address(&self) -> SocketAddr {
        self.endpoint.address()
    }

    /// One interval's interface totals (`bench`, which has no enrichers).
    pub fn record_snapshot(&mut self, snapshot: &Snapshot) {
        self.families.record_totals(snapshot);
    }

    /// One enriched interval: interface totals and traffic by country, verdict, process.
    pub fn record(&mut self, interval: &EnrichedSnapshot) {
        self.families.record_totals(interval.snapshot());
        self.families.record_traffic(interval);
    }

    /// The flow table after a read: flows in it, and flows the kernel let go.
    pub fn record_table(&mut self, flows: usize, evicted: usize) {
        self.families.record_table(flows, evicted);
    }

    /// The alerts an interval raised (starts, reminders, ends).
    pub fn record_alerts(&mut self, alerts: &[Alert]) {
        self.families.record_alerts(alerts);
    }

    /// How long one interval's work took.
    pub fn record_cycle(&mut self, took: Duration) {
        self.families.record_cycle(took);
    }

    /// Makes what was recorded so far the answer to the next scrape.
    pub fn publish(&self) {
        self.endpoint.publish(self.families.encode());
    }
}
