//! What raises an alert: the `--alert-*` option values ([`AlertConfig`], [`RateLimit`]),
//! which `cli.rs` parses and [`AlertEngine`](super::AlertEngine) applies.

use std::{fmt, str::FromStr, time::Duration};

use super::flood::DEFAULT_FLOOD_FLOWS_PER_S;
use crate::{
    enrich::geo::HomeCountries,
    units::{self, UnitError},
};

/// `--alert-foreign` when not given: 1 MiB per interval.
pub const DEFAULT_FOREIGN_BYTES: u64 = 1 << 20;

/// `--alert-repeat` when not given: 300 s.
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(300);

/// `--alert-clear` when not given: 10 s.
pub const DEFAULT_CLEAR: Duration = Duration::from_secs(10);

/// `--alert-max-starts` when not given: foreign, and suspicious, alerts that may start
/// in one interval.
pub const DEFAULT_MAX_STARTS: usize = 10;

/// What raises an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    /// `--home`: with none declared, nothing is foreign and no foreign alert is raised.
    pub home: HomeCountries,
    /// `--alert-foreign`: more than this many bytes (rx + tx) in one interval to or from
    /// one remote outside the home countries raises an alert. 0 alerts on any.
    pub foreign_bytes: u64,
    /// `--alert-rate`: an interface's rx or tx rate above this raises an alert.
    pub rate: Option<RateLimit>,
    /// `--alert-repeat`: the least metered time between reminders of one condition.
    pub repeat: Duration,
    /// `--alert-clear`: how long a condition must be absent before it ends, so that a
    /// process sending in bursts, or a rate hovering at the limit, is one episode and
    /// not a start and an end every few seconds.
    pub clear: Duration,
    /// `--alert-max-starts`: at most this many foreign and this many suspicious
    /// conditions start with an alert of their own in one interval, the largest by
    /// bytes; the rest are folded (counted in the last alert of their kind).
    pub max_starts: usize,
    /// `--alert-flood`: more new flows per second than this is a flood; 0 turns flood
    /// detection off.
    pub flood_flows_per_s: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            home: HomeCountries::default(),
            foreign_bytes: DEFAULT_FOREIGN_BYTES,
            rate: None,
            repeat: DEFAULT_REPEAT,
            clear: DEFAULT_CLEAR,
            max_starts: DEFAULT_MAX_STARTS,
            flood_flows_per_s: DEFAULT_FLOOD_FLOWS_PER_S,
        }
    }
}

/// An `--alert-rate` value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateLimit {
    /// `BPS`: bits per second.
    BitsPerSecond(u64),
    /// `PCT%`: a share of the interface's link speed, in percent (0 < PCT <= 100).
    PercentOfLink(f64),
}

impl RateLimit {
    /// The limit in bits per second on a link of `link_bps`; `None` for a percentage
    /// when the link speed is unknown.
    pub fn bits_per_second(self, link_bps: Option<u64>) -> Option<f64> {
        match self {
            RateLimit::BitsPerSecond(bps) => Some(bps as f64),
            RateLimit::PercentOfLink(percent) => link_bps.map(|link| link as f64 * percent / 100.0),
        }
    }
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    /// `PCT%` of the link speed (`90%`, [`units::parse_percent`]), or else bits per
    /// second (`800M`, `1.5Gbit/s`, [`units::parse_bits_per_second`]).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(percent) = units::parse_percent(text) {
            return Ok(RateLimit::PercentOfLink(percent?));
        }
        match units::parse_bits_per_second(text) {
            Ok(bps) => Ok(RateLimit::BitsPerSecond(bps)),
            Err(error @ UnitError::BitsPerSecond(_)) => Err(RateLimitError::NotARate(error)),
            Err(error) => Err(error.into()),
        }
    }
}

/// An `--alert-rate` value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// Neither a rate nor a percentage: the message says both are accepted.
    #[error("{0}, or a share of the link speed, e.g. 90%")]
    NotARate(UnitError),
    /// A zero rate, or a percentage that is malformed or out of range.
    #[error(transparent)]
    Invalid(#[from] UnitError),
}

impl fmt::Display for RateLimit {
    /// `800 Mbit/s` or `90% of the link speed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::BitsPerSecond(bps) => f.write_str(&units::bits_per_second(*bps)),
            RateLimit::PercentOfLink(percent) => write!(f, "{percent}% of the link speed"),
        }
    }
}
