//! Alerts: the conditions an administrator wants to hear about, raised from each
//! interval's snapshot and the enrichers' facts, de-duplicated, and handed on as values.
//!
//! - [`config`]: what raises an alert, the `--alert-*` option values.
//! - [`engine`]: [`AlertEngine::observe`] turns each snapshot into alerts and decides
//!   when a condition starts, is reminded of and ends.
//! - [`alert`]: the [`Alert`] value, its line of text for stderr and its record for the
//!   log (the wire format is `schema::AlertRecord`).
//! - [`flood`]: [`FloodDetector`] reads each interval's new-flow rate and what carries
//!   it, in one pass, for the engine's `flood` condition.
//! - [`exec`]: [`AlertExec`] runs `--alert-exec CMD` with the alert's JSON line on
//!   stdin, in the background, and reports its failures as values.
//!
//! `commands/log.rs` drives them: engine → stderr, log, exec.

pub mod alert;
pub mod config;
pub mod engine;
pub mod exec;
pub mod flood;
#[cfg(test)]
mod tests;

pub use self::{
    alert::{Alert, AlertKind, Direction, Phase},
    config::{
        AlertConfig, DEFAULT_CLEAR, DEFAULT_FOREIGN_BYTES, DEFAULT_MAX_STARTS, DEFAULT_REPEAT,
        RateLimit, RateLimitError,
    },
    engine::{AlertEngine, AlertWarning},
    exec::{AlertExec, ExecReport},
    flood::{DEFAULT_FLOOD_FLOWS_PER_S, FloodDetector},
};
pub use crate::sinks::schema::{ALERT_TYPE, AlertRecord};
