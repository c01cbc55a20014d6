//! `flowmeter top` in a terminal of its own without tmux: `script` (util-linux) runs it
//! on a pseudo-terminal, and what the test writes to its input reaches the console as
//! keys. Killed, with the console, however the test ends.

use std::process::{Child, ChildStdin, Command, Stdio};

use super::{FLOWMETER, netns::Netns};

pub struct ScriptedConsole(Child);

impl ScriptedConsole {
    /// `flowmeter top ARGS` in `netns` at 80x24; its stderr goes where `redirect` says
    /// (a shell redirection such as `2>'/tmp/x'`, or nothing: the terminal).
    pub fn start(netns: &Netns, args: &str, redirect: &str) -> Self {
        let command = format!(
            "stty cols 80 rows 24; ip netns exec '{}' '{FLOWMETER}' top {args} {redirect}",
            netns.name()
        );
        Self(
            Command::new("script")
                .args(["-qec", &command, "/dev/null"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("running script (util-linux)"),
        )
    }

    pub fn running(&mut self) -> bool {
        self.0.try_wait().expect("asking about script").is_none()
    }

    /// The console's keyboard.
    pub fn keys(&mut self) -> ChildStdin {
        self.0.stdin.take().expect("piped stdin")
    }

    /// Waits for `script` (and so the console) to end.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().expect("waiting for script")
    }
}

impl Drop for ScriptedConsole {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
