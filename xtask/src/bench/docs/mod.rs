//! The generated parts of docs/benchmarks.md: each lies between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->` and is rewritten whole; the text around them is left alone.

mod criterion;
mod exports;
mod kernel;
mod program;
mod veth;

use std::{fs, path::Path};

use anyhow::{Context as _, Result};

use super::{
    Plan,
    meters::Meter,
    results::{Header, Record},
};

/// Rewrites the blocks that have data in `records`, and returns them (name, text).
pub fn update(
    path: &Path,
    header: &Header,
    records: &[Record],
    plan: &Plan,
    meters: &[Meter],
) -> Result<Vec<(&'static str, String)>> {
    let has = |prefix: &str| records.iter().any(|r| r.name.starts_with(prefix));
    let blocks = [
        (
            "throughput",
            has("throughput/none/udp").then(|| veth::throughput(header, records, plan, meters)),
        ),
        (
            "flood",
            has("throughput/none/flood").then(|| veth::flood(header, records, plan, meters)),
        ),
        (
            "own-cpu",
            has("own-cpu/idle").then(|| program::whole_program(header, records, plan)),
        ),
        (
            "exports",
            has("exports-cpu/plain").then(|| exports::exports(header, records, plan)),
        ),
        (
            "userspace",
            has("criterion/reader_cycle/").then(|| criterion::userspace(header, records, plan)),
        ),
        (
            "flow-table-read",
            has("criterion/flow_table_read/")
                .then(|| criterion::flow_table_read(header, records, plan)),
        ),
        (
            "log-cycle",
            has("log-volume/").then(|| criterion::log_cycle(header, records, plan)),
        ),
        (
            "console",
            has("criterion/console_key/").then(|| criterion::console(header, records, plan)),
        ),
        (
            "kernel",
            has("kernel/").then(|| kernel::kernel(header, records, plan)),
        ),
    ];
    let mut text =
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut written = Vec::new();
    for (name, body) in blocks {
        if let Some(body) = body {
            text = replace_block(&text, name, &body);
            written.push((name, body));
        }
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}

fn replace_block(text: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    match (text.find(&open), text.find(&close)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{open}\n{body}{}", &text[..start], &text[end..])
        }
        _ => format!("{}\n{open}\n{body}{close}\n", text.trim_end()),
    }
}

pub(super) fn get<'a>(records: &'a [Record], name: &str) -> Option<&'a Record> {
    records.iter().find(|r| r.name == name && r.runs > 0)
}

/// Three significant digits, more for small numbers.
pub(super) fn num(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

/// `median (min–max)`, or just the median for one run or no spread.
pub(super) fn spread(r: Option<&Record>, suffix: &str) -> String {
    spread_with(r, suffix, num)
}

/// A percentage with one decimal: `96.0% (94.5–98.9)`.
pub(super) fn percent(r: Option<&Record>) -> String {
    spread_with(r, "%", |x| format!("{x:.1}"))
}

pub(super) fn spread_with(
    r: Option<&Record>,
    suffix: &str,
    format: impl Fn(f64) -> String,
) -> String {
    let Some(r) = r else {
        return "failed".into();
    };
    let (Some(min), Some(median), Some(max)) = (r.min, r.median, r.max) else {
        return "n/a".into();
    };
    if r.runs > 1 && format(min) != format(max) {
        format!(
            "{}{suffix} ({}–{})",
            format(median),
            format(min),
            format(max)
        )
    } else {
        format!("{}{suffix}", format(median))
    }
}

/// The failures of one series, identical ones together: `runs 1, 3: why`.
pub(super) fn grouped_failures(note: &str) -> String {
    let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
    for failure in note.split("; run ") {
        let failure = failure.trim_start_matches("run ");
        let (run, why) = failure.split_once(": ").unwrap_or(("?", failure));
        match grouped.iter_mut().find(|(_, w)| *w == why) {
            Some((runs, _)) => runs.push(run),
            None => grouped.push((vec![run], why)),
        }
    }
    grouped
        .iter()
        .map(|(runs, why)| {
            let s = if runs.len() > 1 { "s" } else { "" };
            format!("run{s} {}: {why}", runs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The note of the record called `name` (its failed runs), if it has one.
pub(super) fn note<'a>(records: &'a [Record], name: &str) -> Option<&'a str> {
    records
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| r.note.as_deref())
}

/// What ends a table: a blank line, then its failed runs (`- what: why` each), if any.
pub(super) fn failed_runs(failures: &[String]) -> String {
    if failures.is_empty() {
        "\n".into()
    } else {
        format!("\nFailed runs:\n\n{}\n\n", failures.join("\n"))
    }
}

pub(super) fn met(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

pub(super) fn session(header: &Header, plan: &Plan) -> String {
    format!(
        "Command: `{}` ({}). Machine: {}.\n\n",
        plan.command(),
        plan.describe(),
        header.machine_line()
    )
}

/// `100000` as `100,000`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration given in ns, in the unit that suits it.
pub(super) fn ns(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{} s", num(v / 1e9)),
        v if v >= 1e6 => format!("{} ms", num(v / 1e6)),
        v if v >= 1e3 => format!("{} µs", num(v / 1e3)),
        v => format!("{} ns", num(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::{grouped_failures, num, replace_block, thousands};

    #[test]
    fn replaces_only_its_block() {
        let text = "a\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nb\n";
        assert_eq!(
            replace_block(text, "x", "new\n"),
            "a\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nb\n"
        );
        let appended = replace_block("a\n", "y", "t\n");
        assert_eq!(appended, "a\n<!-- bench:y -->\nt\n<!-- /bench:y -->\n");
        assert_eq!(
            (num(123.4), num(12.34), num(1.234)),
            ("123".into(), "12.3".into(), "1.23".into())
        );
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn groups_identical_failures() {
        let note = "run 1: trafgen stopped; run 2: timeout; run 3: trafgen stopped";
        assert_eq!(
            grouped_failures(note),
            "runs 1, 3: trafgen stopped; run 2: timeout"
        );
    }
}
