//! The throughput table (every meter under 64-byte UDP and TCP) and the flood table
//! (every packet a new flow), with their accuracy and the targets they are held to.

use std::fmt::Write as _;

use super::{failed_runs, get, grouped_failures, met, note, num, percent, session, spread};
use crate::bench::{
    Plan,
    meters::{Hook, Meter},
    results::{Header, Record},
    traffic::{self, Kind},
};

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

pub(super) fn throughput(
    header: &Header,
    records: &[Record],
    plan: &Plan,
    meters: &[Meter],
) -> String {
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
            if let Some(note) = note(records, &name) {
                failures.push(format!(
                    "- {}, {}: {}",
                    label(meter),
                    kind.id().to_uppercase(),
                    grouped_failures(note)
                ));
            }
        }
    }
    out += &failed_runs(&failures);
    for note in &header.notes {
        writeln!(out, "Note: {note}.\n").expect("String");
    }
    out += &format!(
        "Load, from the sender's namespace: UDP `{}`; TCP `{}`.\n\n",
        traffic::shown_load(Kind::Udp, plan.udp_secs, plan.tcp_secs),
        traffic::shown_load(Kind::Tcp, plan.udp_secs, plan.tcp_secs)
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

/// The flood: every packet a new flow, for the meters that ran under it.
pub(super) fn flood(header: &Header, records: &[Record], plan: &Plan, meters: &[Meter]) -> String {
    let kind = Kind::Flood;
    let rec =
        |what: &str, meter: Meter| get(records, &format!("{what}/{}/{}", meter.id(), kind.id()));
    let mut out = session(header, plan);
    out += "| configuration | flood kpps | vs no meter | meter CPU % of a core | peak RSS MiB \
            | accuracy |\n| --- | ---: | ---: | ---: | ---: | --- |\n";
    let ran = meters.iter().filter(|&&m| {
        records
            .iter()
            .any(|r| r.name == format!("throughput/{}/{}", m.id(), kind.id()))
    });
    let mut failures = Vec::new();
    for &meter in ran {
        let (ratio, cpu, rss, accuracy) = match meter {
            Meter::None => ("100%".into(), "—".into(), "—".into(), "—".into()),
            _ => (
                percent(rec("ratio", meter)),
                spread(rec("cpu", meter), ""),
                rec("rss", meter)
                    .and_then(|r| r.max)
                    .map_or("—".into(), num),
                flood_accuracy(records, meter),
            ),
        };
        writeln!(
            out,
            "| {} | {} | {ratio} | {cpu} | {rss} | {accuracy} |",
            label(meter),
            spread(rec("throughput", meter), ""),
        )
        .expect("String");
        let name = format!("throughput/{}/{}", meter.id(), kind.id());
        if let Some(note) = note(records, &name) {
            failures.push(format!("- {}: {}", label(meter), grouped_failures(note)));
        }
    }
    out += &failed_runs(&failures);
    writeln!(
        out,
        "Load, from the sender's namespace: `{}`. The meters run as in the throughput table, \
         flowmeter with its defaults (a 65,536-flow table).\n",
        traffic::shown_load(kind, plan.udp_secs, plan.tcp_secs)
    )
    .expect("String");
    let ours = rec("ratio", Meter::Flowmeter(Hook::Tc));
    match ours.and_then(|r| r.median) {
        Some(ratio) => writeln!(
            out,
            "Target (issue 11): receive rate at least 0.9 of no meter under the flood: \
             {:.2} {}; totals exact: {}.",
            ratio / 100.0,
            met(ratio >= 90.0),
            met(["accuracy-packets", "accuracy-bytes"].iter().all(|w| rec(
                w,
                Meter::Flowmeter(Hook::Tc)
            )
            .is_some_and(exact)))
        ),
        None => writeln!(out, "Target (issue 11): not measured (failed runs)."),
    }
    .expect("String");
    out
}

/// flowmeter: exact or its lowest share; the others: the median share of bytes.
fn flood_accuracy(records: &[Record], meter: Meter) -> String {
    let rec = |what: &str| get(records, &format!("{what}/{}/flood", meter.id()));
    match meter {
        Meter::Flowmeter(_) => {
            let (p, b) = (rec("accuracy-packets"), rec("accuracy-bytes"));
            if p.is_some_and(exact) && b.is_some_and(exact) {
                "exact: every packet and byte".into()
            } else {
                let low = |r: Option<&Record>| {
                    r.and_then(|r| r.min)
                        .map_or("n/a".into(), |v| format!("{v:.3}%"))
                };
                format!("lowest: packets {}, bytes {}", low(p), low(b))
            }
        }
        _ => format!("bytes: {}", percent(rec("accuracy-bytes"))),
    }
}
