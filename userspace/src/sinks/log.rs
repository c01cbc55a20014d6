//! The JSON-lines log: one object per line, each interval written whole and flushed.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::schema::{self, Line, SCHEMA_VERSION};
use crate::datapath::{Attachment, Snapshot};

/// Where the log goes.
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    /// `-` is standard output; anything else a file path.
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

pub struct LogSink {
    out: Box<dyn Write + Send>,
    /// One interval's lines, written with a single write and flush.
    buffer: Vec<u8>,
}

impl LogSink {
    /// Opens the output; a file is created if needed and appended to.
    pub fn open(output: &Output) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match output {
            Output::Stdout => Box::new(io::stdout()),
            Output::File(path) => Box::new(BufWriter::new(open_append(path)?)),
        };
        Ok(Self::new(out))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            buffer: Vec::with_capacity(64 * 1024),
        }
    }

    /// The `start` record: what is attached where, and how the log will be written.
    pub fn write_start(
        &mut self,
        at: SystemTime,
        attachments: &[Attachment],
        interval: Duration,
        flow_capacity: u32,
    ) -> io::Result<()> {
        let ts = schema::timestamp(at);
        let start = schema::Start {
            version: env!("CARGO_PKG_VERSION"),
            interval_s: interval.as_secs_f64(),
            flow_capacity,
            interfaces: attachments
                .iter()
                .map(schema::StartInterface::from_attachment)
                .collect(),
        };
        self.push("start", &ts, start)?;
        self.flush_lines()
    }

    /// One `flow` line per flow that moved, then one `totals` line per interface.
    pub fn write_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let ts = schema::timestamp(snapshot.at);
        for flow in &snapshot.flows {
            self.push("flow", &ts, schema::Flow::new(flow, snapshot.interval))?;
        }
        for totals in &snapshot.interfaces {
            self.push(
                "totals",
                &ts,
                schema::Totals::new(totals, snapshot.interval),
            )?;
        }
        self.flush_lines()
    }

    fn push<T: Serialize>(&mut self, kind: &'static str, ts: &str, record: T) -> io::Result<()> {
        let line = Line {
            v: SCHEMA_VERSION,
            kind,
            ts,
            record,
        };
        serde_json::to_writer(&mut self.buffer, &line)?;
        self.buffer.push(b'\n');
        Ok(())
    }

    fn flush_lines(&mut self) -> io::Result<()> {
        let result = self
            .out
            .write_all(&self.buffer)
            .and_then(|()| self.out.flush());
        self.buffer.clear();
        result
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}
