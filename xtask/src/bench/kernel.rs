//! The kernel bench (`benches/kernel.rs`, BPF_PROG_TEST_RUN): run it, show its tables as
//! they come, and keep each row as a record.

use anyhow::Result;

use super::results::Record;
use crate::{Project, cmd};

pub fn run(project: &Project) -> Result<Vec<Record>> {
    let mut cargo = project.cargo(["bench", "--bench", "kernel"]);
    let line = cmd::display(&cargo);
    let text = super::run_teed(&mut cargo)?;
    Ok(parse(&text, &line))
}

/// Rows `| program | frame | min ns | median ns | median / baseline | ... |` under
/// headings `## Section: ..., N calls` (or `N rounds`).
fn parse(text: &str, command: &str) -> Vec<Record> {
    let (mut section, mut runs) = (String::new(), 0);
    let mut records = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let (name, _) = heading.split_once(':').unwrap_or((heading, ""));
            section = name.trim().to_lowercase();
            runs = heading
                .split(|c: char| !c.is_ascii_digit())
                .rfind(|w| !w.is_empty())
                .and_then(|w| w.parse().ok())
                .unwrap_or(0);
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // A row splits into an empty cell, six cells and an empty cell.
        let [_, program, frame, min, median, ratio, ..] = cells[..] else {
            continue;
        };
        let (Ok(min), Ok(median)) = (min.parse::<f64>(), median.parse::<f64>()) else {
            continue;
        };
        let mut record = Record::new(
            format!("kernel/{section}/{program}/{frame}"),
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
        let text = "## Existing flow: 1000000 packets per call, 7 calls\n\n\
                    | program | frame | min ns | median ns | median / baseline | median − baseline ns |\n\
                    | --- | --- | ---: | ---: | ---: | ---: |\n\
                    | flowmeter_xdp_ingress | IPv4/UDP 64 B | 82.0 | 83.5 | 3.95 | +62.0 |\n\
                    \n## New flow every packet: 1 packet per call, 20000 calls per round, 7 rounds\n\
                    | flowmeter_tc_ingress, new flow | IPv4/UDP 64 B | 551.2 | 753.5 | 9.80 | +676.6 |\n";
        let r = parse(text, "cargo bench --bench kernel");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].name,
            "kernel/existing flow/flowmeter_xdp_ingress/IPv4/UDP 64 B"
        );
        assert_eq!(
            (r[0].runs, r[0].min, r[0].median),
            (7, Some(82.0), Some(83.5))
        );
        assert_eq!(
            r[1].name,
            "kernel/new flow every packet/flowmeter_tc_ingress, new flow/IPv4/UDP 64 B"
        );
        assert_eq!(r[1].hook.as_deref(), Some("tc"));
    }
}
