//! The kernel table: each program's cost per packet of a known flow, and what a new flow
//! and a full table (every insert evicts) add, for this build and any other build
//! measured beside it (a "before"), each against the empty programs of the same run.

use std::fmt::Write as _;

use super::{get, num, session};
use crate::bench::{
    Plan,
    kernel::BASELINE,
    results::{Header, Record},
};

const KNOWN: &str = "kernel/known flow";
const SINGLE: &str = "kernel/one packet per call";

pub(super) fn kernel(header: &Header, records: &[Record], plan: &Plan) -> String {
    let median = |name: String| get(records, &name).and_then(|r| r.median);
    // (object, program, frame) of every known-flow row, in the bench's order.
    let rows: Vec<(&str, &str, &str)> = records
        .iter()
        .filter_map(|r| r.name.strip_prefix(&format!("{KNOWN}/")))
        .filter_map(|rest| {
            let (object, rest) = rest.split_once('/')?;
            let (program, frame) = rest.split_once('/')?;
            Some((object, program, frame))
        })
        .filter(|(object, _, _)| *object != BASELINE)
        .collect();
    let empty = |program: &str, frame: &str| {
        let baseline = if program.contains("xdp") {
            "baseline_xdp_pass"
        } else {
            "baseline_tc_unspec"
        };
        median(format!("{KNOWN}/{BASELINE}/{baseline}/{frame}"))
    };
    let mut out = session(header, plan);
    out += "| build | program | frame | known flow ns | × empty | single run: known | new flow \
            | new − known | table full | full − known |\n\
            | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let show = |v: Option<f64>| v.map_or("n/a".into(), num);
    let added = |v: Option<f64>, base: Option<f64>| match (v, base) {
        (Some(v), Some(b)) => format!("{:+.0}", v - b),
        _ => "n/a".into(),
    };
    for (object, program, frame) in rows {
        let known = median(format!("{KNOWN}/{object}/{program}/{frame}"));
        let single = |case: &str| median(format!("{SINGLE}/{object}/{program}, {case}/{frame}"));
        let (one, new, full) = (
            single("known flow"),
            single("new flow"),
            single("table full"),
        );
        let ratio = match (known, empty(program, frame)) {
            (Some(k), Some(e)) => format!("{:.2}", k / e),
            _ => "n/a".into(),
        };
        writeln!(
            out,
            "| {object} | {program} | {frame} | {} | {ratio} | {} | {} | {} | {} | {} |",
            show(known),
            show(one),
            show(new),
            added(new, one),
            show(full),
            added(full, one),
        )
        .expect("String");
    }
    out += "\nKnown flow: one BPF_PROG_TEST_RUN call repeats the frame 1,000,000 times \
            (median over rounds), × empty: against the empty program of the same hook in \
            the same run. Single run: one call per frame, which adds the kernel's own \
            timing to every figure; new flow: every frame another flow into empty maps; \
            table full: every insert evicts. Other builds run beside this one with \
            `FLOWMETER_BENCH_OBJECTS=before=PATH cargo xtask bench --only kernel`.\n";
    out
}
