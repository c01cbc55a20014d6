//! The help screen: what the columns and marks mean, every key (a replay's too), and the
//! GeoIP credit.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::Line,
    widgets::Paragraph,
};

use super::{
    view::View,
    widgets::{keys_line, row, wrap},
};

const KEYS: [&str; 1] = ["Esc back  q quit"];

/// Key, then what it does.
const KEY_TABLE: [(&str, &str); 12] = [
    ("1 2 3", "sort by the 2 s, 10 s or 40 s rate"),
    ("4 5", "sort by cumulative bytes, by peak rate"),
    ("t", "sort by total, sent (tx) or received (rx)"),
    (
        "g",
        "group by host, host pair, remote/local port, process, container",
    ),
    ("p", "show ports beside hosts (\":*\" when several)"),
    ("P", "pause the screen (metering goes on)"),
    ("B", "bits or bytes per second (-B starts in bytes)"),
    (
        "/",
        "filter: host, process, user or country; Enter applies, Esc clears",
    ),
    ("j k Up Down", "select a line (PgUp PgDn Home End)"),
    (
        "Enter",
        "details: process, command line, flows, country, why, what next",
    ),
    ("Esc", "back; on the main screen, clears the filter"),
    ("h ?  q", "this help; quit (also Ctrl-C)"),
];

/// `flowmeter replay`'s own keys, shown instead of pause.
const REPLAY_KEY_TABLE: [(&str, &str); 2] = [
    (
        "[ ]  { }",
        "one second back, forward; one minute back, forward",
    ),
    ("a", "the second the alert started (header: time, offset)"),
];

/// `top` on the service's view: back to its newest second.
const LIVE_KEY: (&str, &str) = ("L", "back to the newest second, following the new ones");

pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    if area.height < 2 {
        return;
    }
    let width = usize::from(area.width);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled(" Help: who is using the bandwidth", bold)];
    let meaning = [
        "Each line is two rows: => sent (TX) and <= received (RX) by this host, \
         averaged over the last 2 s, 10 s and 40 s; cum is bytes since the start, peak \
         the highest 2 s rate. The second row is the local process (pid name, \"in\" its \
         container, user).",
        "CC country of the remote (-- local network, ?? unknown). V verdict: ! suspicious, \
         C cloud agent, blank business. F foreign: outside --home.",
    ];
    for paragraph in meaning {
        lines.extend(wrap(paragraph, width, " ").into_iter().map(Line::from));
    }
    lines.push(Line::styled(" Keys", bold));
    let replaying = view.setup.recording.is_some();
    for (keys, what) in KEY_TABLE {
        // A recording does not move on its own: nothing to pause.
        if !(replaying && keys == "P") {
            lines.push(Line::from(format!("  {keys:<12}{what}")));
        }
    }
    if replaying {
        let live = view
            .setup
            .recording
            .as_ref()
            .is_some_and(|r| r.service.is_some());
        for (keys, what) in REPLAY_KEY_TABLE {
            // The service's view has no alert to go to, but a newest second.
            let (keys, what) = match (live, keys) {
                (true, "a") => LIVE_KEY,
                _ => (keys, what),
            };
            lines.push(Line::from(format!("  {keys:<12}{what}")));
        }
    }
    let mut countries = format!("Countries: {}.", view.setup.geo);
    if let Some(credit) = view.setup.attribution {
        countries.push(' ');
        countries.push_str(credit);
        countries.push('.');
    }
    lines.extend(wrap(&countries, width, " ").into_iter().map(Line::from));
    let content = Rect {
        height: area.height - 1,
        ..area
    };
    frame.render_widget(Paragraph::new(lines), content);
    frame.render_widget(
        Paragraph::new(keys_line(&KEYS, area.width)),
        row(area, area.height - 1),
    );
}
