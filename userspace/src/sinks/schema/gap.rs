//! `type: "gap"`: lines the log could not write during an outage, counted, written once
//! writing works again (`sinks::output::Gap::record` fills it in).

use serde::Serialize;

/// `type: "gap"` (schema version 1): lines that were never written, counted. `since` and
/// `until` are RFC 3339 times of the first failed write and of the first good one after it;
/// `error` is the first failure's message.
#[derive(Serialize)]
pub struct GapRecord<'a> {
    pub lost_lines: u64,
    pub lost_bytes: u64,
    pub lost_batches: u64,
    pub since: String,
    pub until: String,
    pub error: &'a str,
}
