//! `flowmeter replay FILE`: a flight recording of `log` on the console. The recording is
//! read whole first (a file that is none, or has no second, is one line on stderr and
//! exit status 1, before the terminal is touched); a file damaged part way is shown up
//! to the damage, which the header marks and stderr repeats once the screen is closed.
//! [`follow`] is the same player on a running service's view, for `top`.

use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, never};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::session::signals_that_stop;
use crate::{
    cli::ReplayArgs,
    console::{
        State, Units,
        replay::{self, Player},
        terminal::{InputThread, TerminalGuard},
    },
    recorder::{
        live::Live,
        second::Second,
        source::{FileSource, Source},
    },
};

pub fn run(args: &ReplayArgs) -> Result<()> {
    play(&FileSource(args.file.clone()), args.bytes)
}

/// Shows what `source` holds until a quit key or a signal.
pub fn play(source: &dyn Source, bytes: bool) -> Result<()> {
    let stop = signals_that_stop(&[SIGINT, SIGTERM, SIGHUP])?;
    let recording = source.load().map_err(|e| anyhow!(e))?;
    let damage = recording.damage.clone();
    let mut player = Player::new(recording, State::new(units(bytes)));
    let result = show(&mut player, &never(), &stop);
    if let Some(damage) = damage {
        eprintln!("flowmeter: {}: {damage}", source.name());
    }
    result
}

/// `top` beside a running `flowmeter log`: its live view and its ring, until a quit key
/// or a signal.
pub fn follow(live: Live, bytes: bool) -> Result<()> {
    let stop = signals_that_stop(&[SIGINT, SIGTERM, SIGHUP])?;
    let mut player = Player::live(live.recording, live.pid, State::new(units(bytes)));
    show(&mut player, &live.seconds, &stop)
}

fn units(bytes: bool) -> Units {
    if bytes { Units::Bytes } else { Units::Bits }
}

fn show(player: &mut Player, seconds: &Receiver<Second>, stop: &Receiver<()>) -> Result<()> {
    TerminalGuard::enter()
        .context("cannot set up the terminal for the console (run it in a terminal)")
        .and_then(|mut guard| {
            let (keys, terminal) = InputThread::start().context("reading the keyboard")?;
            let result = replay::run(guard.terminal(), player, &terminal, seconds, stop);
            keys.stop();
            drop(guard);
            result
        })
}
