//! The aggregator: iftop's arithmetic over the reader's snapshots. Pure and
//! deterministic: time comes only from the snapshots' `interval`s, never from a clock.
//!
//! What the numbers mean:
//!
//! - **Rates** (bytes/s) over the last 2, 10 and 40 s ([`WINDOWS`]): the bytes in the
//!   window divided by the window's length, as iftop does. The timeline is the sum of the
//!   snapshots' real intervals, whatever their lengths. An interval that the window's
//!   start falls inside counts in proportion to the part of it inside the window (its
//!   traffic taken as even over the interval), so a constant stream reads the same rate
//!   with 0.5 s, 1 s or 3 s intervals. Until a window's length has elapsed since the
//!   first snapshot, its bytes are divided by the time elapsed instead: the rate is the
//!   average since the start, not an underestimate that ramps up.
//! - **Cumulative**: bytes (and packets) since the aggregator started, or since the line's
//!   flows were first seen.
//! - **Peak**: the highest 2 s rate seen, sampled after each snapshot (a rate only rises
//!   when a snapshot arrives, so no peak is missed). It follows the 2 s rate's definition,
//!   so during the first 2 s it is the rate since the start. TX, RX and TOTAL each have
//!   their own peak (TOTAL's is of rx+tx together, not the sum of the two peaks). The
//!   address groupings keep each group between refreshes for its true peak; process lines
//!   cannot be kept (processes are known only downstream), so their peak is the highest of
//!   their flows' peaks and their current 2 s rate, a lower bound.
//! - **Totals** per interface and for all interfaces come from the interfaces' exact
//!   counters, so they include traffic in no flow (unparsed, table full), and never
//!   forget; [`Unattributed`] tells how much of it is in no flow, and why.
//!
//! Memory stays bounded. The history (one entry per flow that moved, per interval) is
//! kept only while inside the 40 s window. A flow idle for [`FORGET_AFTER`] (60 s) is
//! forgotten with its cumulative amounts, as iftop forgets idle lines; a group is
//! forgotten with its last flow, so a group's numbers are always the sum of its live
//! flows'. Past a flow limit ([`DEFAULT_FLOW_LIMIT`], or
//! [`Aggregator::with_flow_limit`]) the flows idle longest are forgotten first.
//!
//! Views ([`Aggregator::top`]) group flows by remote host, host pair, remote port, local
//! port or a caller's process key, and sort by any of TX/RX/TOTAL × 2 s/10 s/40 s/cum/
//! peak, highest first, ties in key order.

mod aggregator;
mod group;
mod index;
mod meter;
mod rates;
mod slab;
pub mod unattributed;
mod view;
mod window;

pub use aggregator::{Aggregator, DEFAULT_FLOW_LIMIT, FORGET_AFTER};
pub use group::{GroupBy, GroupKey, OwnerOf, Port};
pub use rates::{Column, Direction, Rates, SortBy, Totals};
pub use unattributed::Unattributed;
pub use view::{Row, Top};
pub use window::WINDOWS;

#[cfg(test)]
mod tests;
