//! `type: "recorder"`: what happened to the flight recorder's files (`crate::recorder`):
//! a recording could not be made or written (a full disk), works again, or reached its
//! size. Each is written once per episode, as on stderr; metering and the log go on.

use serde::Serialize;

/// The `type` of a recorder line in the log.
pub const RECORDER_TYPE: &str = "recorder";

/// `type: "recorder"`. `event`: `open_failed`, `write_failed`, `resumed`, `full` or
/// `behind`; `path` the recording (or the directory, for `open_failed`); `error` the
/// system's message, when there is one; `message` the stderr line.
#[derive(Serialize)]
pub struct RecorderRecord<'a> {
    pub event: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub message: String,
}
