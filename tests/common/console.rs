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
        Self::start_after("", netns, args, redirect)
    }

    /// As [`start`](Self::start), after the shell command `before` (e.g. `trap '' HUP;`
    /// to start it with hangups ignored, as `nohup` does).
    pub fn start_after(before: &str, netns: &Netns, args: &str, redirect: &str) -> Self {
        let command = format!(
            "{before} stty cols 80 rows 24; ip netns exec '{}' '{FLOWMETER}' top {args} \
             {redirect}",
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

/// The pid of the `flowmeter top` metering `iface` (`ip netns exec` execs it, `script`
/// runs it in a shell).
pub fn top_pid(iface: &str) -> Option<i32> {
    let output = Command::new("pgrep")
        .args(["-f", &format!("{FLOWMETER} top --iface {iface} ")])
        .output()
        .expect("running pgrep");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|pid| pid.trim().parse().ok())
        .find(|&pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "flowmeter")
        })
}
