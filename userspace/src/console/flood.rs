//! The console's flood banner: the same detector as `log`'s `flood` alert
//! (`sinks::alerts::flood`), read once per interval, and one line above the hosts that
//! says what carries the flood while it lasts and a few seconds after.
//!
//! A flood is the moment a user opens the console; its rows are thousands of one-packet
//! flows, or none at all when the kernel's new-flow budget counts them by source prefix.
//! Either way the banner names the prefixes and ports, with rates, within an interval.

use std::time::Duration;

use crate::{
    enrich::EnrichedSnapshot,
    sinks::alerts::flood::{DEFAULT_FLOOD_FLOWS_PER_S, FloodDetector, FloodReading},
    units,
};

/// How long the banner stays after the last interval over the threshold, so that a
/// flood in bursts does not blink.
pub const LINGER: Duration = Duration::from_secs(5);

struct Held {
    reading: FloodReading,
    interval: Duration,
    at: Duration,
}

/// The flood detector and what it read last over the threshold.
#[derive(Default)]
pub struct FloodWatch {
    detector: FloodDetector,
    /// The latest reading that held, with its interval's length and the metered time
    /// at its end.
    held: Option<Held>,
    /// The metered time at the end of the latest interval read.
    now: Duration,
}

impl FloodWatch {
    /// Reads one interval; `elapsed`: metered time at its end.
    pub fn observe(&mut self, interval: &EnrichedSnapshot, elapsed: Duration) {
        let reading = self.detector.read(interval, DEFAULT_FLOOD_FLOWS_PER_S);
        self.now = elapsed;
        if reading.holds() {
            self.held = Some(Held {
                reading,
                interval: interval.snapshot().interval,
                at: elapsed,
            });
        }
    }

    /// Two lines while a flood holds or lingers: "FLOOD 150k new flows/s on eth0,
    /// 150k pkt/s, 76.8 Mbit/s; to udp/53 (150k pkt/s, 76.8 Mbit/s)" and "from
    /// 198.51.100.0/24 (100k pkt/s, 51.2 Mbit/s), ...". Ports are few and come first,
    /// so that an 80-column screen shows them whole.
    pub fn banner(&self) -> Option<[String; 2]> {
        let Held {
            reading,
            interval,
            at,
        } = self.held.as_ref()?;
        let ago = self.now.saturating_sub(*at);
        if ago > LINGER {
            return None;
        }
        let figures = &reading.figures;
        let on = reading
            .iface
            .as_ref()
            .map(|iface| format!(" on {iface}"))
            .unwrap_or_default();
        let ended = if ago.is_zero() {
            String::new()
        } else {
            format!(" (over {}s ago)", ago.as_secs())
        };
        let seconds = interval.as_secs_f64().max(f64::EPSILON);
        let headline = format!(
            "FLOOD{ended} {} new flows/s{on}, {}, {}{}",
            units::compact(figures.new_flows_per_s as f64, ""),
            units::compact(figures.packets as f64 / seconds, " pkt/s"),
            units::bits_per_second(reading.rate_bps),
            figures.ports(true),
        );
        let sources = figures.sources(true).to_string();
        // "; from ...": the sentence goes on from the headline.
        let sources = sources.trim_start_matches("; ").to_owned();
        Some([headline, sources])
    }
}
