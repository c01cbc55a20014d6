//! Where snapshots go: the JSON-lines log (and, later, the console and exports).

pub mod alerts;
pub mod console;
pub mod log;
pub mod output;
pub mod schema;
pub mod summary;

#[cfg(test)]
mod fixtures;
