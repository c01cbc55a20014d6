//! Summaries: how each interface's rate spread over a period, so a log answers "was it
//! saturated all hour or for one minute?" and "does the link need an upgrade?".
//!
//! Every interval's rx and tx rates (bits/s) go into an HDR histogram per interface, as
//! does the program's own cycle time (µs per read + enrich + write). The caller decides
//! when a period ends (every `--summary SECS`, and once more at exit) and calls
//! [`Summaries::take`], which returns one [`SummaryRecord`] per interface plus one for the
//! cycle time, and starts the next period. Percentiles are exact to 3 significant
//! figures; maxima, byte and packet totals are exact. A period's length is real time
//! (monotonic, between two [`Moment`]s): its `end` is what the wall clock said, its
//! `start` that less the length, so a wall-clock step stretches no period.
//! [`SummaryRecord::wire`] fills in the `summary` line of `schema::summary`, which
//! `LogSink` writes.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use hdrhistogram::Histogram;

use super::{
    moment::{self, Moment},
    schema,
};

/// `--summary` when not given.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// Histogram precision: a percentile is within 0.1% of the true value.
const SIGNIFICANT_FIGURES: u8 = 3;

/// The rates and cycle times of the current period.
pub struct Summaries {
    /// Where the current period began: the previous `take`, or the start.
    start: Moment,
    /// In the order the interfaces were first seen.
    interfaces: Vec<InterfaceSeries>,
    /// µs per cycle.
    cycles: Series,
}

impl Summaries {
    /// Starts the first period at `start` (when metering began).
    pub fn new(start: Moment) -> Self {
        Self {
            start,
            interfaces: Vec::new(),
            cycles: Series::new(),
        }
    }

    /// The interface's link speed in bits/s, when known (`None` or 0: unknown). Summaries
    /// then also give each rate percentile as a percentage of the link.
    pub fn set_link_speed(&mut self, iface: &str, bps: Option<u64>) {
        self.series(iface).link_bps = bps.filter(|&bps| bps > 0);
    }

    /// Records one interval: each interface's rx and tx rates and its byte and packet
    /// counts. An interval of zero length adds its counts but no rate.
    pub fn record_interval(&mut self, snapshot: &crate::datapath::Snapshot) {
        for totals in &snapshot.interfaces {
            let series = self.series(&totals.iface);
            series
                .rx
                .add(totals.rx.bytes, totals.rx.packets, snapshot.interval);
            series
                .tx
                .add(totals.tx.bytes, totals.tx.packets, snapshot.interval);
            if !snapshot.interval.is_zero() {
                series.intervals += 1;
                series.covered += snapshot.interval;
            }
        }
    }

    /// Records how long one cycle (read + enrich + write) took.
    pub fn record_cycle(&mut self, cycle: Duration) {
        self.cycles
            .record(u64::try_from(cycle.as_micros()).unwrap_or(u64::MAX));
    }

    /// Ends the period at `at`: one record per interface that had at least one interval,
    /// then one for the cycle time if any cycle was recorded (so an empty period gives an
    /// empty vector). Everything is reset and the next period starts at `at`.
    pub fn take(&mut self, at: Moment) -> Vec<SummaryRecord> {
        let began = std::mem::replace(&mut self.start, at);
        let (start, at) = (moment::began(at.wall, at.since(&began)), at.wall);
        let mut records: Vec<SummaryRecord> = self
            .interfaces
            .iter_mut()
            .filter_map(|series| series.take(start, at))
            .map(SummaryRecord::Interface)
            .collect();
        if let Some(us) = self.cycles.percentiles() {
            records.push(SummaryRecord::Cycle(CycleSummary {
                start,
                end: at,
                cycles: self.cycles.len(),
                us,
            }));
        }
        self.cycles.reset();
        records
    }

    fn series(&mut self, iface: &str) -> &mut InterfaceSeries {
        let index = match self.interfaces.iter().position(|s| &*s.iface == iface) {
            Some(index) => index,
            None => {
                self.interfaces.push(InterfaceSeries::new(Arc::from(iface)));
                self.interfaces.len() - 1
            }
        };
        &mut self.interfaces[index]
    }
}

/// One period's summary.
#[derive(Clone, Debug, PartialEq)]
pub enum SummaryRecord {
    Interface(InterfaceSummary),
    Cycle(CycleSummary),
}

impl SummaryRecord {
    /// The wire form, to be written as a `type: "summary"` line.
    pub fn wire(&self) -> schema::Summary<'_> {
        match self {
            Self::Interface(summary) => schema::Summary::Interface(wire::interface(summary)),
            Self::Cycle(summary) => schema::Summary::Cycle(wire::cycle(summary)),
        }
    }
}

/// An interface's rates over one period.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceSummary {
    pub iface: Arc<str>,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Intervals recorded in the period (each one rate sample per direction).
    pub intervals: u64,
    /// The link speed, bits/s, when known.
    pub link_bps: Option<u64>,
    pub rx: DirectionSummary,
    pub tx: DirectionSummary,
}

/// One direction of an interface over one period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectionSummary {
    /// The spread of the per-interval rates, bits/s.
    pub bps: Percentiles,
    /// Bytes over the time the intervals covered, bits/s: exact.
    pub mean_bps: u64,
    pub bytes: u64,
    pub packets: u64,
}

/// The program's own cycle time over one period.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleSummary {
    pub start: SystemTime,
    pub end: SystemTime,
    pub cycles: u64,
    /// Microseconds.
    pub us: Percentiles,
}

/// Percentiles to 3 significant figures (never above `max`); `max` exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// A histogram and the exact maximum of what it holds.
struct Series {
    histogram: Histogram<u64>,
    max: u64,
}

impl Series {
    fn new() -> Self {
        Self {
            histogram: Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is valid"),
            max: 0,
        }
    }

    fn record(&mut self, value: u64) {
        // The histogram grows as needed up to i64::MAX / 2; clamp anything above.
        if self.histogram.record(value).is_err() {
            self.histogram.saturating_record(value);
        }
        self.max = self.max.max(value);
    }

    fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// `None` when nothing was recorded.
    fn percentiles(&self) -> Option<Percentiles> {
        if self.histogram.is_empty() {
            return None;
        }
        // A percentile is the highest value equivalent to its bucket: keep it under the max.
        let at = |quantile| self.histogram.value_at_quantile(quantile).min(self.max);
        Some(Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: self.max,
        })
    }

    fn reset(&mut self) {
        self.histogram.reset();
        self.max = 0;
    }
}

struct InterfaceSeries {
    iface: Arc<str>,
    link_bps: Option<u64>,
    intervals: u64,
    /// The summed length of the recorded intervals.
    covered: Duration,
    rx: DirectionSeries,
    tx: DirectionSeries,
}

impl InterfaceSeries {
    fn new(iface: Arc<str>) -> Self {
        Self {
            iface,
            link_bps: None,
            intervals: 0,
            covered: Duration::ZERO,
            rx: DirectionSeries::new(),
            tx: DirectionSeries::new(),
        }
    }

    /// The period's summary (`None` without intervals), and a reset.
    fn take(&mut self, start: SystemTime, end: SystemTime) -> Option<InterfaceSummary> {
        let rx = self.rx.summary(self.covered);
        let tx = self.tx.summary(self.covered);
        let summary = rx.zip(tx).map(|(rx, tx)| InterfaceSummary {
            iface: self.iface.clone(),
            start,
            end,
            intervals: self.intervals,
            link_bps: self.link_bps,
            rx,
            tx,
        });
        self.intervals = 0;
        self.covered = Duration::ZERO;
        self.rx.reset();
        self.tx.reset();
        summary
    }
}

struct DirectionSeries {
    bps: Series,
    bytes: u64,
    packets: u64,
}

impl DirectionSeries {
    fn new() -> Self {
        Self {
            bps: Series::new(),
            bytes: 0,
            packets: 0,
        }
    }

    fn add(&mut self, bytes: u64, packets: u64, interval: Duration) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(packets);
        if !interval.is_zero() {
            self.bps.record(bits_per_second(bytes, interval));
        }
    }

    fn summary(&self, covered: Duration) -> Option<DirectionSummary> {
        Some(DirectionSummary {
            bps: self.bps.percentiles()?,
            mean_bps: bits_per_second(self.bytes, covered),
            bytes: self.bytes,
            packets: self.packets,
        })
    }

    fn reset(&mut self) {
        self.bps.reset();
        self.bytes = 0;
        self.packets = 0;
    }
}

/// `bytes` over `time` in bits/s, rounded down; 0 for no time.
fn bits_per_second(bytes: u64, time: Duration) -> u64 {
    let nanos = time.as_nanos();
    if nanos == 0 {
        return 0;
    }
    let bps = u128::from(bytes) * 8 * 1_000_000_000 / nanos;
    u64::try_from(bps).unwrap_or(u64::MAX)
}

/// The `summary` records on the wire (see `schema::summary`).
mod wire {
    use std::time::SystemTime;

    use super::{CycleSummary, InterfaceSummary, Percentiles};
    use crate::sinks::schema::{
        summary::{Cycle, Interface, OfLink},
        timestamp,
    };

    pub fn interface(summary: &InterfaceSummary) -> Interface<'_> {
        let (rx, tx) = (&summary.rx, &summary.tx);
        Interface {
            scope: "interface",
            iface: &summary.iface,
            start: timestamp(summary.start),
            end: timestamp(summary.end),
            period_s: seconds(summary.start, summary.end),
            intervals: summary.intervals,
            rx_bytes: rx.bytes,
            rx_packets: rx.packets,
            rx_bps_mean: rx.mean_bps,
            rx_bps_p50: rx.bps.p50,
            rx_bps_p95: rx.bps.p95,
            rx_bps_p99: rx.bps.p99,
            rx_bps_max: rx.bps.max,
            tx_bytes: tx.bytes,
            tx_packets: tx.packets,
            tx_bps_mean: tx.mean_bps,
            tx_bps_p50: tx.bps.p50,
            tx_bps_p95: tx.bps.p95,
            tx_bps_p99: tx.bps.p99,
            tx_bps_max: tx.bps.max,
            link_bps: summary.link_bps,
            of_link: summary.link_bps.map(|link| of_link(&rx.bps, &tx.bps, link)),
        }
    }

    /// Each percentile as a percentage of `link_bps`, rounded to 0.01.
    fn of_link(rx: &Percentiles, tx: &Percentiles, link_bps: u64) -> OfLink {
        let pct = |bps: u64| (bps as f64 * 10_000.0 / link_bps as f64).round() / 100.0;
        OfLink {
            rx_p50_pct_of_link: pct(rx.p50),
            rx_p95_pct_of_link: pct(rx.p95),
            rx_p99_pct_of_link: pct(rx.p99),
            rx_max_pct_of_link: pct(rx.max),
            tx_p50_pct_of_link: pct(tx.p50),
            tx_p95_pct_of_link: pct(tx.p95),
            tx_p99_pct_of_link: pct(tx.p99),
            tx_max_pct_of_link: pct(tx.max),
        }
    }

    pub fn cycle(summary: &CycleSummary) -> Cycle {
        Cycle {
            scope: "cycle",
            start: timestamp(summary.start),
            end: timestamp(summary.end),
            period_s: seconds(summary.start, summary.end),
            cycles: summary.cycles,
            cycle_us_p50: summary.us.p50,
            cycle_us_p95: summary.us.p95,
            cycle_us_p99: summary.us.p99,
            cycle_us_max: summary.us.max,
        }
    }

    /// From `start` to `end` (which `take` puts the period's real length apart).
    fn seconds(start: SystemTime, end: SystemTime) -> f64 {
        end.duration_since(start).unwrap_or_default().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{DirectionTotals, InterfaceTotals, Snapshot};

    const SECOND: Duration = Duration::from_secs(1);

    fn epoch(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// `secs` after the epoch on both clocks (the monotonic one from a base the tests share).
    fn moment(secs: u64) -> Moment {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(std::time::Instant::now);
        Moment {
            wall: epoch(secs),
            monotonic: base + Duration::from_secs(secs),
        }
    }

    /// One interval on `eth0` moving the given rx and tx bytes.
    fn interval(at: u64, length: Duration, rx_bytes: u64, tx_bytes: u64) -> Snapshot {
        let direction = |bytes| DirectionTotals {
            packets: bytes / 1000,
            bytes,
            ..Default::default()
        };
        Snapshot {
            at: epoch(at),
            interval: length,
            flows: vec![],
            interfaces: vec![InterfaceTotals {
                iface: Arc::from("eth0"),
                rx: direction(rx_bytes),
                tx: direction(tx_bytes),
            }],
            overflow: Vec::new(),
        }
    }

    fn interface(record: &SummaryRecord) -> &InterfaceSummary {
        match record {
            SummaryRecord::Interface(summary) => summary,
            other => panic!("expected an interface summary, got {other:?}"),
        }
    }

    /// Within hdrhistogram's 3 significant figures.
    fn assert_close(actual: u64, expected: u64) {
        let tolerance = expected / 1000 + 1;
        assert!(
            actual.abs_diff(expected) <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn percentiles_of_synthetic_rates_are_within_three_significant_figures() {
        let mut summaries = Summaries::new(moment(0));
        // rx: 1..=100 Mbit/s, one step per second; tx: always 2 Mbit/s.
        for second in 1..=100u64 {
            let rx_bytes = second * 1_000_000 / 8;
            summaries.record_interval(&interval(second, SECOND, rx_bytes, 250_000));
        }
        let records = summaries.take(moment(100));
        assert_eq!(records.len(), 1, "no cycle was recorded");
        let eth0 = interface(&records[0]);
        assert_eq!(&*eth0.iface, "eth0");
        assert_eq!((eth0.start, eth0.end), (epoch(0), epoch(100)));
        assert_eq!(eth0.intervals, 100);
        assert_close(eth0.rx.bps.p50, 50_000_000);
        assert_close(eth0.rx.bps.p95, 95_000_000);
        assert_close(eth0.rx.bps.p99, 99_000_000);
        assert_eq!(eth0.rx.bps.max, 100_000_000);
        assert_eq!(
            eth0.rx.bytes,
            (1..=100u64).map(|s| s * 125_000).sum::<u64>()
        );
        assert_eq!(eth0.rx.mean_bps, 50_500_000);
        assert_eq!(eth0.tx.bps.max, 2_000_000);
        assert!(eth0.tx.bps.p50 <= 2_000_000 && eth0.tx.bps.p50 >= 1_998_000);
        assert_eq!(eth0.tx.packets, 100 * 250);
    }

    #[test]
    fn one_busy_minute_shows_in_the_max_not_in_the_median() {
        let mut summaries = Summaries::new(moment(0));
        summaries.set_link_speed("eth0", Some(1_000_000_000));
        // An hour at 10% of a 1 Gbit/s link, with one minute at line rate.
        for minute in 1..=60u64 {
            let bps = if minute == 30 {
                1_000_000_000
            } else {
                100_000_000
            };
            summaries.record_interval(&interval(minute * 60, 60 * SECOND, bps / 8 * 60, 0));
        }
        let records = summaries.take(moment(3600));
        let eth0 = interface(&records[0]);
        assert_eq!(eth0.link_bps, Some(1_000_000_000));
        assert_close(eth0.rx.bps.p50, 100_000_000);
        assert_close(eth0.rx.bps.p95, 100_000_000);
        assert_eq!(eth0.rx.bps.max, 1_000_000_000);

        let line = serde_json::to_value(records[0].wire()).unwrap();
        assert_eq!(line["scope"], "interface");
        assert_eq!(line["iface"], "eth0");
        assert_eq!(line["start"], "1970-01-01T00:00:00.000Z");
        assert_eq!(line["end"], "1970-01-01T01:00:00.000Z");
        assert_eq!(line["period_s"], 3600.0);
        assert_eq!(line["intervals"], 60);
        assert_eq!(line["rx_bps_max"], 1_000_000_000u64);
        assert_eq!(line["link_bps"], 1_000_000_000u64);
        assert_eq!(line["rx_max_pct_of_link"], 100.0);
        let p95 = line["rx_p95_pct_of_link"].as_f64().unwrap();
        assert!((9.99..=10.01).contains(&p95), "{p95}");
        assert_eq!(line["tx_bps_p99"], 0);
        assert_eq!(line["tx_p99_pct_of_link"], 0.0);
    }

    #[test]
    fn without_a_link_speed_there_are_no_link_fields() {
        let mut summaries = Summaries::new(moment(0));
        summaries.set_link_speed("eth0", Some(0));
        summaries.record_interval(&interval(1, SECOND, 1000, 1000));
        let records = summaries.take(moment(1));
        let line = serde_json::to_value(records[0].wire()).unwrap();
        let fields = line.as_object().unwrap();
        assert!(fields.keys().all(|key| !key.contains("link")), "{line}");
        assert_eq!(line["rx_bps_p50"], 8000);
    }

    #[test]
    fn cycle_time_percentiles_in_microseconds() {
        let mut summaries = Summaries::new(moment(0));
        for us in 1..=1000u64 {
            summaries.record_cycle(Duration::from_micros(us));
        }
        let records = summaries.take(moment(60));
        let [SummaryRecord::Cycle(cycle)] = records.as_slice() else {
            panic!("expected only a cycle summary: {records:?}");
        };
        assert_eq!(cycle.cycles, 1000);
        assert_eq!(cycle.us.p50, 500);
        assert_eq!(cycle.us.p95, 950);
        assert_eq!(cycle.us.p99, 990);
        assert_eq!(cycle.us.max, 1000);
        let line = serde_json::to_value(records[0].wire()).unwrap();
        assert_eq!(line["scope"], "cycle");
        assert_eq!(line["cycles"], 1000);
        assert_eq!(line["cycle_us_p95"], 950);
        assert_eq!(line["cycle_us_max"], 1000);
        assert_eq!(line["period_s"], 60.0);
    }

    #[test]
    fn take_resets_and_the_next_period_starts_where_the_last_ended() {
        let mut summaries = Summaries::new(moment(0));
        summaries.record_interval(&interval(1, SECOND, 1_000_000, 0));
        summaries.record_cycle(Duration::from_millis(5));
        assert_eq!(summaries.take(moment(60)).len(), 2);

        summaries.record_interval(&interval(61, SECOND, 1000, 0));
        summaries.record_cycle(Duration::from_micros(7));
        let records = summaries.take(moment(120));
        let eth0 = interface(&records[0]);
        assert_eq!((eth0.start, eth0.end), (epoch(60), epoch(120)));
        assert_eq!(eth0.intervals, 1);
        assert_eq!(eth0.rx.bytes, 1000);
        assert_eq!(eth0.rx.bps.max, 8000);
        assert_eq!(eth0.rx.bps.p50, 8000);
        let SummaryRecord::Cycle(cycle) = &records[1] else {
            panic!("expected a cycle summary: {records:?}");
        };
        assert_eq!((cycle.cycles, cycle.us.max, cycle.us.p99), (1, 7, 7));
    }

    #[test]
    fn an_empty_period_gives_no_records() {
        let mut summaries = Summaries::new(moment(0));
        summaries.set_link_speed("eth0", Some(1_000_000_000));
        assert!(summaries.take(moment(60)).is_empty());

        summaries.record_interval(&interval(61, SECOND, 1000, 0));
        assert_eq!(summaries.take(moment(120)).len(), 1);
        assert!(summaries.take(moment(180)).is_empty());
    }

    #[test]
    fn a_zero_length_interval_adds_bytes_but_no_rate() {
        let mut summaries = Summaries::new(moment(0));
        summaries.record_interval(&interval(1, Duration::ZERO, 500, 0));
        assert!(summaries.take(moment(1)).is_empty());

        summaries.record_interval(&interval(2, Duration::ZERO, 500, 0));
        summaries.record_interval(&interval(3, SECOND, 1000, 0));
        let records = summaries.take(moment(3));
        let eth0 = interface(&records[0]);
        assert_eq!(eth0.intervals, 1);
        assert_eq!(eth0.rx.bytes, 1500);
        assert_eq!(eth0.rx.bps.max, 8000);
    }

    #[test]
    fn rates_from_bytes_and_real_interval_length() {
        assert_eq!(bits_per_second(125_000, SECOND), 1_000_000);
        assert_eq!(
            bits_per_second(125_000, Duration::from_millis(500)),
            2_000_000
        );
        assert_eq!(bits_per_second(1, Duration::ZERO), 0);
        assert_eq!(bits_per_second(u64::MAX, Duration::from_nanos(1)), u64::MAX);
    }

    #[test]
    fn summary_lines_are_pinned_byte_for_byte() {
        let mut summaries = Summaries::new(moment(0));
        summaries.set_link_speed("eth0", Some(1_000_000_000));
        summaries.record_interval(&interval(1, SECOND, 1_250_000, 125_000));
        summaries.record_interval(&interval(2, SECOND, 2_500_000, 0));
        summaries.record_cycle(Duration::from_micros(250));
        let records = summaries.take(moment(2));
        let lines: Vec<String> = records
            .iter()
            .map(|record| serde_json::to_string(&record.wire()).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                r#"{"scope":"interface","iface":"eth0","start":"1970-01-01T00:00:00.000Z","end":"1970-01-01T00:00:02.000Z","period_s":2.0,"intervals":2,"rx_bytes":3750000,"rx_packets":3750,"rx_bps_mean":15000000,"rx_bps_p50":10002431,"rx_bps_p95":20000000,"rx_bps_p99":20000000,"rx_bps_max":20000000,"tx_bytes":125000,"tx_packets":125,"tx_bps_mean":500000,"tx_bps_p50":0,"tx_bps_p95":1000000,"tx_bps_p99":1000000,"tx_bps_max":1000000,"link_bps":1000000000,"rx_p50_pct_of_link":1.0,"rx_p95_pct_of_link":2.0,"rx_p99_pct_of_link":2.0,"rx_max_pct_of_link":2.0,"tx_p50_pct_of_link":0.0,"tx_p95_pct_of_link":0.1,"tx_p99_pct_of_link":0.1,"tx_max_pct_of_link":0.1}"#,
                r#"{"scope":"cycle","start":"1970-01-01T00:00:00.000Z","end":"1970-01-01T00:00:02.000Z","period_s":2.0,"cycles":1,"cycle_us_p50":250,"cycle_us_p95":250,"cycle_us_p99":250,"cycle_us_max":250}"#,
            ]
        );
    }
}
