//! The pieces every screen is drawn with: text cut or wrapped to a width, one row of an
//! area, the keys line, the colours of the marks. A leaf: the screens ([`render`],
//! [`screen`], [`details`], [`help`]) use it, and it uses none of them.
//!
//! [`render`]: super::render
//! [`screen`]: super::screen
//! [`details`]: super::details
//! [`help`]: super::help

use ratatui::{
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use crate::enrich::verdict::Verdict;

/// One row of `area`.
pub fn row(area: Rect, index: u16) -> Rect {
    Rect {
        y: area.y + index,
        height: 1,
        ..area
    }
}

/// `text` cut to `width` characters (the cut marked with `~`) and padded to it.
pub fn fit(text: &str, width: usize) -> String {
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
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
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
pub fn verdict_style(verdict: Option<Verdict>) -> Style {
    match verdict {
        Some(Verdict::Suspicious) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Some(Verdict::CloudAgent) => Style::new().fg(Color::Cyan),
        _ => Style::new(),
    }
}

pub fn foreign_style() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

/// The bottom line: the keys of a screen, the longest variant that fits.
pub fn keys_line(variants: &[&str], width: u16) -> Line<'static> {
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

/// `text` in `style`, with its first `word` in `word_style`.
pub fn split_styled(text: &str, word: &str, style: Style, word_style: Style) -> Vec<Span<'static>> {
    match text.find(word) {
        Some(at) => vec![
            Span::styled(text[..at].to_owned(), style),
            Span::styled(word.to_owned(), word_style),
            Span::styled(text[at + word.len()..].to_owned(), style),
        ],
        None => vec![Span::styled(text.to_owned(), style)],
    }
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
}
