//! The console (`flowmeter top`): iftop's screen with the process, country and verdict
//! of every line, usable at 80x24 over a slow VNC console without a mouse or colour.
//!
//! A TUI is state + key reducer + render, pure functions that snapshot tests pin:
//!
//! - [`state`]: what the person chose (grouping, sort, units, filter, selection by key,
//!   open screens); [`keys::reduce`] is the only thing that changes it.
//! - [`view`]: the view model, built from the aggregator and the flows' latest
//!   [`facts`] (and names from the [`resolver`] under `--resolve`).
//! - [`render::render`] lays out `(&State, &View)` on a frame: the main [`screen`],
//!   [`details`] of one line, [`help`], each drawn with the [`widgets`] (text fitted to
//!   a width, rows, the keys line) and the [`units`] of its numbers.
//! - [`flood`]: the banner that names a flood's source prefixes and ports.
//! - [`app`]: the [`Console`] that holds them and the event loop over channels;
//!   [`terminal`]: raw mode, the restore guard and the key-reading thread.
//!
//! - [`replay`]: the same console on a recording of `log`'s flight recorder.
//!
//! `commands/top.rs` runs the metering thread that feeds it; `commands/replay.rs` the
//! recording.

pub mod app;
pub mod details;
pub mod facts;
pub mod flood;
pub mod help;
pub mod keys;
pub mod render;
pub mod replay;
pub mod resolver;
pub mod screen;
pub mod state;
pub mod terminal;
pub mod units;
pub mod view;
pub mod widgets;

pub use app::{Console, Inputs, Update};
pub use keys::{Action, Key};
pub use state::State;
pub use units::Units;
pub use view::Setup;

#[cfg(test)]
mod tests;
