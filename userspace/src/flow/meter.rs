//! The counters behind one line of numbers: a flow, an interface, all interfaces.

use super::{
    rates::{Peak, Totals},
    window::{RxTx, RxTxF, SHORTEST, Scales, WINDOWS, Windowed},
};

/// Cumulative amounts and peak of one series; its window sums are kept beside it.
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    pub bytes: RxTx,
    pub packets: RxTx,
    pub peak: Peak,
}

impl Counts {
    pub fn record(&mut self, bytes: RxTx, packets: RxTx) {
        self.bytes += bytes;
        self.packets += packets;
    }

    /// Raises the peak to the rate of `last2`, the bytes now in the 2 s window.
    pub fn raise_peak(&mut self, last2: RxTxF, scales: &Scales) {
        let scale = &scales[SHORTEST];
        self.peak.raise(scale.rate(last2.rx), scale.rate(last2.tx));
    }

    pub fn totals(&self, window_bytes: [RxTxF; WINDOWS.len()], scales: &Scales) -> Totals {
        Totals::new(window_bytes, scales, self.bytes, self.packets, self.peak)
    }
}

/// A series with its own window sums: an interface, or all interfaces.
#[derive(Clone, Debug, Default)]
pub(super) struct Meter {
    pub windows: Windowed,
    pub counts: Counts,
}

impl Meter {
    /// Counts one interval's traffic (also add it to the timeline's newest slot).
    pub fn record(&mut self, bytes: RxTx, packets: RxTx) {
        self.windows.add(bytes);
        self.counts.record(bytes, packets);
    }

    fn window_bytes(&self, scales: &Scales) -> [RxTxF; WINDOWS.len()] {
        std::array::from_fn(|window| self.windows.bytes(window, &scales[window]))
    }

    pub fn raise_peak(&mut self, scales: &Scales) {
        let last2 = self.windows.bytes(SHORTEST, &scales[SHORTEST]);
        self.counts.raise_peak(last2, scales);
    }

    pub fn totals(&self, scales: &Scales) -> Totals {
        self.counts.totals(self.window_bytes(scales), scales)
    }
}
