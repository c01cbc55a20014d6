//! `render(&State, &View, &mut Frame)`: lays a view out on the terminal. Draws the header
//! line and hands the rest to the screen that is open: the main [`screen`], the
//! [`details`] of one line or the [`help`]. Pure: the same state and view always draw
//! the same screen, which the snapshot tests pin.
//!
//! Everything is legible without colour (marks are characters, the selection has a `>`);
//! colour only helps: suspicious in red, cloud agents in cyan, foreign in yellow.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use time::{OffsetDateTime, macros::format_description};

use super::{
    details, help,
    replay::Recorded,
    screen,
    state::{State, group_name, sort_name},
    view::View,
    widgets::{fit, row, split_styled},
};
use crate::units::clock;

pub fn render(state: &State, view: &View, frame: &mut Frame) {
    let area = frame.area();
    if area.height == 0 || area.width == 0 {
        return;
    }
    frame.render_widget(
        Paragraph::new(header(state, view, area.width)),
        row(area, 0),
    );
    let body = Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    };
    if state.help {
        help::render(view, frame, body);
    } else if state.details {
        details::render(state, view, frame, body);
    } else {
        screen::render(state, view, frame, body);
    }
}

/// The first line: what is metered, how it is grouped and sorted, the units, pause.
fn header(state: &State, view: &View, width: u16) -> Line<'static> {
    let mut left = format!(
        "flowmeter {} | by {} | sort {} | {}",
        view.setup.interfaces.join(", "),
        group_name(state.group_by),
        sort_name(state.sort),
        state.units.name(),
    );
    if state.paused {
        left.push_str(" | PAUSED");
    }
    let mut right = if view.started {
        format!("up {}", clock(view.elapsed))
    } else {
        String::new()
    };
    if let Some(recorded) = &view.setup.recording {
        // Which second, first: it must survive the narrowest screen.
        left = format!(
            "{} | {}",
            recorded_second(recorded),
            &left["flowmeter ".len()..]
        );
        right = format!("{}/{}", recorded.second, recorded.seconds);
    }
    let width = usize::from(width);
    let text = if left.len() + right.len() < width {
        format!("{left}{right:>0$}", width - left.len())
    } else {
        fit(&left, width)
    };
    let style = Style::new().add_modifier(Modifier::REVERSED);
    let mut spans = vec![Span::styled(text, style)];
    if state.paused {
        // The word is already there; the colour only draws the eye.
        spans = split_styled(&spans[0].content, "PAUSED", style, style.fg(Color::Yellow));
    }
    Line::from(spans)
}

/// "REPLAY 2026-01-15 08:00:03 alert +42s": a recorded second's wall time (UTC), its
/// distance from the alert's start, and "DAMAGED" if the file was cut after it.
fn recorded_second(recorded: &Recorded) -> String {
    let wall = OffsetDateTime::from(recorded.at)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    if let Some(service) = &recorded.service {
        let when = match (service.behind.is_zero(), service.ended) {
            (true, false) => "live".to_owned(),
            (true, true) => "stopped".to_owned(),
            (false, _) => format!("{} ago", clock(service.behind)),
        };
        return format!("from flowmeter log (pid {}), {when} {wall}", service.pid);
    }
    let sign = if recorded.before_alert { '-' } else { '+' };
    let damaged = if recorded.damaged { " DAMAGED" } else { "" };
    format!(
        "REPLAY {wall} alert {sign}{}{damaged}",
        clock(recorded.from_alert)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The header's text at 80 columns.
    fn header_text(state: &State, view: &View) -> String {
        header(state, view, 80)
            .spans
            .iter()
            .map(|span| span.content.as_ref())
            .collect()
    }

    #[test]
    fn the_header_reads_the_time_up_like_a_clock() {
        let state = State::default();
        for (seconds, up) in [(42, "up 42s"), (185, "up 3m05s"), (7260, "up 2h01m")] {
            let view = View {
                started: true,
                elapsed: Duration::from_secs(seconds),
                ..View::default()
            };
            let text = header_text(&state, &view);
            assert!(text.ends_with(up), "{text}");
            assert_eq!(text.chars().count(), 80);
        }
        let text = header_text(&state, &View::default());
        assert!(!text.contains("up "), "{text}");
    }
}
