//! The ring: the last `--record-window` of seconds, each kept as the JSON line a
//! recording writes (serialised once, shared with the writer without a copy). Its
//! memory is the lines' bytes and one pointer each: at most the window's seconds times
//! [`SECOND_MAX_BYTES`](super::second::SECOND_MAX_BYTES), whatever the flow count.

use std::{collections::VecDeque, mem::size_of, sync::Arc, time::Duration};

/// One second's line, without its newline.
pub type Line = Arc<str>;

pub struct Ring {
    capacity: usize,
    lines: VecDeque<Line>,
    bytes: usize,
}

impl Ring {
    /// Room for `window` of intervals of `interval` (at least one).
    pub fn new(window: Duration, interval: Duration) -> Self {
        Self::with_capacity(seconds_in(window, interval))
    }

    /// Room for `capacity` seconds (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            lines: VecDeque::with_capacity(capacity),
            bytes: 0,
        }
    }

    /// Adds the newest second, dropping the oldest when full.
    pub fn push(&mut self, line: Line) {
        if self.lines.len() == self.capacity
            && let Some(oldest) = self.lines.pop_front()
        {
            self.bytes -= oldest.len();
        }
        self.bytes += line.len();
        self.lines.push_back(line);
    }

    /// The seconds held, oldest first (shared, not copied).
    pub fn lines(&self) -> Vec<Line> {
        self.lines.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// How many seconds it holds when full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The heap it holds: the lines' bytes (and each `Arc`'s two counters) and the
    /// deque's slots.
    pub fn memory(&self) -> usize {
        self.bytes
            + self.lines.len() * 2 * size_of::<usize>()
            + self.lines.capacity() * size_of::<Line>()
    }

    /// The most [`memory`](Self::memory) can be: every second at its largest.
    pub fn bound(&self) -> usize {
        self.capacity * (super::second::SECOND_MAX_BYTES + 2 * size_of::<usize>())
            + self.capacity.next_power_of_two() * size_of::<Line>()
    }
}

/// Intervals of `interval` in `window`, rounded up (at least one).
pub fn seconds_in(window: Duration, interval: Duration) -> usize {
    let interval = interval.as_secs_f64().max(0.001);
    ((window.as_secs_f64() / interval).ceil() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_last_window_and_counts_its_bytes() {
        let mut ring = Ring::new(Duration::from_secs(3), Duration::from_secs(1));
        for n in 0..5 {
            ring.push(Arc::from(format!("second {n}")));
        }
        let lines: Vec<String> = ring.lines().iter().map(|l| l.to_string()).collect();
        assert_eq!(lines, ["second 2", "second 3", "second 4"]);
        assert_eq!(ring.bytes, 3 * "second 2".len());
        assert!(ring.memory() <= ring.bound());
        assert_eq!(
            seconds_in(Duration::from_secs(20), Duration::from_millis(300)),
            67
        );
        assert_eq!(
            seconds_in(Duration::from_secs(0), Duration::from_secs(1)),
            1
        );
    }
}
