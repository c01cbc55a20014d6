//! The kernel bench (`benches/kernel.rs`, BPF_PROG_TEST_RUN): run it, show its tables as
//! they come, and keep each row as a record for the kernel table of docs/benchmarks.md.
//! Other builds measured beside this one (`FLOWMETER_BENCH_OBJECTS=before=PATH`, passed
//! through from xtask's environment) become rows of their own.

use anyhow::Result;

/// What the records call the empty programs' object.
pub const BASELINE: &str = "empty program";

use super::results::Record;
use crate::{Project, cmd};

pub fn run(project: &Project) -> Result<Vec<Record>> {
    let mut cargo = project.cargo(["bench", "--bench", "kernel"]);
    let line = cmd::display(&cargo);
    let text = super::run_teed(&mut cargo)?;
    Ok(parse(&text, &line))
}

/// Rows `| object | program | frame | min ns | median ns | median / baseline | ... |`
/// under headings `## Section: ..., N rounds`; the empty programs' rows have no object.
fn parse(text: &str, command: &str) -> Vec<Record> {
    let (mut section, mut runs) = (String::new(), 0);
    let mut records = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let (name, _) = heading.split_once(':').unwrap_or((heading, ""));
            section = name.trim().to_lowercase();
            runs = heading
                .split_once(" rounds")
                .and_then(|(before, _)| before.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // A row splits into an empty cell, seven cells and an empty cell.
        let [_, object, program, frame, min, median, ratio, ..] = cells[..] else {
            continue;
        };
        let (Ok(min), Ok(median)) = (min.parse::<f64>(), median.parse::<f64>()) else {
            continue;
        };
        let object = if object.is_empty() { BASELINE } else { object };
        let mut record = Record::new(
            format!("kernel/{section}/{object}/{program}/{frame}"),
            "flowmeter",
            "ns per packet",
        )
        .hook(Some(if program.contains("xdp") { "xdp" } else { "tc" }))
        .traffic(frame)
        .command(command)
        .note(format!("median / empty program: {ratio}; max not reported"));
        record.runs = runs;
        record.min = Some(min);
        record.median = Some(median);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_the_kernel_tables() {
        let text = "## Known flow: 1000000 packets per call, 7 rounds\n\n\
                    | object | program | frame | min ns | median ns | median / baseline | median − baseline ns |\n\
                    | --- | --- | --- | ---: | ---: | ---: | ---: |\n\
                    |  | baseline_xdp_pass | IPv4/UDP 64 B | 21.0 | 21.0 | 1.00 | +0.0 |\n\
                    | this build | flowmeter_xdp_ingress | IPv4/UDP 64 B | 82.0 | 83.5 | 3.95 | +62.0 |\n\
                    \n## One packet per call: 10000 calls per round, 7 rounds (known flow, new \
                    flow every packet, table of 1024 full)\n\
                    | before | flowmeter_tc_ingress, new flow | IPv4/UDP 64 B | 551.2 | 753.5 | 9.80 | +676.6 |\n";
        let r = parse(text, "cargo bench --bench kernel");
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].name,
            "kernel/known flow/empty program/baseline_xdp_pass/IPv4/UDP 64 B"
        );
        assert_eq!(
            r[1].name,
            "kernel/known flow/this build/flowmeter_xdp_ingress/IPv4/UDP 64 B"
        );
        assert_eq!(
            (r[1].runs, r[1].min, r[1].median),
            (7, Some(82.0), Some(83.5))
        );
        assert_eq!(
            r[2].name,
            "kernel/one packet per call/before/flowmeter_tc_ingress, new flow/IPv4/UDP 64 B"
        );
        assert_eq!((r[2].runs, r[2].hook.as_deref()), (7, Some("tc")));
    }
}
