//! What the person at the console has chosen: grouping, sort, units, filter, the selected
//! line and which screen is open. Changed only by [`reduce`](super::keys::reduce).

use std::sync::Arc;

use super::units::Units;
use crate::flow::{Column, Direction, GroupBy, GroupKey, SortBy};

/// A process as a line key when grouping by process. Ordered by name first, so lines of
/// equal traffic are listed alphabetically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub comm: Arc<str>,
    pub pid: u32,
}

/// The key of one line of the main screen.
pub type RowKey = GroupKey<ProcessKey>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub group_by: GroupBy,
    pub sort: SortBy,
    /// The numbers on screen stay as they are; metering goes on behind.
    pub paused: bool,
    /// The filter in force: lines whose host, process or country contain it.
    pub filter: String,
    /// The filter being typed after `/`, until Enter applies it or Esc drops it.
    pub input: Option<String>,
    /// Hosts get `:port` appended (when the grouping has hosts).
    pub show_ports: bool,
    pub units: Units,
    /// The selected line, by key, so it stays on the same host when the order changes.
    pub selected: Option<RowKey>,
    /// Where the selection was last seen: if its line disappears, the selection moves
    /// to the line now at that place.
    pub selected_index: usize,
    /// The details screen of the selected line is open.
    pub details: bool,
    /// Lines the details screen is scrolled down by.
    pub details_scroll: u16,
    /// The help screen is open (over whatever screen was open).
    pub help: bool,
}

impl State {
    pub fn new(units: Units) -> Self {
        Self {
            units,
            ..Self::default()
        }
    }

    /// Keeps the selection on its line after `rows` (the lines in order) changed: by key
    /// if the line is still there, else the line now at its last place.
    pub fn follow(&mut self, rows: &[RowKey]) {
        let Some(selected) = &self.selected else {
            return;
        };
        if let Some(index) = rows.iter().position(|key| key == selected) {
            self.selected_index = index;
        } else if rows.is_empty() {
            self.selected = None;
            self.selected_index = 0;
        } else {
            self.selected_index = self.selected_index.min(rows.len() - 1);
            self.selected = Some(rows[self.selected_index].clone());
        }
    }

    /// The selected line's place in `rows`, if it is there.
    pub fn selected_position(&self, rows: &[RowKey]) -> Option<usize> {
        let selected = self.selected.as_ref()?;
        rows.iter().position(|key| key == selected)
    }
}

/// How a grouping is named on screen.
pub fn group_name(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::RemoteHost => "remote host",
        GroupBy::HostPair => "host pair",
        GroupBy::RemotePort => "remote port",
        GroupBy::LocalPort => "local port",
        GroupBy::Process => "process",
        GroupBy::Container => "container or unit",
    }
}

/// How a sort is named on screen: "2s total", "cum tx".
pub fn sort_name(sort: SortBy) -> String {
    format!(
        "{} {}",
        column_name(sort.column),
        direction_name(sort.direction)
    )
}

pub fn column_name(column: Column) -> &'static str {
    match column {
        Column::Last2 => "2s",
        Column::Last10 => "10s",
        Column::Last40 => "40s",
        Column::Cum => "cum",
        Column::Peak => "peak",
    }
}

pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Total => "total",
        Direction::Tx => "tx",
        Direction::Rx => "rx",
    }
}
