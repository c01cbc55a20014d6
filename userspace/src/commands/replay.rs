//! `flowmeter replay FILE`: a flight recording of `log` on the console. The recording is
//! read whole first (a file that is none, or has no second, is one line on stderr and
//! exit status 1, before the terminal is touched); a file damaged part way is shown up
//! to the damage, which the header marks and stderr repeats once the screen is closed.

use anyhow::{Context as _, Result, anyhow};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::session::signals_that_stop;
use crate::{
    cli::ReplayArgs,
    console::{
        State, Units,
        replay::{self, Player},
        terminal::{InputThread, TerminalGuard},
    },
    recorder::source::{FileSource, Source},
};

pub fn run(args: &ReplayArgs) -> Result<()> {
    play(&FileSource(args.file.clone()), args.bytes)
}

/// Shows what `source` holds until a quit key or a signal.
pub fn play(source: &dyn Source, bytes: bool) -> Result<()> {
    let stop = signals_that_stop(&[SIGINT, SIGTERM, SIGHUP])?;
    let recording = source.load().map_err(|e| anyhow!(e))?;
    let damage = recording.damage.clone();
    let units = if bytes { Units::Bytes } else { Units::Bits };
    let mut player = Player::new(recording, State::new(units));
    let result = TerminalGuard::enter()
        .context("cannot set up the terminal for the console (run it in a terminal)")
        .and_then(|mut guard| {
            let (keys, terminal) = InputThread::start().context("reading the keyboard")?;
            let result = replay::run(guard.terminal(), &mut player, &terminal, &stop);
            keys.stop();
            drop(guard);
            result
        });
    if let Some(damage) = damage {
        eprintln!("flowmeter: {}: {damage}", source.name());
    }
    result
}
