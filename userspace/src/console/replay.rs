//! `flowmeter replay`: the console on a recording. A [`Player`] holds the recorded
//! seconds and shows one at a time through the console of `top` itself: the seconds up
//! to the one shown are fed to a fresh [`Console`] as intervals (`Second::interval`), so
//! rates, details, grouping, filter and every key are `top`'s. Keys of its own step one
//! second (`[` `]`), one minute (`{` `}`) and jump to the alert's start (`a`); the
//! header says which second is shown ([`Recorded`]).

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, select};
use ratatui::{Frame, Terminal, backend::Backend};

use super::{
    Console, Setup, State,
    keys::{Action, Key},
    terminal::Input,
};
use crate::recorder::file::Recording;

/// Which recorded second is on screen, for the header.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// When the second ended, as recorded.
    pub at: SystemTime,
    /// Time from the alert's start to this second (intervals times the interval).
    pub from_alert: Duration,
    pub before_alert: bool,
    /// Its place (from 1) among the recording's seconds.
    pub second: usize,
    pub seconds: usize,
    /// The file is damaged past its last second.
    pub damaged: bool,
}

/// A move through the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seek {
    /// By this many intervals (a second each at `--interval 1`).
    By(isize),
    /// By this many minutes.
    Minutes(isize),
    /// To the second the first alert started in.
    AlertStart,
}

/// The replay's own keys, outside of typing a filter and the help screen.
pub fn seek_key(state: &State, key: Key) -> Option<Seek> {
    if state.input.is_some() || state.help {
        return None;
    }
    match key {
        Key::Char('[') => Some(Seek::By(-1)),
        Key::Char(']') => Some(Seek::By(1)),
        Key::Char('{') => Some(Seek::Minutes(-1)),
        Key::Char('}') => Some(Seek::Minutes(1)),
        Key::Char('a') => Some(Seek::AlertStart),
        _ => None,
    }
}

pub struct Player {
    recording: Recording,
    /// The second shown (an index into the recording's seconds).
    at: usize,
    /// The second the first alert started in.
    alert: usize,
    console: Console,
}

impl Player {
    /// Opens on the alert's start.
    pub fn new(recording: Recording, state: State) -> Self {
        let alert = alert_index(&recording);
        let console = console_at(&recording, alert, state);
        Self {
            recording,
            at: alert,
            alert,
            console,
        }
    }

    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The index of the second on screen.
    pub fn position(&self) -> usize {
        self.at
    }

    pub fn seek(&mut self, seek: Seek) {
        let last = self.recording.seconds.len() - 1;
        let interval = self.recording.header.interval_s.max(0.001);
        let target = match seek {
            Seek::By(n) => self.at.saturating_add_signed(n),
            Seek::Minutes(n) => {
                let per_minute = (60.0 / interval).round().max(1.0) as isize;
                self.at.saturating_add_signed(n * per_minute)
            }
            Seek::AlertStart => self.alert,
        }
        .min(last);
        if target != self.at {
            self.at = target;
            let state = self.console.state().clone();
            self.console = console_at(&self.recording, target, state);
        }
    }

    /// A key: the replay's own, or the console's.
    pub fn press(&mut self, key: Key) -> Action {
        if let Some(seek) = seek_key(self.console.state(), key) {
            self.seek(seek);
            return Action::Refresh;
        }
        // The numbers of a recording do not move: pausing would only hide them.
        if key == Key::Char('P') && self.console.state().input.is_none() {
            return Action::Ignore;
        }
        self.console.press(key)
    }

    pub fn draw(&self, frame: &mut Frame) {
        self.console.draw(frame);
    }
}

/// The second the first alert started in: the first whose end is not before the
/// alert's; the first second if the recording names none.
fn alert_index(recording: &Recording) -> usize {
    let Some(alert) = recording.alerts.iter().map(|a| a.at_ms).min() else {
        return 0;
    };
    recording
        .seconds
        .iter()
        .position(|second| second.at_ms >= alert)
        .unwrap_or(recording.seconds.len() - 1)
}

/// A console that has seen the recording's seconds up to `index`.
fn console_at(recording: &Recording, index: usize, mut state: State) -> Console {
    state.paused = false;
    let alert = alert_index(recording);
    let interval = recording.header.interval_s.max(0.001);
    let apart = index.abs_diff(alert) as f64 * interval;
    let setup = Setup {
        interfaces: recording.header.interfaces.clone(),
        geo: "as recorded".to_owned(),
        attribution: None,
        home: Default::default(),
        recording: Some(Recorded {
            at: recording.seconds[index].at(),
            from_alert: Duration::from_secs_f64(apart),
            before_alert: index < alert,
            second: index + 1,
            seconds: recording.seconds.len(),
            damaged: recording.damage.is_some(),
        }),
    };
    let mut console = Console::new(setup, state, None);
    for second in &recording.seconds[..=index] {
        console.ingest(second.interval());
    }
    console
}

/// Draws, then waits for a key or a stop signal, until a quit key.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    player: &mut Player,
    keys: &Receiver<Input>,
    stop: &Receiver<()>,
) -> Result<()> {
    loop {
        terminal
            .draw(|frame| player.draw(frame))
            .map_err(|e| anyhow!("drawing the screen: {e}"))?;
        select! {
            recv(keys) -> input => match input {
                Ok(Input::Key(key)) => {
                    if player.press(key) == Action::Quit {
                        return Ok(());
                    }
                }
                Ok(Input::Resize) => {}
                Err(_) => return Ok(()),
            },
            recv(stop) -> _ => return Ok(()),
        }
    }
}
