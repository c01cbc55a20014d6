//! The clock seam of the sinks: the wall clock and the monotonic clock, read together
//! ([`Moment`]). The wall clock only labels lines (`ts`, `start`, `end`, `since`); every
//! duration and rate is measured on the monotonic clock (a [`Snapshot`]'s `interval`,
//! the gap between two moments), so a step of the wall clock (NTP, an administrator)
//! neither stretches nor shrinks one. `commands/log.rs` reads the clocks
//! ([`Moment::now`]); tests make moments of their own and step the wall clock.
//!
//! [`Snapshot`]: crate::datapath::Snapshot

use std::time::{Duration, Instant, SystemTime};

/// Both clocks at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    /// What the wall clock said: for labels only.
    pub wall: SystemTime,
    /// For lengths of time.
    pub monotonic: Instant,
}

impl Moment {
    pub fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            monotonic: Instant::now(),
        }
    }

    /// The real time from `earlier` to this moment (zero if `earlier` is later).
    pub fn since(&self, earlier: &Moment) -> Duration {
        self.monotonic.saturating_duration_since(earlier.monotonic)
    }
}

/// The wall-clock label of the beginning of a span that lasted `length` (real time) and
/// ended at `end` (as the wall clock said then): `end - length`, so that the two labels
/// are always `length` apart, even when the wall clock was stepped during the span.
pub fn began(end: SystemTime, length: Duration) -> SystemTime {
    end.checked_sub(length).unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
