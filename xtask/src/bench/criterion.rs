//! The userspace benches (criterion): run them, then read what each wrote in
//! `target/criterion/GROUP/PARAM/new/estimates.json`, and the figures some print
//! besides (the aggregator's memory per flow, the log's bytes per hour).

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context as _, Result};

use super::{json, results::Record};
use crate::{Project, cmd};

/// Runs each of `benches` (`-- --quick` in quick mode) and returns one record per
/// benchmark it measured: the median time per iteration with its 95% confidence interval.
/// `flow_table_read` needs root (it creates BPF maps).
pub fn run(project: &Project, target: &Path, quick: bool, benches: &[&str]) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for &bench in benches {
        let started = SystemTime::now();
        let mut cargo = project.cargo(["bench", "--bench", bench]);
        if quick {
            cargo.args(["--", "--quick"]);
        }
        let line = cmd::display(&cargo);
        let output = super::run_teed(&mut cargo)?;
        for dir in estimates_since(&target.join("criterion"), started)? {
            records.push(record(&dir, &line)?);
        }
        records.extend(memory(&output, &line));
        records.extend(log_volume(&output, &line));
    }
    Ok(records)
}

/// The log_cycle bench's `log_cycle/10000 bytes per hour: interval_v1 N, timeouts_v2 N`.
fn log_volume(output: &str, command: &str) -> Vec<Record> {
    let Some((flows, modes)) = output.lines().find_map(|l| {
        l.strip_prefix("log_cycle/")?
            .split_once(" bytes per hour: ")
    }) else {
        return Vec::new();
    };
    modes
        .split(", ")
        .filter_map(|mode| {
            let (name, bytes) = mode.split_once(' ')?;
            let bytes: f64 = bytes.trim().parse().ok()?;
            Some(
                Record::new(
                    format!("log-volume/{flows}/{name}"),
                    "criterion",
                    "bytes per hour",
                )
                .command(command)
                .traffic(&format!("{flows} steady flows, one-second intervals"))
                .samples(&[bytes]),
            )
        })
        .collect()
}

/// The aggregate bench's `aggregate/N: B bytes per flow with 40 s of history (...)` lines.
fn memory(output: &str, command: &str) -> Vec<Record> {
    output
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.split_once(": ")?;
            let bytes: f64 = rest.split_once(" bytes per flow")?.0.parse().ok()?;
            let flows = id.strip_prefix("aggregate/")?;
            Some(
                Record::new(
                    format!("memory/aggregate/{flows}"),
                    "criterion",
                    "bytes per flow",
                )
                .command(command)
                .samples(&[bytes]),
            )
        })
        .collect()
}

/// The `new/` directories whose estimates were written since `since`.
fn estimates_since(root: &Path, since: SystemTime) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() || entry.file_name() == "report" {
                continue;
            }
            let estimates = path.join("estimates.json");
            if entry.file_name() == "new" && estimates.is_file() {
                let modified = fs::metadata(&estimates).and_then(|m| m.modified());
                if modified.is_ok_and(|m| m >= since) {
                    found.push(path);
                }
            } else if depth < 4 {
                stack.push((path, depth + 1));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn record(new_dir: &Path, command: &str) -> Result<Record> {
    let read = |file: &str| -> Result<json::Value> {
        let path = new_dir.join(file);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        json::parse(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let sample = read("sample.json")?;
    let id = benchmark
        .get("full_id")
        .and_then(json::Value::as_str)
        .context("no full_id in benchmark.json")?;
    let number = |path: &[&str]| estimates.at(path).and_then(json::Value::as_f64);
    let runs = match sample.get("times") {
        Some(json::Value::Arr(times)) => times.len(),
        _ => 0,
    };
    let mut record = Record::new(format!("criterion/{id}"), "criterion", "ns per iteration")
        .command(command)
        .note("min and max: the 95% confidence interval of the median");
    record.runs = runs;
    record.median = number(&["median", "point_estimate"]);
    record.min = number(&["median", "confidence_interval", "lower_bound"]);
    record.max = number(&["median", "confidence_interval", "upper_bound"]);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::log_volume;

    #[test]
    fn reads_the_log_volume() {
        let out = "warming up\nlog_cycle/10000 bytes per hour: interval_v1 13940000000, \
                   timeouts_v2 285900000\n";
        let r = log_volume(out, "cargo bench --bench log_cycle");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "log-volume/10000/interval_v1");
        assert_eq!(r[1].median, Some(285_900_000.0));
    }
}
