//! The main screen, iftop's layout: two rows per line (`=>` sent, `<=` received) with
//! the 2 s, 10 s and 40 s rates, cumulative and peak; the process on the second row;
//! country, verdict and foreign marks on the right; TX, RX and TOTAL at the bottom.
//!
//! ```text
//!  remote host / process              [2s]   10s    40s    cum   peak  CC V F
//! >198.51.100.7                  =>  8.00Mb 7.90Mb 7.90Mb 9.80MB 8.20Mb  NL ! F
//!  4242 xmrig (nobody)           <=   120kb  110kb  110kb  150kB  140kb
//! ```
//!
//! From 120 columns on, user and executable get columns of their own; from 160, the
//! command line too (on the second row). During a flood, a banner under the header
//! names what carries it (`console::flood`).

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    state::State,
    units::{self, Units},
    view::{Entry, View},
    widgets::{fit, foreign_style, keys_line, row, verdict_style},
};
use crate::flow::{Column, GroupBy, Rates};

/// Rows besides the lines: column header, status, TX, RX, TOTAL, keys.
const FIXED_ROWS: u16 = 6;

/// Keys, the longest variant that fits the width.
const KEYS: [&str; 2] = [
    "1-5 sort by 2s/10s/40s/cum/peak  t tx/rx/total  g group  p ports  P pause  \
     B bits/bytes  / filter  j/k select  Enter details  h help  q quit",
    "1-5,t:sort g:group /:filter p:port B:unit P:pause j/k,Enter:info h:help q:quit",
];

/// Column widths for a terminal width.
struct Columns {
    label: usize,
    /// User and executable columns (0: none, the user goes beside the process).
    user: usize,
    exe: usize,
    cmdline: bool,
}

/// Characters of a line besides its label and the wide columns: the mark, the arrow,
/// five numbers, country, verdict and foreign marks.
const NUMBERS_AND_MARKS: usize = 47;
const USER_WIDTH: usize = 10;

impl Columns {
    fn for_width(width: u16) -> Self {
        let width = usize::from(width);
        let wide = |label: usize| Columns {
            label,
            user: USER_WIDTH,
            exe: width - NUMBERS_AND_MARKS - label - USER_WIDTH - 2,
            cmdline: width >= 160,
        };
        match width {
            160.. => wide(41),
            120.. => wide(33),
            _ => Columns {
                label: width.saturating_sub(NUMBERS_AND_MARKS).max(8),
                user: 0,
                exe: 0,
                cmdline: false,
            },
        }
    }
}

pub fn render(state: &State, view: &View, frame: &mut Frame, area: Rect) {
    if area.height < FIXED_ROWS + 2 {
        frame.render_widget(Paragraph::new("flowmeter: the terminal is too small"), area);
        return;
    }
    let columns = Columns::for_width(area.width);
    // A flood's banner takes the first two rows under the header, where they leave a line.
    let banner = view
        .flood
        .as_ref()
        .filter(|_| area.height >= FIXED_ROWS + 4);
    let banner_rows = if banner.is_some() { 2 } else { 0 };
    let body_rows = area.height - FIXED_ROWS - banner_rows;
    let fit_lines = usize::from(body_rows / 2);
    let keys = view.keys();
    let selected = state.selected_position(&keys);
    // Scroll just enough for the selection to be on screen.
    let first = match selected {
        Some(index) if index >= fit_lines => index + 1 - fit_lines,
        _ => 0,
    };
    let shown = &view.rows[first.min(view.rows.len())..];
    let shown = &shown[..shown.len().min(fit_lines)];

    frame.render_widget(Paragraph::new(column_header(state, &columns)), row(area, 0));
    if let Some(banner) = banner {
        let style = Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        for (index, text) in banner.iter().enumerate() {
            let text = fit(&format!(" {text}"), usize::from(area.width));
            let line = Line::styled(text, style);
            frame.render_widget(Paragraph::new(line), row(area, 1 + index as u16));
        }
    }
    let mut lines = Vec::with_capacity(usize::from(body_rows));
    for (offset, entry) in shown.iter().enumerate() {
        let is_selected = selected == Some(first + offset);
        lines.extend(entry_lines(entry, state.units, &columns, is_selected));
    }
    if !view.started {
        lines.push(Line::from(" waiting for the first numbers..."));
    } else if view.rows.is_empty() {
        lines.push(Line::from(if view.matching.is_some() {
            " no line matches the filter (Esc clears it)"
        } else {
            " no traffic yet"
        }));
    }
    let body = Rect {
        y: area.y + 1 + banner_rows,
        height: body_rows,
        ..area
    };
    frame.render_widget(Paragraph::new(lines), body);

    let bottom = area.y + 1 + banner_rows + body_rows;
    let tail = Rect {
        y: bottom,
        height: FIXED_ROWS - 1,
        ..area
    };
    frame.render_widget(
        Paragraph::new(status(state, view, first, shown.len(), area.width)),
        row(tail, 0),
    );
    let totals = [
        ("TX sent", "=>", &view.totals.tx),
        ("RX received", "<=", &view.totals.rx),
        ("TOTAL", "  ", &view.totals.total),
    ];
    for (index, (name, arrow, rates)) in totals.into_iter().enumerate() {
        let text = format!(
            " {} {arrow}{}",
            fit(name, columns.label),
            numbers(rates, state.units)
        );
        frame.render_widget(Paragraph::new(text), row(tail, 1 + index as u16));
    }
    frame.render_widget(Paragraph::new(keys_line(&KEYS, area.width)), row(tail, 4));
}

/// The column names, with the sort column in brackets.
fn column_header(state: &State, columns: &Columns) -> Line<'static> {
    let title = match state.group_by {
        GroupBy::RemoteHost => "remote host / process",
        GroupBy::HostPair => "local <-> remote host / process",
        GroupBy::RemotePort => "remote port / process",
        GroupBy::LocalPort => "local port / process",
        GroupBy::Process => "process / remote host",
        GroupBy::Container => "container or unit / process",
    };
    let mut text = format!(" {}   ", fit(title, columns.label));
    for column in Column::ALL {
        let name = super::state::column_name(column);
        let name = if column == state.sort.column {
            format!("[{name}]")
        } else {
            name.to_owned()
        };
        text.push_str(&format!(" {name:>6}"));
    }
    text.push_str("  CC V F");
    if columns.user > 0 {
        text.push_str(&format!(" {:<w$} {}", "user", "exe", w = columns.user));
        if columns.cmdline {
            text.push_str(" / command line");
        }
    }
    Line::styled(text, Style::new().add_modifier(Modifier::BOLD))
}

/// " 8.00Mb 7.90Mb 7.90Mb 9.80MB 8.20Mb": rates, cum (bytes) and peak.
fn numbers(rates: &Rates, units: Units) -> String {
    format!(
        " {:>6} {:>6} {:>6} {:>6} {:>6}",
        units::rate(rates.last2, units),
        units::rate(rates.last10, units),
        units::rate(rates.last40, units),
        units::amount(rates.cum),
        units::rate(rates.peak, units),
    )
}

/// A line's two rows.
fn entry_lines(
    entry: &Entry,
    units: Units,
    columns: &Columns,
    selected: bool,
) -> [Line<'static>; 2] {
    let mark = if selected { ">" } else { " " };
    let with_user = |text: &str| {
        if columns.user == 0 && !entry.user.is_empty() {
            format!("{text} ({})", entry.user)
        } else {
            text.to_owned()
        }
    };
    let (label, second) = if entry.user_on_label {
        (with_user(&entry.label), entry.second.clone())
    } else {
        (entry.label.clone(), with_user(&entry.second))
    };
    let verdict = entry.verdict.map_or(' ', |verdict| verdict.mark());
    let foreign = if entry.foreign { 'F' } else { ' ' };

    let mut first = vec![
        Span::raw(format!(
            "{mark}{} =>{}  {:<2} ",
            fit(&label, columns.label),
            numbers(&entry.tx, units),
            entry.place
        )),
        Span::styled(verdict.to_string(), verdict_style(entry.verdict)),
        Span::raw(" "),
        Span::styled(foreign.to_string(), foreign_style()),
    ];
    let mut second = vec![Span::raw(format!(
        "{mark}{} <={}",
        fit(&second, columns.label),
        numbers(&entry.rx, units)
    ))];
    if columns.user > 0 {
        first.push(Span::raw(format!(
            " {} {}",
            fit(&entry.user, columns.user),
            fit(&entry.exe, columns.exe)
        )));
        if columns.cmdline {
            second.push(Span::raw(format!(
                "{:8} {}",
                "",
                fit(&entry.cmdline, columns.user + 1 + columns.exe)
            )));
        }
    }
    let style = if selected {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    [
        Line::from(first).style(style),
        Line::from(second).style(style),
    ]
}

/// The line between the hosts and the totals: which lines are shown, the filter, and
/// what the marks mean; or the filter being typed.
fn status(state: &State, view: &View, first: usize, shown: usize, width: u16) -> Line<'static> {
    let width = usize::from(width);
    if let Some(input) = &state.input {
        let text =
            format!(" filter: {input}_   (Enter applies, Esc clears; host, process or country)");
        return Line::styled(fit(&text, width), Style::new().add_modifier(Modifier::BOLD));
    }
    let what = match state.group_by {
        GroupBy::RemoteHost => "host",
        GroupBy::HostPair => "host pair",
        GroupBy::RemotePort => "remote port",
        GroupBy::LocalPort => "local port",
        GroupBy::Process => "process",
        GroupBy::Container => "container or unit",
    };
    let what = match (view.lines, state.group_by) {
        (1, _) => what.to_owned(),
        (_, GroupBy::Process) => "processes".to_owned(),
        (_, GroupBy::Container) => "containers or units".to_owned(),
        _ => format!("{what}s"),
    };
    let listed = view.matching.unwrap_or(view.lines);
    let range = if shown > 0 && shown < listed {
        format!("{}-{} of {listed}", first + 1, first + shown)
    } else {
        listed.to_string()
    };
    let range = match view.matching {
        Some(_) => format!(
            "filter '{}': {range} of {} {what}",
            state.filter, view.lines
        ),
        None => format!("{range} {what}"),
    };
    let legend = "V: ! suspicious C cloud agent  F: foreign";
    // Traffic in no line is told first, with what to do; then how much of it has a
    // process, and why the rest has none; the legend follows where it fits (it is on
    // the help screen too).
    let mut parts = vec![range];
    if view.unattributed.unattributed_packets > 0 {
        parts.push(view.unattributed.to_string());
    }
    let fits = |parts: &[String], more: &str| {
        let used: usize = parts.iter().map(|part| part.chars().count() + 4).sum();
        used + 3 + more.chars().count() < width
    };
    // As many of the main reasons as fit.
    let coverage = (0..=2)
        .rev()
        .filter_map(|reasons| view.coverage.told(reasons))
        .map(|told| told.to_string())
        .find(|told| fits(&parts, told));
    parts.extend(coverage);
    if fits(&parts, legend) {
        parts.push(legend.to_owned());
    }
    let text = format!("-- {} ", parts.join(" -- "));
    Line::from(fit(&format!("{text:-<width$}"), width))
}
