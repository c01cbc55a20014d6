//! `flowmeter replay`: the console on a recording. A [`Player`] holds the recorded
//! seconds and shows one at a time through the console of `top` itself: the seconds up
//! to the one shown are fed to a fresh [`Console`] as intervals (`Second::interval`), so
//! rates, details, grouping, filter and every key are `top`'s. Keys of its own step one
//! second (`[` `]`), one minute (`{` `}`) and jump to the alert's start (`a`); the
//! header says which second is shown ([`Recorded`]).
//!
//! Live (`top` beside a running `flowmeter log`, [`Player::live`]): the seconds come
//! from the service's ring and keep arriving ([`Player::push`]); the player follows the
//! newest unless stepped back, and `L` returns to it. At most the service's window is
//! kept.

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, never, select};
use ratatui::{Frame, Terminal, backend::Backend};

use super::{
    Console, Setup, State,
    keys::{Action, Key},
    terminal::Input,
};
use crate::recorder::{file::Recording, second::Second};

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
    /// Live: the service this second comes from.
    pub service: Option<Service>,
}

/// The running service a live second comes from, for the header.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub pid: u32,
    /// How far the second shown is behind the newest one (zero: live).
    pub behind: Duration,
    /// The service stopped serving: no newer second will come.
    pub ended: bool,
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
    /// Live: to the newest second, and follow the new ones.
    Live,
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
        Key::Char('L') => Some(Seek::Live),
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
    /// Live: the service's view.
    live: Option<Following>,
}

/// A live player's state.
#[derive(Clone, Copy, Debug)]
struct Following {
    pid: u32,
    /// On the newest second, moving with it.
    newest: bool,
    ended: bool,
    /// Seconds kept: the service's window.
    capacity: usize,
}

impl Player {
    /// Opens on the alert's start.
    pub fn new(recording: Recording, state: State) -> Self {
        let alert = alert_index(&recording);
        let console = console_at(&recording, alert, None, state);
        Self {
            recording,
            at: alert,
            alert,
            console,
            live: None,
        }
    }

    /// The service's view: opens on its newest second, and follows the new ones.
    pub fn live(recording: Recording, pid: u32, state: State) -> Self {
        let interval = recording.header.interval_s.max(0.001);
        let capacity = ((recording.header.window_s / interval).ceil() as usize)
            .max(recording.seconds.len())
            .max(1);
        let last = recording.seconds.len() - 1;
        let mut player = Self::new(recording, state);
        player.live = Some(Following {
            pid,
            newest: true,
            ended: false,
            capacity,
        });
        player.show(last);
        player
    }

    /// Live: a new second. The screen moves to it if it was on the newest.
    pub fn push(&mut self, second: Second) {
        let Some(live) = self.live else { return };
        let seconds = &mut self.recording.seconds;
        seconds.push(second);
        if seconds.len() > live.capacity {
            seconds.remove(0);
            self.at = self.at.saturating_sub(1);
        }
        let last = seconds.len() - 1;
        self.show(if live.newest { last } else { self.at });
    }

    /// Live: the service stopped serving.
    pub fn ended(&mut self) {
        if let Some(live) = &mut self.live {
            live.ended = true;
            self.show(self.at);
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
        let before = self.at;
        let interval = self.recording.header.interval_s.max(0.001);
        let target = match seek {
            Seek::By(n) => self.at.saturating_add_signed(n),
            Seek::Minutes(n) => {
                let per_minute = (60.0 / interval).round().max(1.0) as isize;
                self.at.saturating_add_signed(n * per_minute)
            }
            // Live there is no alert to go to.
            Seek::AlertStart if self.live.is_some() => self.at,
            Seek::AlertStart => self.alert,
            Seek::Live => last,
        }
        .min(last);
        if let Some(live) = &mut self.live {
            live.newest = target == last;
            // The header's distance from the newest second changes too.
            self.show(target);
        } else if target != before {
            self.show(target);
        }
    }

    /// Shows the second at `index`, keeping the console's state (selection, filter).
    fn show(&mut self, index: usize) {
        self.at = index;
        let service = self.live.map(|live| Service {
            pid: live.pid,
            behind: Duration::from_secs_f64(
                (self.recording.seconds.len() - 1 - index) as f64
                    * self.recording.header.interval_s.max(0.001),
            ),
            ended: live.ended,
        });
        let state = self.console.state().clone();
        self.console = console_at(&self.recording, index, service, state);
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
fn console_at(
    recording: &Recording,
    index: usize,
    service: Option<Service>,
    mut state: State,
) -> Console {
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
            service,
        }),
    };
    let seconds = recording.seconds[..=index].iter().map(Second::interval);
    Console::with_intervals(setup, state, None, seconds)
}

/// Draws, then waits for a key, a new second (live: `seconds`; `never()` for a file)
/// or a stop signal, until a quit key.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    player: &mut Player,
    keys: &Receiver<Input>,
    seconds: &Receiver<Second>,
    stop: &Receiver<()>,
) -> Result<()> {
    let mut seconds = seconds.clone();
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
            recv(seconds) -> second => match second {
                Ok(second) => player.push(second),
                Err(_) => {
                    player.ended();
                    seconds = never();
                }
            },
            recv(stop) -> _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::{
        enrich::verdict::Verdict,
        recorder::{
            file::{AlertMark, Header},
            second::{IfaceSecond, Part, ProcessSecond, RemoteSecond, Second},
        },
    };

    const T0_MS: u64 = 1_800_000_000_000;
    const ALERT: usize = 70;

    /// One second: the quiet host, or during the burst (70..80) the miner's host too.
    fn second(index: usize) -> Second {
        let remote = |ip: &str, pid: u32, bytes: u64, verdict: Verdict| RemoteSecond {
            ip: ip.parse().unwrap(),
            place: "NL".into(),
            foreign: false,
            flows: 1,
            rx_bytes: 0,
            tx_bytes: bytes,
            verdict,
            parts: vec![Part {
                pid: Some(pid),
                owner: None,
                iface: "eth0".into(),
                proto: 17,
                local_ip: "192.0.2.1".parse().unwrap(),
                local_port: 40000,
                remote_port: 3333,
                flows: 1,
                rx_packets: 0,
                rx_bytes: 0,
                tx_packets: 1,
                tx_bytes: bytes,
                verdict,
                reasons: vec!["remote port 3333 is a common mining-pool port".into()],
            }],
            others: None,
        };
        let process = |pid: u32, comm: &str| ProcessSecond {
            pid,
            comm: comm.into(),
            user: "root".into(),
            uid: 0,
            exe: Some(format!("/tmp/{comm}")),
            exe_deleted: false,
            cmdline: comm.into(),
            top: None,
        };
        let mut remotes = vec![remote("198.51.100.2", 7, 1000, Verdict::Business)];
        if (ALERT..ALERT + 10).contains(&index) {
            remotes.insert(
                0,
                remote("198.51.100.77", 42, 2_000_000, Verdict::Suspicious),
            );
        }
        Second {
            ts: String::new(),
            at_ms: T0_MS + index as u64 * 1000,
            interval_s: 1.0,
            flows: remotes.len(),
            interfaces: vec![IfaceSecond {
                iface: "eth0".into(),
                rx_packets: 0,
                rx_bytes: 0,
                tx_packets: 10,
                tx_bytes: remotes.iter().map(|r| r.tx_bytes).sum(),
                rx_unattributed_packets: 0,
                rx_unattributed_bytes: 0,
                tx_unattributed_packets: 0,
                tx_unattributed_bytes: 0,
            }],
            remotes,
            processes: vec![process(7, "iperf3"), process(42, "xmrig")],
        }
    }

    fn recording(seconds: usize) -> Recording {
        Recording {
            header: Header::new(1.0, 70.0, 60.0, vec!["eth0".into()]),
            alerts: vec![AlertMark {
                kind: "rate".into(),
                ts: String::new(),
                at_ms: T0_MS + ALERT as u64 * 1000,
                message: String::new(),
            }],
            seconds: (0..seconds).map(second).collect(),
            damage: None,
        }
    }

    fn header(player: &Player) -> String {
        header_at(player, 80)
    }

    fn header_at(player: &Player, width: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, 24)).unwrap();
        terminal.draw(|frame| player.draw(frame)).unwrap();
        let text = terminal.backend().to_string();
        text.lines().next().unwrap().trim_matches('"').to_owned()
    }

    #[test]
    fn it_opens_on_the_alert_and_steps_a_second_a_minute_and_back() {
        let mut player = Player::new(recording(140), State::default());
        assert_eq!(player.position(), ALERT);
        assert!(
            header(&player).contains("REPLAY 2027-01-15 08:01:10 alert +0s"),
            "{}",
            header(&player)
        );
        let top = &player.console().view().rows[0];
        assert_eq!(top.label, "198.51.100.77");
        assert_eq!(top.second, "42 xmrig");
        assert_eq!(top.verdict, Some(Verdict::Suspicious));
        for (key, position, says) in [
            (']', ALERT + 1, "08:01:11 alert +1s"),
            ('[', ALERT, "08:01:10 alert +0s"),
            ('[', ALERT - 1, "08:01:09 alert -1s"),
            ('}', ALERT + 59, "08:02:09 alert +59s"),
            ('}', 139, "alert +1m09s"),
            ('{', 79, "alert +9s"),
            ('{', 19, "alert -51s"),
            ('{', 0, "alert -1m10s"),
            ('a', ALERT, "alert +0s"),
        ] {
            assert_eq!(player.press(Key::Char(key)), Action::Refresh);
            assert_eq!(player.position(), position, "after {key}");
            assert!(
                header(&player).contains(says),
                "after {key}: {}",
                header(&player)
            );
        }
        // Where there is room: which second of how many.
        let wide = header_at(&player, 160);
        assert!(
            wide.trim_end().ends_with(&format!("{}/140", ALERT + 1)),
            "{wide}"
        );
        // Before the burst: only the quiet host, with its process.
        player.seek(Seek::By(-5));
        let rows = &player.console().view().rows;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].label.as_str(), rows[0].second.as_str()),
            ("198.51.100.2", "7 iperf3")
        );
    }

    #[test]
    fn typing_a_filter_takes_the_keys_and_the_selection_survives_a_step() {
        let mut player = Player::new(recording(100), State::default());
        player.press(Key::Char('/'));
        player.press(Key::Char('['));
        assert_eq!(player.position(), ALERT, "'[' went into the filter");
        player.press(Key::Esc);
        player.press(Key::Down);
        let selected = player.console().state().selected.clone();
        assert!(selected.is_some());
        player.press(Key::Char(']'));
        assert_eq!(player.console().state().selected, selected);
        assert_eq!(player.press(Key::Char('P')), Action::Ignore);
        assert!(!player.console().state().paused);
        // The details of the burst's host list its process and reasons.
        player.press(Key::Enter);
        let details = player.console().view().details.clone().unwrap();
        assert_eq!(details.processes[0].comm, "xmrig");
        assert_eq!(
            details.reasons[0].to_string(),
            "remote port 3333 is a common mining-pool port"
        );
    }

    #[test]
    fn the_help_screen_lists_the_replay_keys_at_80x24() {
        let mut player = Player::new(recording(100), State::default());
        player.press(Key::Char('h'));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| player.draw(frame)).unwrap();
        let screen = terminal.backend().to_string();
        assert!(
            screen.contains("  [ ]  { }    one second back, forward; one minute"),
            "{screen}"
        );
        assert!(
            screen.contains("  a           the second the alert started"),
            "{screen}"
        );
        assert!(!screen.contains("pause the screen"), "{screen}");
        assert!(
            screen.contains("Esc back  q quit"),
            "the keys line still fits: {screen}"
        );
        // In help, the step keys do not step.
        player.press(Key::Char(']'));
        assert_eq!(player.position(), ALERT);
    }

    #[test]
    fn live_it_follows_the_newest_second_steps_back_and_l_returns() {
        // The service's ring: 60 seconds of a 75 s window, no alert.
        let mut ring = recording(60);
        ring.alerts.clear();
        ring.header.window_s = 75.0;
        let mut player = Player::live(ring, 4242, State::default());
        assert_eq!(player.position(), 59);
        assert!(
            header(&player).starts_with("from flowmeter log (pid 4242), live 2027-01-15 08:00:59"),
            "{}",
            header(&player)
        );
        // A new second: the screen moves with it, and the burst's host is on top.
        for index in 60..72 {
            player.push(second(index));
        }
        assert_eq!(player.position(), 71);
        assert!(
            header(&player).contains("live 2027-01-15 08:01:11"),
            "{}",
            header(&player)
        );
        assert_eq!(player.console().view().rows[0].label, "198.51.100.77");
        // Back a minute: before the burst, and it stays there as seconds arrive.
        player.press(Key::Char('{'));
        assert_eq!(player.position(), 11);
        assert!(
            header(&player).contains("1m00s ago 2027-01-15 08:00:11"),
            "{}",
            header(&player)
        );
        player.push(second(72));
        assert_eq!(player.position(), 11);
        assert!(
            header(&player).contains("1m01s ago 2027-01-15 08:00:11"),
            "{}",
            header(&player)
        );
        assert_eq!(
            player.console().view().rows.len(),
            1,
            "only the quiet host then"
        );
        // No alert to go to: a stays.
        player.press(Key::Char('a'));
        assert_eq!(player.position(), 11);
        // L: the newest again, following.
        assert_eq!(player.press(Key::Char('L')), Action::Refresh);
        assert_eq!(player.position(), 72);
        assert!(header(&player).contains("live"), "{}", header(&player));
        player.push(second(73));
        assert_eq!(player.position(), 73);
        // Past the window the oldest go: 75 seconds kept, the one shown kept in place.
        player.press(Key::Char('['));
        for index in 74..100 {
            player.push(second(index));
        }
        assert_eq!(player.recording.seconds.len(), 75);
        assert_eq!(player.recording.seconds[0].at_ms, T0_MS + 25 * 1000);
        assert!(header(&player).contains("08:01:12"), "{}", header(&player));
        // The service stopped: said in the header once on the newest.
        player.press(Key::Char('L'));
        player.ended();
        assert!(
            header(&player).contains("(pid 4242), stopped"),
            "{}",
            header(&player)
        );
        // The help screen names L instead of the alert's key.
        player.press(Key::Char('h'));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| player.draw(frame)).unwrap();
        let screen = terminal.backend().to_string();
        assert!(
            screen.contains("  L           back to the newest second"),
            "{screen}"
        );
        assert!(!screen.contains("the second the alert started"), "{screen}");
    }

    #[test]
    fn a_damaged_recording_says_so_in_the_header() {
        let mut recording = recording(3);
        recording.damage = Some("damaged at line 5".into());
        let player = Player::new(recording, State::default());
        // No second at the alert: the last one.
        assert_eq!(player.position(), 2);
        assert!(
            header(&player).contains("alert +0s DAMAGED |"),
            "{}",
            header(&player)
        );
        assert!(header_at(&player, 160).trim_end().ends_with("3/3"));
    }
}
