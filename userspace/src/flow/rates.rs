//! What a line shows: rates, cumulative and peak per direction, and the columns to sort by.

use super::window::{RxTx, RxTxF, Scales, WINDOWS};

/// One direction's numbers for a line. Rates are in bytes/s, amounts in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Average over the last 2 s.
    pub last2: f64,
    /// Average over the last 10 s.
    pub last10: f64,
    /// Average over the last 40 s.
    pub last40: f64,
    /// Bytes since the start (of the aggregator, or of the line's first flow).
    pub cum: u64,
    /// Packets since the start, as for `cum`.
    pub cum_packets: u64,
    /// The highest 2 s rate seen, sampled at the end of each snapshot.
    pub peak: f64,
}

impl Rates {
    pub fn get(&self, column: Column) -> f64 {
        match column {
            Column::Last2 => self.last2,
            Column::Last10 => self.last10,
            Column::Last40 => self.last40,
            // Exact below 2^53 bytes (8 PiB).
            Column::Cum => self.cum as f64,
            Column::Peak => self.peak,
        }
    }
}

/// Sent, received, and both together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub tx: Rates,
    pub rx: Rates,
    /// `rx + tx`, except `peak`: the highest 2 s rate of both together.
    pub total: Rates,
}

impl Totals {
    pub fn get(&self, direction: Direction) -> &Rates {
        match direction {
            Direction::Tx => &self.tx,
            Direction::Rx => &self.rx,
            Direction::Total => &self.total,
        }
    }

    pub fn value(&self, sort: SortBy) -> f64 {
        self.get(sort.direction).get(sort.column)
    }

    /// Builds the lines' numbers from bytes in each window (prorated), the cumulative
    /// amounts and the peak.
    pub(super) fn new(
        window_bytes: [RxTxF; WINDOWS.len()],
        scales: &Scales,
        bytes: RxTx,
        packets: RxTx,
        peak: Peak,
    ) -> Self {
        let rate = |window: usize, pick: fn(&RxTxF) -> f64| {
            scales[window].rate(pick(&window_bytes[window]))
        };
        let rates = |pick: fn(&RxTxF) -> f64, cum: u64, cum_packets: u64, peak: f64| Rates {
            last2: rate(0, pick),
            last10: rate(1, pick),
            last40: rate(2, pick),
            cum,
            cum_packets,
            peak,
        };
        Self {
            tx: rates(|b| b.tx, bytes.tx, packets.tx, peak.tx),
            rx: rates(|b| b.rx, bytes.rx, packets.rx, peak.rx),
            total: rates(
                |b| b.rx + b.tx,
                bytes.rx + bytes.tx,
                packets.rx + packets.tx,
                peak.total,
            ),
        }
    }
}

/// The highest 2 s rates seen (bytes/s).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Peak {
    pub rx: f64,
    pub tx: f64,
    pub total: f64,
}

impl Peak {
    pub fn raise(&mut self, rx: f64, tx: f64) {
        self.rx = self.rx.max(rx);
        self.tx = self.tx.max(tx);
        self.total = self.total.max(rx + tx);
    }

    pub fn max(self, other: Peak) -> Peak {
        Peak {
            rx: self.rx.max(other.rx),
            tx: self.tx.max(other.tx),
            total: self.total.max(other.total),
        }
    }
}

/// A direction column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    Tx,
    Rx,
    #[default]
    Total,
}

/// A measure column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Column {
    #[default]
    Last2,
    Last10,
    Last40,
    Cum,
    Peak,
}

impl Column {
    pub const ALL: [Column; 5] = [
        Column::Last2,
        Column::Last10,
        Column::Last40,
        Column::Cum,
        Column::Peak,
    ];
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Tx, Direction::Rx, Direction::Total];
}

/// The column lines are sorted by, highest first. The default is iftop's: total, 2 s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SortBy {
    pub direction: Direction,
    pub column: Column,
}
