//! Where `flowmeter log` sends each enriched snapshot: the JSON-lines log, its alerts and
//! summaries, in the wire format of `schema`. (`top`'s screen is `crate::console`.)

pub mod alerts;
pub mod log;
pub mod output;
pub mod schema;
pub mod summary;

#[cfg(test)]
mod fixtures;
