//! The real terminal: raw mode and the alternate screen for as long as a guard lives
//! (restored on every way out, panics included), and a thread that turns the terminal's
//! events into [`Input`]s.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, bounded};
use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers},
};

use super::keys::Key;

/// What the terminal tells the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Key(Key),
    /// The window changed size: draw again.
    Resize,
}

/// The terminal in raw mode on the alternate screen; dropping it restores the terminal.
pub struct TerminalGuard {
    terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen. A panic anywhere restores the terminal
    /// before its message is printed (ratatui's panic hook).
    pub fn enter() -> io::Result<Self> {
        let terminal = ratatui::try_init()?;
        Ok(Self { terminal })
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

/// The thread that reads the terminal's events.
pub struct InputThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// How long a poll waits before looking whether the thread should stop.
const POLL: Duration = Duration::from_millis(100);

impl InputThread {
    /// Starts reading; the receiver closes if the terminal cannot be read.
    pub fn start() -> io::Result<(Self, Receiver<Input>)> {
        let (sender, inputs) = bounded(64);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = thread::Builder::new().name("keys".into()).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                // Polled with a timeout, so the thread sees `stop` soon after it is set.
                let inputs = match event::poll(POLL) {
                    Ok(false) => continue,
                    Ok(true) => match event::read() {
                        Ok(event) => inputs_of(event),
                        Err(_) => break,
                    },
                    Err(_) => break,
                };
                if inputs.into_iter().any(|input| sender.send(input).is_err()) {
                    break;
                }
            }
        })?;
        Ok((
            Self {
                stop,
                handle: Some(handle),
            },
            inputs,
        ))
    }

    /// Asks the thread to stop and waits a little longer than one poll for it. A thread
    /// stuck in a read that never returns (a terminal that hung up, where the reader
    /// spins on end of input) is left behind rather than joined: the console is closing
    /// and the process exits soon after, which ends it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(handle) = self.handle.take() else {
            return;
        };
        let deadline = Instant::now() + POLL * 3;
        while !handle.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
}

fn inputs_of(event: Event) -> Vec<Input> {
    match event {
        Event::Key(key) if key.kind == KeyEventKind::Release => Vec::new(),
        // Esc and a key typed quickly after it (tmux, a slow VNC link) arrive as one
        // Alt+key: give both back.
        Event::Key(key)
            if key.modifiers.contains(KeyModifiers::ALT)
                && matches!(key.code, KeyCode::Char(_)) =>
        {
            let key = KeyEvent::new(key.code, key.modifiers - KeyModifiers::ALT);
            [Some(Key::Esc), key_of(key)]
                .into_iter()
                .flatten()
                .map(Input::Key)
                .collect()
        }
        Event::Key(key) => key_of(key).map(Input::Key).into_iter().collect(),
        Event::Resize(..) => vec![Input::Resize],
        _ => Vec::new(),
    }
}

fn key_of(key: KeyEvent) -> Option<Key> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Key::Interrupt);
    }
    Some(match key.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_events_become_keys() {
        let press = |code, modifiers| inputs_of(Event::Key(KeyEvent::new(code, modifiers)));
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            [Input::Key(Key::Interrupt)]
        );
        assert_eq!(
            press(KeyCode::Char('P'), KeyModifiers::SHIFT),
            [Input::Key(Key::Char('P'))]
        );
        assert_eq!(
            press(KeyCode::Enter, KeyModifiers::NONE),
            [Input::Key(Key::Enter)]
        );
        assert_eq!(
            press(KeyCode::Char('g'), KeyModifiers::ALT),
            [Input::Key(Key::Esc), Input::Key(Key::Char('g'))],
            "Esc then g, typed fast"
        );
        assert_eq!(press(KeyCode::F(1), KeyModifiers::NONE), []);
        assert_eq!(inputs_of(Event::Resize(80, 24)), [Input::Resize]);
    }
}
