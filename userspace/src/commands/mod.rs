//! One module per subcommand: each wires the stages together for its job; `build` turns
//! the command-line options into the components they wire.

pub mod audit;
pub mod bench;
pub mod build;
pub mod log;
pub mod man;
pub mod top;

use std::thread;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, bounded};
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

/// A channel that receives once SIGINT or SIGTERM arrives.
pub(crate) fn stop_signals() -> Result<Receiver<()>> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let (sender, receiver) = bounded(1);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = sender.send(());
            }
        })
        .context("starting the signal thread")?;
    Ok(receiver)
}
