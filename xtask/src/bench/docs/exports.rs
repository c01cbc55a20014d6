//! The exports table: `flowmeter log` at 100,000 flows plain, scraped and sending IPFIX,
//! side by side, with the ratios to plain, the scrapes' answer times and the IPFIX rates.

use std::fmt::Write as _;

use super::{failed_runs, get, note, num, session, spread, thousands};
use crate::bench::{
    Plan,
    exports::{self, SETUPS},
    results::{Header, Record},
};

pub(super) fn exports(header: &Header, records: &[Record], plan: &Plan) -> String {
    let mut out = session(header, plan);
    out += "| setup | cycle p50 ms | cycle p99 ms | cycle max ms | own CPU % of a core \
            | peak RSS MiB | cycle p50 / no export | cycle p99 / no export \
            | CPU / no export |\n\
            | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let mut failures = Vec::new();
    for setup in &SETUPS {
        let id = setup.id;
        let rec = |what: &str| get(records, &format!("exports-{what}/{id}"));
        let ratio = |what: &str| match rec(&format!("ratio-{what}")) {
            Some(r) => spread(Some(r), ""),
            None => "1".into(),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            setup.label,
            spread(rec("cycle-p50"), ""),
            spread(rec("cycle-p99"), ""),
            rec("cycle-max").and_then(|r| r.max).map_or("—".into(), num),
            spread(rec("cpu"), ""),
            rec("rss").and_then(|r| r.max).map_or("—".into(), num),
            ratio("cycle-p50"),
            ratio("cycle-p99"),
            ratio("cpu"),
        )
        .expect("String");
        if let Some(note) = note(records, &format!("exports-cpu/{id}")) {
            failures.push(format!("- {}: {note}", setup.label));
        }
    }
    out += &failed_runs(&failures);
    let value = |name: &str| get(records, name);
    let count = |name: &str| {
        value(name)
            .and_then(|r| r.median)
            .map_or("—".into(), |v| thousands(v.round() as u64))
    };
    writeln!(
        out,
        "Scrapes in the window (median over runs): {} answered, {} unanswered; answer \
         time p50 {} ms, p99 {} ms, max {} ms.\n",
        count("exports-scrapes"),
        count("exports-scrape-failures"),
        spread(value("exports-scrape-p50"), ""),
        spread(value("exports-scrape-p99"), ""),
        spread(value("exports-scrape-max"), ""),
    )
    .expect("String");
    writeln!(
        out,
        "IPFIX: {} data records/s over the window; a burst of messages (none more than \
         250 ms after the one before) held {} records, sent at {} records/s from its first \
         message to its last.\n",
        count("exports-ipfix-records-per-s"),
        count("exports-ipfix-flush-records"),
        count("exports-ipfix-flush-rate"),
    )
    .expect("String");
    writeln!(
        out,
        "flowmeter runs `{}` in the receiver's namespace, under the whole-program table's \
         100,010-flow load, and adds `--metrics 127.0.0.1:9465` (a thread of the bench asks \
         `/metrics` every 100 ms: an answer counts when it is status 200 and ends in \
         `# EOF`) or `--ipfix 127.0.0.1:4739` (a thread of the bench receives the messages \
         and reads their sequence numbers: the data records sent). The three setups run one \
         after another in each round, and the ratios are taken within a round, then their \
         median over rounds. The active timeout puts a flush of every flow's records \
         (written to the log in all three) into each window.",
        exports::shown_flowmeter(plan),
    )
    .expect("String");
    out
}

#[cfg(test)]
mod tests {
    use super::exports;
    use crate::bench::{
        Plan,
        results::{Header, Record},
    };

    #[test]
    fn shows_each_setup_with_its_ratios() {
        let header = Header::example();
        let records = [
            Record::new("exports-cycle-p50/plain", "flowmeter", "ms").samples(&[100.0, 120.0]),
            Record::new("exports-cycle-p50/scraped", "flowmeter", "ms").samples(&[110.0]),
            Record::new("exports-ratio-cycle-p50/scraped", "flowmeter", "ratio").samples(&[1.1]),
            Record::new("exports-ipfix-flush-rate", "flowmeter", "records/s")
                .samples(&[1_234_567.0]),
        ];
        let text = exports(&header, &records, &Plan::new(false));
        assert!(
            text.contains("| no export | 110 (100–120) | failed |"),
            "{text}"
        );
        assert!(
            text.contains("| 110 | failed | — | failed | — | 1.10 |"),
            "{text}"
        );
        assert!(text.contains("at 1,234,567 records/s"), "{text}");
    }
}
