//! `target/bench/results.json`: one record per measurement, under a header naming the
//! machine.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result};

use super::json::Value;
use crate::cmd;

/// One measurement: what was measured, how, and its spread over the runs.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub name: String,
    pub tool: String,
    pub hook: Option<String>,
    pub traffic: Option<String>,
    pub command: String,
    pub unit: String,
    pub runs: usize,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
    pub note: Option<String>,
}

impl Record {
    pub fn new(name: impl Into<String>, tool: &str, unit: &str) -> Self {
        Self {
            name: name.into(),
            tool: tool.into(),
            unit: unit.into(),
            ..Self::default()
        }
    }

    /// Runs, min, median and max of `samples`.
    pub fn samples(mut self, samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        self.runs = sorted.len();
        self.min = sorted.first().copied();
        self.max = sorted.last().copied();
        self.median = median(&sorted);
        self
    }

    pub fn hook(mut self, hook: Option<&str>) -> Self {
        self.hook = hook.map(str::to_owned);
        self
    }

    pub fn traffic(mut self, traffic: &str) -> Self {
        self.traffic = Some(traffic.into());
        self
    }

    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        if !note.is_empty() {
            self.note = Some(note);
        }
        self
    }

    fn to_json(&self) -> Value {
        Value::Obj(vec![
            ("name".into(), self.name.as_str().into()),
            ("tool".into(), self.tool.as_str().into()),
            ("hook".into(), self.hook.clone().into()),
            ("traffic".into(), self.traffic.clone().into()),
            ("command".into(), self.command.as_str().into()),
            ("unit".into(), self.unit.as_str().into()),
            ("runs".into(), (self.runs as f64).into()),
            ("min".into(), self.min.into()),
            ("median".into(), self.median.into()),
            ("max".into(), self.max.into()),
            ("note".into(), self.note.clone().into()),
        ])
    }
}

/// The median of sorted samples (the mean of the middle two for an even count).
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The machine and the session.
#[derive(Clone, Debug)]
pub struct Header {
    pub command: String,
    pub kernel: String,
    pub cpu: String,
    pub nproc: usize,
    pub date: String,
    pub notes: Vec<String>,
}

impl Header {
    /// A fixed header for the tables' tests.
    #[cfg(test)]
    pub fn example() -> Self {
        Self {
            command: "cargo xtask bench".into(),
            kernel: "6.18".into(),
            cpu: "EPYC".into(),
            nproc: 2,
            date: "2026-12-03".into(),
            notes: vec![],
        }
    }

    pub fn collect(command: &str) -> Result<Self> {
        let kernel = cmd::output(Command::new("uname").arg("-r"))?
            .trim()
            .to_owned();
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").context("reading /proc/cpuinfo")?;
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown", |(_, model)| model.trim())
            .to_owned();
        let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
        let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?
            .trim()
            .to_owned();
        Ok(Self {
            command: command.into(),
            kernel,
            cpu,
            nproc,
            date,
            notes: Vec::new(),
        })
    }

    /// One line for the docs: `Machine: AMD EPYC, 2 CPUs, kernel 6.18...; 2026-11-25 14:00 UTC`.
    pub fn machine_line(&self) -> String {
        format!(
            "{}, {} CPUs, kernel `{}`; {}",
            self.cpu, self.nproc, self.kernel, self.date
        )
    }
}

/// Writes the header and the records as JSON.
pub fn write(path: &Path, header: &Header, records: &[Record]) -> Result<()> {
    let doc = Value::Obj(vec![
        ("command".into(), header.command.as_str().into()),
        (
            "machine".into(),
            Value::Obj(vec![
                ("kernel".into(), header.kernel.as_str().into()),
                ("cpu".into(), header.cpu.as_str().into()),
                ("nproc".into(), (header.nproc as f64).into()),
            ]),
        ),
        ("date".into(), header.date.as_str().into()),
        (
            "notes".into(),
            Value::Arr(header.notes.iter().map(|n| n.as_str().into()).collect()),
        ),
        (
            "records".into(),
            Value::Arr(records.iter().map(Record::to_json).collect()),
        ),
    ]);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, doc.pretty() + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{Record, median};

    #[test]
    fn stats_of_samples() {
        let r = Record::new("x", "t", "u").samples(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!(
            (r.runs, r.min, r.median, r.max),
            (4, Some(1.0), Some(2.5), Some(10.0))
        );
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, 2.0, 7.0]), Some(2.0));
    }
}
