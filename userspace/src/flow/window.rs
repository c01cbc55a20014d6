//! Which past intervals count towards the 2, 10 and 40 s windows, and by how much.
//!
//! Every snapshot becomes one slot on a timeline measured by the snapshots' own interval
//! lengths. A window holds the slots wholly inside it plus at most one slot that straddles
//! its start; that slot counts in proportion to the part of it inside the window, as if
//! its traffic were spread evenly over its interval. Each series (a flow, an interface)
//! keeps running sums per window, so reading a rate costs the same whatever the interval
//! length, and an ingest touches only the entries of the slots whose place changes.

use std::{
    collections::VecDeque,
    ops::{AddAssign, SubAssign},
    time::Duration,
};

use crate::shrink;

/// The windows rates are averaged over, shortest first.
pub const WINDOWS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(40),
];

/// The index of the 2 s window, the one peaks are taken from.
pub(super) const SHORTEST: usize = 0;

/// Received and sent amounts (bytes or packets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct RxTx {
    pub rx: u64,
    pub tx: u64,
}

impl RxTx {
    pub const ZERO: Self = Self { rx: 0, tx: 0 };
}

impl AddAssign for RxTx {
    fn add_assign(&mut self, other: Self) {
        self.rx += other.rx;
        self.tx += other.tx;
    }
}

impl SubAssign for RxTx {
    fn sub_assign(&mut self, other: Self) {
        self.rx -= other.rx;
        self.tx -= other.tx;
    }
}

/// Bytes in a window once the straddling slot is prorated, so no longer whole.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct RxTxF {
    pub rx: f64,
    pub tx: f64,
}

impl RxTxF {
    pub fn is_zero(&self) -> bool {
        self.rx == 0.0 && self.tx == 0.0
    }
}

impl AddAssign for RxTxF {
    fn add_assign(&mut self, other: Self) {
        self.rx += other.rx;
        self.tx += other.tx;
    }
}

/// How to turn one window's bytes into a rate at the current end of the timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Scale {
    /// The share of the straddling slot that lies inside the window (0 when none does).
    pub straddling_share: f64,
    /// What the bytes are divided by: the window's length, or the time elapsed since the
    /// first snapshot while that is shorter.
    pub seconds: f64,
}

impl Scale {
    pub fn rate(&self, bytes: f64) -> f64 {
        if self.seconds > 0.0 {
            bytes / self.seconds
        } else {
            0.0
        }
    }
}

pub(super) type Scales = [Scale; WINDOWS.len()];

/// What happens to a slot's bytes in one window as the window's start moves past it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// The window's start now falls inside the slot: its bytes start being prorated.
    Straddle,
    /// The slot is now wholly before the window's start.
    Leave,
}

/// One window's running sums for one series.
#[derive(Clone, Copy, Debug, Default)]
struct WindowSum {
    /// Bytes of the slots wholly inside the window.
    inside: RxTx,
    /// Bytes of the slot the window's start falls in.
    straddling: RxTx,
}

impl WindowSum {
    fn apply(&mut self, change: Change, bytes: RxTx) {
        match change {
            Change::Straddle => {
                self.inside -= bytes;
                self.straddling += bytes;
            }
            Change::Leave => self.straddling -= bytes,
        }
    }

    fn bytes(&self, scale: &Scale) -> RxTxF {
        let share = scale.straddling_share;
        RxTxF {
            rx: self.inside.rx as f64 + share * self.straddling.rx as f64,
            tx: self.inside.tx as f64 + share * self.straddling.tx as f64,
        }
    }
}

/// Running sums of one series (an interface, all interfaces) over each window.
#[derive(Clone, Debug, Default)]
pub(super) struct Windowed([WindowSum; WINDOWS.len()]);

impl Windowed {
    /// Counts the newest slot's bytes, which are inside every window.
    pub fn add(&mut self, bytes: RxTx) {
        for sum in &mut self.0 {
            sum.inside += bytes;
        }
    }

    pub fn apply(&mut self, window: usize, change: Change, bytes: RxTx) {
        self.0[window].apply(change, bytes);
    }

    /// The bytes in `window`, the straddling slot prorated.
    pub fn bytes(&self, window: usize, scale: &Scale) -> RxTxF {
        self.0[window].bytes(scale)
    }
}

/// Running sums of many series (the flows, by index) over each window, one array per
/// window: moving a window's start then walks one dense array, not every flow's record,
/// which is what keeps an ingest of 100k flows within the caches.
#[derive(Debug, Default)]
pub(super) struct WindowTable([Vec<WindowSum>; WINDOWS.len()]);

impl WindowTable {
    /// Gives `series` empty sums, growing the table if needed (a reused index starts
    /// afresh).
    pub fn reset(&mut self, series: u32) {
        let series = series as usize;
        for sums in &mut self.0 {
            if sums.len() <= series {
                sums.resize(series + 1, WindowSum::default());
            }
            sums[series] = WindowSum::default();
        }
    }

    /// Forgets the series from `bound` on (no longer any flow's), giving back their room.
    pub fn truncate(&mut self, bound: usize) {
        for sums in &mut self.0 {
            sums.truncate(bound);
            shrink::to_live(sums);
        }
    }

    /// Counts the newest slot's bytes, which are inside every window.
    pub fn add(&mut self, series: u32, bytes: RxTx) {
        for sums in &mut self.0 {
            sums[series as usize].inside += bytes;
        }
    }

    pub fn apply(&mut self, window: usize, change: Change, series: u32, bytes: RxTx) {
        self.0[window][series as usize].apply(change, bytes);
    }

    /// The bytes of `series` in `window`, the straddling slot prorated.
    pub fn bytes(&self, window: usize, series: u32, scale: &Scale) -> RxTxF {
        self.0[window][series as usize].bytes(scale)
    }

    pub fn all_bytes(&self, series: u32, scales: &Scales) -> [RxTxF; WINDOWS.len()] {
        std::array::from_fn(|window| self.bytes(window, series, &scales[window]))
    }
}

/// One flow's bytes in one slot. The amounts are u32 to keep 40 s of history small; a
/// larger amount is split over several entries of the same flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FlowEntry {
    pub flow: u32,
    rx: u32,
    tx: u32,
}

impl FlowEntry {
    pub fn bytes(&self) -> RxTx {
        RxTx {
            rx: self.rx.into(),
            tx: self.tx.into(),
        }
    }
}

/// One snapshot on the timeline: how long it lasted and who moved how much in it.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// Time since the start of the first snapshot, at the end of this one.
    pub end: Duration,
    pub length: Duration,
    pub flows: Vec<FlowEntry>,
    /// Interface (index into the aggregator's interfaces) and its bytes.
    pub interfaces: Vec<(u32, RxTx)>,
    pub all: RxTx,
}

impl Slot {
    fn start(&self) -> Duration {
        self.end - self.length
    }

    pub fn push_flow(&mut self, flow: u32, mut bytes: RxTx) {
        while bytes != RxTx::ZERO {
            let rx = bytes.rx.min(u32::MAX.into()) as u32;
            let tx = bytes.tx.min(u32::MAX.into()) as u32;
            self.flows.push(FlowEntry { flow, rx, tx });
            bytes -= RxTx {
                rx: rx.into(),
                tx: tx.into(),
            };
        }
    }
}

/// Where one window starts on the timeline, as slot sequence numbers.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    first_inside: u64,
    straddling: Option<u64>,
}

/// The slots still inside the longest window, and where each window starts.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    elapsed: Duration,
    slots: VecDeque<Slot>,
    /// The sequence number of `slots[0]`.
    front: u64,
    cursors: [Cursor; WINDOWS.len()],
    /// Buffers of dropped slots, reused so that a steady state allocates nothing.
    spare: Vec<Slot>,
}

impl Timeline {
    /// The sum of all intervals so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// An empty slot for the next `interval`; fill it, then [`push`](Self::push) it.
    pub fn begin(&mut self, interval: Duration) -> Slot {
        let mut slot = self.spare.pop().unwrap_or_default();
        slot.end = self.elapsed + interval;
        slot.length = interval;
        slot
    }

    /// Appends `slot`, whose bytes the caller has already added to every window of its
    /// meters, then moves each window's start forward, calling `apply` for every slot
    /// whose place in a window changes so the caller updates the same meters.
    pub fn push(&mut self, slot: Slot, mut apply: impl FnMut(usize, Change, &Slot)) {
        self.elapsed = slot.end;
        self.slots.push_back(slot);
        let next = self.front + self.slots.len() as u64;
        let at = |seq: u64| (seq - self.front) as usize;
        for (window, length) in WINDOWS.iter().enumerate() {
            let start = self.elapsed.saturating_sub(*length);
            let cursor = &mut self.cursors[window];
            while cursor.first_inside < next {
                let slot = &self.slots[at(cursor.first_inside)];
                if slot.start() >= start {
                    break;
                }
                // Only one slot straddles at a time: the previous one is now wholly out.
                if let Some(old) = cursor.straddling {
                    apply(window, Change::Leave, &self.slots[at(old)]);
                }
                apply(window, Change::Straddle, slot);
                cursor.straddling = Some(cursor.first_inside);
                cursor.first_inside += 1;
            }
            if let Some(seq) = cursor.straddling
                && self.slots[at(seq)].end <= start
            {
                apply(window, Change::Leave, &self.slots[at(seq)]);
                cursor.straddling = None;
            }
        }
        self.drop_unheld();
    }

    /// Forgets slots that no window holds any more, keeping a couple of their buffers.
    fn drop_unheld(&mut self) {
        let oldest_held = self
            .cursors
            .iter()
            .map(|cursor| cursor.straddling.unwrap_or(cursor.first_inside))
            .min()
            .unwrap_or(self.front);
        while self.front < oldest_held {
            let mut slot = self.slots.pop_front().expect("a held slot");
            self.front += 1;
            if self.spare.len() < 2 {
                // A flood's slot is not kept at a flood's size once the flood is over.
                shrink::to_live(&mut slot.flows);
                slot.flows.clear();
                slot.interfaces.clear();
                slot.all = RxTx::ZERO;
                self.spare.push(slot);
            }
        }
    }

    /// Removes the history entries of flows about to be forgotten while still inside a
    /// window, so their indices can be reused.
    pub fn remove_flows(&mut self, forgotten: impl Fn(u32) -> bool) {
        for slot in &mut self.slots {
            slot.flows.retain(|entry| !forgotten(entry.flow));
        }
    }

    /// How to read each window now.
    pub fn scales(&self) -> Scales {
        std::array::from_fn(|window| {
            let start = self.elapsed.saturating_sub(WINDOWS[window]);
            let straddling_share = match self.cursors[window].straddling {
                // A straddling slot starts before `start` and ends after it: never empty.
                Some(seq) => {
                    let slot = &self.slots[(seq - self.front) as usize];
                    (slot.end - start).as_secs_f64() / slot.length.as_secs_f64()
                }
                None => 0.0,
            };
            Scale {
                straddling_share,
                seconds: WINDOWS[window].min(self.elapsed).as_secs_f64(),
            }
        })
    }

    /// How many slots are kept (for tests of the memory bound).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}
