//! `render(&State, &View, &mut Frame)`: lays a view out on the terminal. Pure: the same
//! state and view always draw the same screen, which the snapshot tests pin.
//!
//! Everything is legible without colour (marks are characters, the selection has a `>`);
//! colour only helps: suspicious in red, cloud agents in cyan, foreign in yellow.

use std::time::Duration;

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    details, help, screen,
    state::{State, group_name, sort_name},
    view::View,
};
use crate::enrich::verdict::Verdict;

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
    let right = if view.started {
        format!("up {}", duration(view.elapsed))
    } else {
        String::new()
    };
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

fn split_styled(text: &str, word: &str, style: Style, word_style: Style) -> Vec<Span<'static>> {
    match text.find(word) {
        Some(at) => vec![
            Span::styled(text[..at].to_owned(), style),
            Span::styled(word.to_owned(), word_style),
            Span::styled(text[at + word.len()..].to_owned(), style),
        ],
        None => vec![Span::styled(text.to_owned(), style)],
    }
}

/// "42s", "3m05s", "2h01m".
fn duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// One row of `area`.
pub(super) fn row(area: Rect, index: u16) -> Rect {
    Rect {
        y: area.y + index,
        height: 1,
        ..area
    }
}

/// `text` cut to `width` characters (the cut marked with `~`) and padded to it.
pub(super) fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text:<width$}")
    } else if width == 0 {
        String::new()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('~');
        cut
    }
}

/// Words wrapped to `width`, each line after `indent`; a word longer than a line (a
/// wallet address in a miner's command line) is cut into pieces.
pub(super) fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let room = width.saturating_sub(indent.len()).max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    let pieces: Vec<String> = text
        .split_whitespace()
        .flat_map(|word| {
            let chars: Vec<char> = word.chars().collect();
            chars
                .chunks(room)
                .map(|piece| piece.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect();
    for word in &pieces {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            lines.push(format!("{indent}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(format!("{indent}{line}"));
    }
    lines
}

/// How a verdict mark is coloured.
pub(super) fn verdict_style(verdict: Option<Verdict>) -> Style {
    match verdict {
        Some(Verdict::Suspicious) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Some(Verdict::CloudAgent) => Style::new().fg(Color::Cyan),
        _ => Style::new(),
    }
}

pub(super) fn foreign_style() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

/// The bottom line: the keys of a screen, the longest variant that fits.
pub(super) fn keys_line(variants: &[&str], width: u16) -> Line<'static> {
    let width = usize::from(width);
    let text = variants
        .iter()
        .find(|text| text.len() <= width)
        .unwrap_or(variants.last().expect("at least one variant"));
    Line::styled(
        fit(text, width),
        Style::new().add_modifier(Modifier::REVERSED),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_and_pads() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc~");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn wrap_keeps_words_and_indent() {
        assert_eq!(
            wrap("one two three four", 12, "  "),
            ["  one two", "  three four"]
        );
        assert_eq!(
            wrap("a 0123456789abcdef", 12, "  "),
            ["  a", "  0123456789", "  abcdef"]
        );
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration(Duration::from_secs(7260)), "2h01m");
    }
}
