//! Where `flowmeter log` sends each enriched snapshot: the JSON-lines log (flow records,
//! top talkers, totals), its alerts and summaries, in the wire format of `schema`; the flow
//! records also as IPFIX to flow collectors (`ipfix`); and `metrics`, the Prometheus
//! endpoint of `log`, `top` and `bench` (`--metrics`).
//! (`top`'s screen is `crate::console`.)

pub mod alerts;
pub mod ipfix;
pub mod log;
pub mod metrics;
pub mod moment;
pub mod output;
pub mod records;
pub mod schema;
pub mod summary;
pub mod top;

#[cfg(test)]
pub(crate) mod fixtures;
