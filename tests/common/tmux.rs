//! A tmux server of the test's own, to drive the real binary's console at a given size
//! and read its screen as text.

use std::{
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use super::netns::unique_name;

/// Longest wait for the screen to show what the test looks for (loading and verifying
/// the programs included; the first numbers come within a second of attaching).
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// A tmux server of the test's own, with one session; killed when dropped.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a detached session of that size.
    pub fn start(width: u16, height: u16, command: &str) -> Self {
        let name = unique_name();
        let tmux = Self {
            socket: format!("{name}-tmux"),
            session: name,
        };
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(output.status.success(), "tmux new-session: {output:?}");
        tmux
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux (install it: apt-get install tmux)")
    }

    /// The screen's text, one line per row.
    pub fn capture(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn send_keys(&self, keys: &str) {
        let output = self.run(&["send-keys", "-t", &self.session, keys]);
        assert!(output.status.success(), "tmux send-keys: {output:?}");
    }

    /// True while the session (so the console in it) runs.
    pub fn alive(&self) -> bool {
        self.run(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits until `done` holds for the screen, or fails with the last screen.
pub fn wait_for_screen(tmux: &Tmux, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    loop {
        let screen = tmux.capture();
        if done(&screen) {
            return screen;
        }
        assert!(
            tmux.alive(),
            "the console ended before showing {what}; last screen:\n{screen}"
        );
        assert!(
            Instant::now() < deadline,
            "no {what} on screen after {SCREEN_TIMEOUT:?}:\n{screen}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
