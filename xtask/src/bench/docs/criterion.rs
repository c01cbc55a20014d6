//! The criterion benches' tables: one cycle of each userspace stage, reading the kernel
//! flow table (batch vs aya's iterator), and the log's bytes per hour and work per
//! interval in both `--flow-records` modes.

use std::fmt::Write as _;

use super::{get, met, ns, num, session, thousands};
use crate::bench::{
    Plan,
    results::{Header, Record},
};

pub(super) fn userspace(header: &Header, records: &[Record], plan: &Plan) -> String {
    // Enrichment is quoted in its steady state (the same flows again); the bench's churn
    // case is in its own output.
    const GROUPS: [&str; 3] = ["reader_cycle", "aggregate_cycle", "enrichment_cycle/steady"];
    let median = |name: String| get(records, &name).and_then(|r| r.median);
    let mut flows: Vec<u64> = records
        .iter()
        .filter_map(|r| r.name.strip_prefix("criterion/"))
        .filter_map(|id| id.rsplit_once('/'))
        .filter(|(group, _)| GROUPS.contains(group))
        .filter_map(|(_, n)| n.parse().ok())
        .collect();
    flows.sort_unstable();
    flows.dedup();
    let mut out = session(header, plan);
    out += "| flows | reader | aggregate | enrich (steady) | aggregator memory per flow |\n\
            | ---: | ---: | ---: | ---: | ---: |\n";
    for n in &flows {
        let time = |g: &str| median(format!("criterion/{g}/{n}")).map_or("n/a".into(), ns);
        let memory = median(format!("memory/aggregate/{n}"))
            .map_or("n/a".into(), |b| format!("{} KB", num(b / 1e3)));
        writeln!(
            out,
            "| {} | {} | {} | {} | {memory} |",
            thousands(*n),
            time(GROUPS[0]),
            time(GROUPS[1]),
            time(GROUPS[2])
        )
        .expect("String");
    }
    let parts: Option<Vec<f64>> = GROUPS
        .iter()
        .map(|g| median(format!("criterion/{g}/100000")))
        .collect();
    if let Some(parts) = parts {
        let total: f64 = parts.iter().sum();
        writeln!(
            out,
            "\nTarget (issue 6): a 100,000-flow refresh under 20 ms: reader + aggregate + \
             enrich = {} {}; the aggregator alone {} {}.",
            ns(total),
            met(total < 20e6),
            ns(parts[1]),
            met(parts[1] < 20e6)
        )
        .expect("String");
    }
    out
}

/// Batch reads next to aya's iterator, over LRU per-CPU hash maps of 10k to 1M flows.
pub(super) fn flow_table_read(header: &Header, records: &[Record], plan: &Plan) -> String {
    let median = |name: String| get(records, &name).and_then(|r| r.median);
    let mut flows: Vec<u64> = records
        .iter()
        .filter_map(|r| r.name.strip_prefix("criterion/flow_table_read/"))
        .filter_map(|id| id.rsplit_once('/')?.1.parse().ok())
        .collect();
    flows.sort_unstable();
    flows.dedup();
    let mut out = session(header, plan);
    out += "| flows | aya iterator | batch | batch / iterator |\n| ---: | ---: | ---: | ---: |\n";
    for n in flows {
        let iter = median(format!("criterion/flow_table_read/aya_iter/{n}"));
        let batch = median(format!("criterion/flow_table_read/batch/{n}"));
        let ratio = match (iter, batch) {
            (Some(i), Some(b)) => format!("{:.2}", b / i),
            _ => "n/a".into(),
        };
        writeln!(
            out,
            "| {} | {} | {} | {ratio} |",
            thousands(n),
            iter.map_or("n/a".into(), ns),
            batch.map_or("n/a".into(), ns)
        )
        .expect("String");
    }
    out
}

/// The log's bytes per hour and time per interval at 10,000 steady flows, v1 and v2.
pub(super) fn log_cycle(header: &Header, records: &[Record], plan: &Plan) -> String {
    const MODES: [(&str, &str); 2] = [
        (
            "interval_v1",
            "`--flow-records interval` (v1: a line per moving flow per second)",
        ),
        (
            "timeouts_v2",
            "`--flow-records timeouts` (v2, the default: idle 15 s, active 60 s, top 10)",
        ),
    ];
    let median = |name: String| get(records, &name).and_then(|r| r.median);
    let mut out = session(header, plan);
    out += "| mode | bytes per hour | time per interval |\n| --- | ---: | ---: |\n";
    let flows = 10_000;
    for (id, label) in MODES {
        writeln!(
            out,
            "| {label} | {} | {} |",
            median(format!("log-volume/{flows}/{id}")).map_or("n/a".into(), bytes),
            median(format!("criterion/log_cycle/{flows}/{id}")).map_or("n/a".into(), ns)
        )
        .expect("String");
    }
    let volume = |id: &str| median(format!("log-volume/{flows}/{id}"));
    if let (Some(v1), Some(v2)) = (volume("interval_v1"), volume("timeouts_v2")) {
        writeln!(
            out,
            "\nBytes per hour: the bench's own count of what its sink wrote (v2 over a \
             simulated hour of 3,600 intervals, v1 over 60 intervals times 60). Target \
             (issue 11): at most 1/30 of v1's bytes per hour at 10,000 steady flows: v2 \
             writes 1/{:.0} {}.",
            v1 / v2,
            met(v1 / v2 >= 30.0)
        )
        .expect("String");
    }
    out
}

/// The console at 10k to 1M flows: how long a key takes to answer (the view built again)
/// and what one interval costs the screen thread.
pub(super) fn console(header: &Header, records: &[Record], plan: &Plan) -> String {
    let median = |name: String| get(records, &name).and_then(|r| r.median);
    let mut flows: Vec<u64> = records
        .iter()
        .filter_map(|r| r.name.strip_prefix("criterion/console_key/sort/"))
        .filter_map(|n| n.parse().ok())
        .collect();
    flows.sort_unstable();
    let mut out = session(header, plan);
    out += "| flows | key: sort again | key: next grouping | one interval |\n\
            | ---: | ---: | ---: | ---: |\n";
    for n in &flows {
        let time = |id: String| median(id).map_or("n/a".into(), ns);
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            thousands(*n),
            time(format!("criterion/console_key/sort/{n}")),
            time(format!("criterion/console_key/group/{n}")),
            time(format!("criterion/console_interval/{n}"))
        )
        .expect("String");
    }
    if let Some(sort) = median("criterion/console_key/sort/1000000".into()) {
        writeln!(
            out,
            "\nTarget (issue 11): keys answered within 100 ms at 1,000,000 flows: another \
             sort {} {}.",
            ns(sort),
            met(sort < 100e6)
        )
        .expect("String");
    }
    out
}

/// Bytes in the unit that suits them (powers of 1000).
fn bytes(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{} GB", num(b / 1e9)),
        b if b >= 1e6 => format!("{} MB", num(b / 1e6)),
        b if b >= 1e3 => format!("{} kB", num(b / 1e3)),
        b => format!("{} B", num(b)),
    }
}
