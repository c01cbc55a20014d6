//! The key reducer: one key and the state in, the new state and what the screen must
//! do out. Pure, so every key is a unit test.

use super::state::{RowKey, State};
use crate::flow::{Column, Direction, GroupBy};

/// A key, as the console understands it (the terminal's events are mapped to these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Ctrl-C: quits from anywhere, also while typing a filter.
    Interrupt,
}

/// What the screen must do after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The key means nothing here.
    Ignore,
    /// Draw again: only how the same numbers are shown changed.
    Redraw,
    /// Rebuild the lines from the aggregator (grouping, sort, filter, details), then draw;
    /// also while paused, so the new choice is honoured once.
    Refresh,
    Quit,
}

/// Lines one page key moves the selection by.
const PAGE: usize = 8;

/// Applies `key` to `state`. `rows` are the keys of the lines on the main screen, in
/// their order, for moving the selection.
pub fn reduce(state: &mut State, key: Key, rows: &[RowKey]) -> Action {
    if key == Key::Interrupt {
        return Action::Quit;
    }
    if state.input.is_some() {
        return filter_input(state, key);
    }
    if state.help {
        return match key {
            Key::Char('q') => Action::Quit,
            Key::Esc | Key::Enter | Key::Char('h' | '?') => {
                state.help = false;
                Action::Redraw
            }
            _ => Action::Ignore,
        };
    }
    // Keys that work on every screen.
    match key {
        Key::Char('q') => return Action::Quit,
        Key::Char('h' | '?') => {
            state.help = true;
            return Action::Redraw;
        }
        Key::Char('B') => {
            state.units = state.units.toggled();
            return Action::Redraw;
        }
        Key::Char('P') => {
            state.paused = !state.paused;
            // Unpausing shows the numbers of now at once.
            return if state.paused {
                Action::Redraw
            } else {
                Action::Refresh
            };
        }
        Key::Char('p') => {
            state.show_ports = !state.show_ports;
            return Action::Refresh;
        }
        _ => {}
    }
    if state.details {
        details(state, key)
    } else {
        main_screen(state, key, rows)
    }
}

fn main_screen(state: &mut State, key: Key, rows: &[RowKey]) -> Action {
    match key {
        Key::Char(digit @ '1'..='5') => {
            state.sort.column = Column::ALL[digit as usize - '1' as usize];
            Action::Refresh
        }
        Key::Char('t') => {
            state.sort.direction = match state.sort.direction {
                Direction::Total => Direction::Tx,
                Direction::Tx => Direction::Rx,
                Direction::Rx => Direction::Total,
            };
            Action::Refresh
        }
        Key::Char('g') => {
            let next = GroupBy::ALL
                .iter()
                .position(|&group_by| group_by == state.group_by)
                .map_or(0, |index| (index + 1) % GroupBy::ALL.len());
            state.group_by = GroupBy::ALL[next];
            // Keys of another grouping never match: start again from the top.
            state.selected = None;
            state.selected_index = 0;
            Action::Refresh
        }
        Key::Char('/') => {
            state.input = Some(state.filter.clone());
            Action::Redraw
        }
        Key::Up | Key::Char('k') => select_by(state, rows, -1),
        Key::Down | Key::Char('j') => select_by(state, rows, 1),
        Key::PageUp => select_by(state, rows, -(PAGE as isize)),
        Key::PageDown => select_by(state, rows, PAGE as isize),
        Key::Home => select_at(state, rows, 0),
        Key::End => select_at(state, rows, rows.len().saturating_sub(1)),
        Key::Enter => {
            if state.selected.is_none() {
                select_at(state, rows, 0);
            }
            if state.selected.is_none() {
                return Action::Ignore;
            }
            state.details = true;
            state.details_scroll = 0;
            Action::Refresh
        }
        Key::Esc if !state.filter.is_empty() => {
            state.filter.clear();
            Action::Refresh
        }
        Key::Esc if state.selected.is_some() => {
            state.selected = None;
            Action::Redraw
        }
        _ => Action::Ignore,
    }
}

fn details(state: &mut State, key: Key) -> Action {
    match key {
        Key::Esc | Key::Backspace => {
            state.details = false;
            Action::Refresh
        }
        Key::Up | Key::Char('k') => scroll(state, -1),
        Key::Down | Key::Char('j') => scroll(state, 1),
        Key::PageUp => scroll(state, -(PAGE as i32)),
        Key::PageDown => scroll(state, PAGE as i32),
        Key::Home => scroll(state, -i32::from(u16::MAX)),
        _ => Action::Ignore,
    }
}

fn filter_input(state: &mut State, key: Key) -> Action {
    let Some(input) = &mut state.input else {
        return Action::Ignore;
    };
    match key {
        Key::Char(c) if !c.is_control() => {
            input.push(c);
            Action::Redraw
        }
        Key::Backspace => {
            input.pop();
            Action::Redraw
        }
        Key::Enter => {
            state.filter = state.input.take().unwrap_or_default().trim().to_owned();
            Action::Refresh
        }
        Key::Esc => {
            state.input = None;
            state.filter.clear();
            Action::Refresh
        }
        _ => Action::Ignore,
    }
}

/// Moves the selection `by` lines (negative: up), clamped; with nothing selected, the
/// first key down or up selects the top line.
fn select_by(state: &mut State, rows: &[RowKey], by: isize) -> Action {
    let index = match state.selected_position(rows) {
        Some(index) => index.saturating_add_signed(by),
        None => 0,
    };
    select_at(state, rows, index)
}

fn select_at(state: &mut State, rows: &[RowKey], index: usize) -> Action {
    if rows.is_empty() {
        return Action::Ignore;
    }
    let index = index.min(rows.len() - 1);
    state.selected = Some(rows[index].clone());
    state.selected_index = index;
    Action::Redraw
}

fn scroll(state: &mut State, by: i32) -> Action {
    let scrolled = (i32::from(state.details_scroll) + by).clamp(0, i32::from(u16::MAX));
    state.details_scroll = scrolled as u16;
    Action::Redraw
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::{
        console::units::Units,
        flow::{GroupKey, SortBy},
    };

    fn host(last: u8) -> RowKey {
        GroupKey::RemoteHost(IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)))
    }

    fn rows() -> Vec<RowKey> {
        (1..=5).map(host).collect()
    }

    fn press(state: &mut State, keys: &[Key]) -> Action {
        let rows = rows();
        let mut action = Action::Ignore;
        for &key in keys {
            action = reduce(state, key, &rows);
        }
        action
    }

    #[test]
    fn digits_choose_the_sort_column() {
        let mut state = State::default();
        for (digit, column) in ['1', '2', '3', '4', '5'].into_iter().zip(Column::ALL) {
            assert_eq!(press(&mut state, &[Key::Char(digit)]), Action::Refresh);
            assert_eq!(state.sort.column, column);
        }
        assert_eq!(state.sort.direction, Direction::Total);
    }

    #[test]
    fn t_cycles_the_sort_direction() {
        let mut state = State::default();
        let mut seen = Vec::new();
        for _ in 0..3 {
            press(&mut state, &[Key::Char('t')]);
            seen.push(state.sort.direction);
        }
        assert_eq!(seen, [Direction::Tx, Direction::Rx, Direction::Total]);
    }

    #[test]
    fn g_cycles_the_grouping_and_drops_the_selection() {
        let mut state = State::default();
        press(&mut state, &[Key::Down, Key::Down]);
        assert_eq!(state.selected, Some(host(2)));
        let mut seen = Vec::new();
        for _ in 0..GroupBy::ALL.len() {
            assert_eq!(press(&mut state, &[Key::Char('g')]), Action::Refresh);
            seen.push(state.group_by);
        }
        assert_eq!(
            seen,
            [
                GroupBy::HostPair,
                GroupBy::RemotePort,
                GroupBy::LocalPort,
                GroupBy::Process,
                GroupBy::Container,
                GroupBy::RemoteHost
            ]
        );
        assert_eq!(state.selected, None);
    }

    #[test]
    fn p_toggles_ports_capital_p_pauses_capital_b_switches_units() {
        let mut state = State::new(Units::Bits);
        assert_eq!(press(&mut state, &[Key::Char('p')]), Action::Refresh);
        assert!(state.show_ports);
        assert_eq!(press(&mut state, &[Key::Char('P')]), Action::Redraw);
        assert!(state.paused);
        assert_eq!(
            press(&mut state, &[Key::Char('P')]),
            Action::Refresh,
            "unpausing shows the numbers of now"
        );
        assert!(!state.paused);
        assert_eq!(press(&mut state, &[Key::Char('B')]), Action::Redraw);
        assert_eq!(state.units, Units::Bytes);
        press(&mut state, &[Key::Char('B')]);
        assert_eq!(state.units, Units::Bits);
    }

    #[test]
    fn slash_types_a_filter_enter_applies_it_esc_clears_it() {
        let mut state = State::default();
        assert_eq!(press(&mut state, &[Key::Char('/')]), Action::Redraw);
        assert_eq!(state.input.as_deref(), Some(""));
        // While typing, letters are text, not commands.
        press(
            &mut state,
            &[Key::Char('q'), Key::Char('n'), Key::Char('x')],
        );
        press(&mut state, &[Key::Backspace]);
        assert_eq!(state.input.as_deref(), Some("qn"));
        assert_eq!(state.filter, "", "not applied before Enter");
        assert_eq!(press(&mut state, &[Key::Enter]), Action::Refresh);
        assert_eq!(
            (state.filter.as_str(), state.input.as_deref()),
            ("qn", None)
        );

        // `/` again edits the filter in force; Esc drops both.
        press(&mut state, &[Key::Char('/')]);
        assert_eq!(state.input.as_deref(), Some("qn"));
        assert_eq!(press(&mut state, &[Key::Esc]), Action::Refresh);
        assert_eq!((state.filter.as_str(), state.input.as_deref()), ("", None));

        // Esc on the main screen clears a filter in force.
        press(&mut state, &[Key::Char('/'), Key::Char('N'), Key::Enter]);
        assert_eq!(state.filter, "N");
        assert_eq!(press(&mut state, &[Key::Esc]), Action::Refresh);
        assert_eq!(state.filter, "");
    }

    #[test]
    fn arrows_and_jk_move_the_selection_within_the_lines() {
        let mut state = State::default();
        assert_eq!(press(&mut state, &[Key::Down]), Action::Redraw);
        assert_eq!(
            state.selected,
            Some(host(1)),
            "the first key selects the top"
        );
        press(&mut state, &[Key::Char('j'), Key::Down]);
        assert_eq!(state.selected, Some(host(3)));
        press(&mut state, &[Key::Char('k')]);
        assert_eq!(state.selected, Some(host(2)));
        press(&mut state, &[Key::Up, Key::Up, Key::Up]);
        assert_eq!(state.selected, Some(host(1)), "stops at the top");
        press(&mut state, &[Key::End]);
        assert_eq!(state.selected, Some(host(5)));
        press(&mut state, &[Key::Down]);
        assert_eq!(state.selected, Some(host(5)), "stops at the bottom");
        press(&mut state, &[Key::PageUp]);
        assert_eq!(state.selected, Some(host(1)));
        press(&mut state, &[Key::PageDown]);
        assert_eq!(state.selected, Some(host(5)));
        press(&mut state, &[Key::Home]);
        assert_eq!(state.selected, Some(host(1)));
        assert_eq!(press(&mut state, &[Key::Esc]), Action::Redraw);
        assert_eq!(state.selected, None);
        assert_eq!(reduce(&mut state, Key::Down, &[]), Action::Ignore);
    }

    #[test]
    fn enter_opens_the_details_of_the_selection_or_the_top_line() {
        let mut state = State::default();
        assert_eq!(press(&mut state, &[Key::Enter]), Action::Refresh);
        assert!(state.details);
        assert_eq!(state.selected, Some(host(1)));

        // In details, arrows scroll; sorting keys do nothing; Esc goes back.
        press(&mut state, &[Key::Down, Key::Char('j'), Key::Up]);
        assert_eq!(state.details_scroll, 1);
        assert_eq!(press(&mut state, &[Key::Char('1')]), Action::Ignore);
        assert_eq!(press(&mut state, &[Key::Esc]), Action::Refresh);
        assert!(!state.details);
        assert_eq!(state.selected, Some(host(1)), "back on the same line");

        let mut state = State::default();
        assert_eq!(reduce(&mut state, Key::Enter, &[]), Action::Ignore);
        assert!(!state.details, "no line, no details");
    }

    #[test]
    fn h_and_question_mark_open_help_esc_closes_it() {
        for key in ['h', '?'] {
            let mut state = State::default();
            assert_eq!(press(&mut state, &[Key::Char(key)]), Action::Redraw);
            assert!(state.help);
            assert_eq!(
                press(&mut state, &[Key::Char('g')]),
                Action::Ignore,
                "help takes no other keys"
            );
            assert_eq!(state.group_by, GroupBy::RemoteHost);
            assert_eq!(press(&mut state, &[Key::Esc]), Action::Redraw);
            assert!(!state.help);
        }
        // Help over details returns to the details.
        let mut state = State::default();
        press(&mut state, &[Key::Enter, Key::Char('?')]);
        assert!(state.help && state.details);
        press(&mut state, &[Key::Char('?')]);
        assert!(!state.help && state.details);
    }

    #[test]
    fn q_and_ctrl_c_quit_from_every_screen() {
        let screens: [&[Key]; 3] = [&[], &[Key::Enter], &[Key::Char('h')]];
        for opened in screens {
            let mut state = State::default();
            press(&mut state, opened);
            assert_eq!(press(&mut state.clone(), &[Key::Char('q')]), Action::Quit);
            assert_eq!(press(&mut state, &[Key::Interrupt]), Action::Quit);
        }
        let mut typing = State::default();
        press(&mut typing, &[Key::Char('/')]);
        assert_eq!(press(&mut typing, &[Key::Char('q')]), Action::Redraw);
        assert_eq!(press(&mut typing, &[Key::Interrupt]), Action::Quit);
    }

    #[test]
    fn unknown_keys_change_nothing() {
        let mut state = State::default();
        let before = state.clone();
        assert_eq!(press(&mut state, &[Key::Char('z')]), Action::Ignore);
        assert_eq!(state, before);
        assert_eq!(state.sort, SortBy::default());
    }

    #[test]
    fn selection_follows_its_line_when_the_order_changes() {
        let mut state = State::default();
        press(&mut state, &[Key::Down, Key::Down]);
        assert_eq!(state.selected, Some(host(2)));
        // host 2 falls to the bottom.
        let reordered = vec![host(1), host(3), host(4), host(5), host(2)];
        state.follow(&reordered);
        assert_eq!(state.selected, Some(host(2)));
        assert_eq!(state.selected_position(&reordered), Some(4));
        // Down from there stays on the last line: moving is by the new order.
        reduce(&mut state, Key::Up, &reordered);
        assert_eq!(state.selected, Some(host(5)));
        // A line that disappears hands the selection to the line at its place.
        let gone = vec![host(1), host(3), host(4), host(2)];
        state.follow(&gone);
        assert_eq!(state.selected, Some(host(2)));
        state.follow(&[]);
        assert_eq!(state.selected, None);
    }
}
