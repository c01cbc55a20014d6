//! The generated parts of docs/benchmarks.md: each lies between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->` and is rewritten whole; the text around them is left alone.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::{Context as _, Result};

use super::{
    Plan, cpu,
    meters::{Hook, Meter},
    results::{Header, Record},
    throughput::Kind,
};

/// Rewrites the blocks that have data in `records`, and returns them (name, text).
pub fn update(
    path: &Path,
    header: &Header,
    records: &[Record],
    plan: &Plan,
    meters: &[Meter],
) -> Result<Vec<(&'static str, String)>> {
    let find = |name: &str| records.iter().find(|r| r.name == name);
    let blocks = [
        (
            "throughput",
            find("throughput/none/udp").map(|_| throughput(header, records, plan, meters)),
        ),
        (
            "own-cpu",
            find("own-cpu/idle").map(|_| own_cpu(header, records, plan)),
        ),
        (
            "userspace",
            records
                .iter()
                .any(|r| r.tool == "criterion")
                .then(|| userspace(header, records, plan)),
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

fn get<'a>(records: &'a [Record], name: &str) -> Option<&'a Record> {
    records.iter().find(|r| r.name == name && r.runs > 0)
}

/// Three significant digits, more for small numbers.
fn num(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

/// `median (min–max)`, or just the median for one run or no spread.
fn spread(r: Option<&Record>, suffix: &str) -> String {
    spread_with(r, suffix, num)
}

/// A percentage with one decimal: `96.0% (94.5–98.9)`.
fn percent(r: Option<&Record>) -> String {
    spread_with(r, "%", |x| format!("{x:.1}"))
}

fn spread_with(r: Option<&Record>, suffix: &str, format: impl Fn(f64) -> String) -> String {
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
fn grouped_failures(note: &str) -> String {
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

fn label(meter: Meter) -> &'static str {
    match meter {
        Meter::None => "no meter",
        Meter::Flowmeter(Hook::Tc) => "flowmeter, TC ingress (what auto picks on veth)",
        Meter::Flowmeter(Hook::XdpGeneric) => "flowmeter, generic XDP",
        Meter::Flowmeter(Hook::Xdp) => "flowmeter, native XDP",
        Meter::Iftop => "iftop",
        Meter::Nethogs => "nethogs",
        Meter::Bandwhich => "bandwhich",
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn session(header: &Header, plan: &Plan) -> String {
    format!(
        "Command: `{}` ({}). Machine: {}.\n\n",
        plan.command(),
        plan.describe(),
        header.machine_line()
    )
}

fn throughput(header: &Header, records: &[Record], plan: &Plan, meters: &[Meter]) -> String {
    let rec = |what: &str, meter: Meter, kind: Kind| {
        get(records, &format!("{what}/{}/{}", meter.id(), kind.id()))
    };
    let mut out = session(header, plan);
    out += "| configuration | UDP 64 B kpps | UDP vs no meter | TCP Gbit/s | TCP vs no meter \
            | meter CPU % of a core, UDP / TCP | peak RSS MiB | accuracy |\n\
            | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    let mut failures = Vec::new();
    for &meter in meters {
        let cpu = |kind| {
            rec("cpu", meter, kind)
                .and_then(|r| r.median)
                .map_or("—".into(), num)
        };
        let rss = [Kind::Udp, Kind::Tcp]
            .iter()
            .filter_map(|&k| rec("rss", meter, k).and_then(|r| r.max))
            .reduce(f64::max)
            .map_or("—".into(), num);
        let (cpu, ratio_none) = match meter {
            Meter::None => ("—".to_owned(), "100%".to_owned()),
            _ => (
                format!("{} / {}", cpu(Kind::Udp), cpu(Kind::Tcp)),
                String::new(),
            ),
        };
        let ratio = |kind| {
            if ratio_none.is_empty() {
                percent(rec("ratio", meter, kind))
            } else {
                ratio_none.clone()
            }
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {cpu} | {rss} | {} |",
            label(meter),
            spread(rec("throughput", meter, Kind::Udp), ""),
            ratio(Kind::Udp),
            spread(rec("throughput", meter, Kind::Tcp), ""),
            ratio(Kind::Tcp),
            accuracy(records, meter),
        )
        .expect("String");
        for kind in [Kind::Udp, Kind::Tcp] {
            let name = format!("throughput/{}/{}", meter.id(), kind.id());
            if let Some(note) = records
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.note.as_ref())
            {
                failures.push(format!(
                    "- {}, {}: {}",
                    label(meter),
                    kind.id().to_uppercase(),
                    grouped_failures(note)
                ));
            }
        }
    }
    out += "\n";
    if !failures.is_empty() {
        out += "Failed runs:\n\n";
        out += &failures.join("\n");
        out += "\n\n";
    }
    for note in &header.notes {
        writeln!(out, "Note: {note}.\n").expect("String");
    }
    out += &format!(
        "Load, from the sender's namespace: UDP `{}`; TCP `{}`.\n\n",
        super::traffic::shown_load(true, plan.udp_secs, plan.tcp_secs),
        super::traffic::shown_load(false, plan.udp_secs, plan.tcp_secs)
    );
    out += "Meters, in the receiver's namespace on its veth end, and what their accuracy compares:\n\n";
    for &meter in meters.iter().filter(|&&m| m != Meter::None) {
        writeln!(
            out,
            "- {}: `{}`: {}.",
            label(meter),
            meter.shown_command(),
            meter.counts()
        )
        .expect("String");
    }
    out += "\n";
    out += &throughput_targets(records, plan);
    out
}

/// flowmeter: "exact" when every run counted every packet and byte; the others: the
/// median share of bytes they reported.
fn accuracy(records: &[Record], meter: Meter) -> String {
    let rec =
        |what: &str, kind: Kind| get(records, &format!("{what}/{}/{}", meter.id(), kind.id()));
    match meter {
        Meter::None => "—".into(),
        Meter::Flowmeter(_) => {
            let all: Vec<&Record> = ["accuracy-packets", "accuracy-bytes"]
                .iter()
                .flat_map(|w| [rec(w, Kind::Udp), rec(w, Kind::Tcp)])
                .flatten()
                .collect();
            let runs: usize = all.iter().map(|r| r.runs).sum::<usize>() / 2;
            if all.is_empty() {
                "n/a".into()
            } else if all.iter().all(|r| exact(r)) {
                format!(
                    "exact: every packet and byte, in all {runs} measurement{}",
                    if runs == 1 { "" } else { "s" }
                )
            } else {
                let part = |kind: Kind| {
                    let p = rec("accuracy-packets", kind)
                        .and_then(|r| r.min)
                        .map_or("n/a".into(), |v| format!("{v:.3}%"));
                    let b = rec("accuracy-bytes", kind)
                        .and_then(|r| r.min)
                        .map_or("n/a".into(), |v| format!("{v:.3}%"));
                    format!("{} packets {p}, bytes {b}", kind.id().to_uppercase())
                };
                format!("lowest: {}; {}", part(Kind::Udp), part(Kind::Tcp))
            }
        }
        _ => {
            let part = |kind: Kind| {
                format!(
                    "{} {}",
                    kind.id().to_uppercase(),
                    percent(rec("accuracy-bytes", kind))
                )
            };
            format!("bytes: {}, {}", part(Kind::Udp), part(Kind::Tcp))
        }
    }
}

fn exact(r: &Record) -> bool {
    let hundred = |v: Option<f64>| v.is_some_and(|v| (v - 100.0).abs() < 1e-9);
    hundred(r.min) && hundred(r.max)
}

fn throughput_targets(records: &[Record], plan: &Plan) -> String {
    let median = |name: &str| get(records, name).and_then(|r| r.median);
    let mut out = String::from("Targets (issue 6):\n\n");
    let tc = Meter::Flowmeter(Hook::Tc).id();
    match (
        median(&format!("ratio/{tc}/udp")),
        median(&format!("ratio/{tc}/tcp")),
    ) {
        (Some(udp), Some(tcp)) => writeln!(
            out,
            "- Throughput with the hook auto picks (TC on veth) at least 97% of no meter: \
             64-byte UDP {udp:.1}% {}, TCP {tcp:.1}% {}.",
            met(udp >= 97.0),
            met(tcp >= 97.0)
        ),
        _ => writeln!(
            out,
            "- Throughput with the auto hook: not measured (failed runs)."
        ),
    }
    .expect("String");
    let hooks = [Hook::Tc, Hook::XdpGeneric, Hook::Xdp].map(|h| Meter::Flowmeter(h).id());
    let counted: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.name.starts_with("accuracy-")
                && hooks.iter().any(|h| r.name.contains(&format!("/{h}/")))
                && r.runs > 0
        })
        .collect();
    let inexact: Vec<&str> = counted
        .iter()
        .filter(|r| !exact(r))
        .map(|r| r.name.as_str())
        .collect();
    writeln!(
        out,
        "- Accuracy 100% of packets and bytes: {} ({} of {} measurements exact{}).",
        met(!counted.is_empty() && inexact.is_empty()),
        counted.len() - inexact.len(),
        counted.len(),
        if inexact.is_empty() {
            String::new()
        } else {
            format!("; not: {}", inexact.join(", "))
        }
    )
    .expect("String");
    let ours = median(&format!("cpu/{tc}/udp"));
    let best = [Meter::Iftop, Meter::Nethogs, Meter::Bandwhich]
        .into_iter()
        .filter_map(|m| median(&format!("cpu/{}/udp", m.id())).map(|cpu| (cpu, m)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match (ours, best) {
        (Some(ours), Some((best, tool))) => {
            // One clock tick (10 ms) over the window: what /proc/PID/stat resolves.
            let tick = 1.0 / plan.udp_secs;
            let (shown, factor) = if ours > 0.0 {
                (num(ours), best / ours)
            } else {
                (format!("under {}", num(tick)), best / tick)
            };
            writeln!(
                out,
                "- At least 10x less CPU than the best libpcap tool under the same 64-byte UDP \
                 load: flowmeter {shown}% vs {} {}%, {}{factor:.0}x less: {}.",
                label(tool),
                num(best),
                if ours > 0.0 { "" } else { "more than " },
                met(factor >= 10.0)
            )
        }
        _ => writeln!(out, "- CPU against the libpcap tools: not measured."),
    }
    .expect("String");
    out
}

fn own_cpu(header: &Header, records: &[Record], plan: &Plan) -> String {
    let mut out = session(header, plan);
    out += "| load | rx kpps | flowmeter CPU % of a core | peak RSS MiB |\n| --- | ---: | ---: | ---: |\n";
    for (id, label, _) in cpu::LOADS {
        let rec = |what: &str| get(records, &format!("{what}/{id}"));
        writeln!(
            out,
            "| {label} | {} | {} | {} |",
            if id == "idle" {
                "0".into()
            } else {
                spread(rec("own-cpu-load"), "")
            },
            spread(rec("own-cpu"), ""),
            rec("own-rss").and_then(|r| r.max).map_or("—".into(), num),
        )
        .expect("String");
    }
    out += "\nflowmeter runs `flowmeter log --iface IF --interval 1 --output /dev/null` (hook \
            auto: TC on veth) in the receiver's namespace; the load is trafgen at full speed \
            from the sender's namespace, one worker per CPU, its UDP source port (and for \
            110,000 flows the last byte of its source address) counting up with `dinc()`. CPU \
            is utime + stime of /proc/PID/stat over the window, divided by the wall time \
            (the kernel's part, the eBPF programs in softirq, is not in it).\n\n";
    let limit = ["idle", "1-flow", "10k-flows"]
        .iter()
        .filter_map(|id| get(records, &format!("own-cpu/{id}")).and_then(|r| r.median))
        .reduce(f64::max);
    match limit {
        Some(worst) => writeln!(
            out,
            "Target (issue 6): under 1% of a core at any packet rate with up to 10,000 flows: \
             at most {}% (median) {}.",
            num(worst),
            met(worst < 1.0)
        ),
        None => writeln!(out, "Target: not measured (failed runs)."),
    }
    .expect("String");
    out
}

fn userspace(header: &Header, records: &[Record], plan: &Plan) -> String {
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

/// `100000` as `100,000`.
fn thousands(n: u64) -> String {
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
fn ns(v: f64) -> String {
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
