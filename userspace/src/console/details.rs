//! The details screen of one line: what the runbook has the administrator find out by
//! hand (lsof for the process, a web site for the country) and decide, on one page:
//! the verdict, the process with its user, executable and command line, where the
//! remote is, every reason, what to do next, and all the line's flows. A line of several
//! owners (processes, flows without one) lists them culprit first, and its reasons per
//! owner, each with its own verdict and bytes, so that no reason is taken for another's.

use std::net::IpAddr;

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    state::{State, group_name, sort_name},
    units,
    view::{Details, FlowLine, View, exe_text},
    widgets::{fit, foreign_style, keys_line, row, verdict_style, wrap},
};
use crate::{
    cgroups::Cgroup,
    enrich::verdict::{Reason, Verdict},
};

const KEYS: [&str; 2] = [
    "Esc back  j/k scroll  P pause  B bits/bytes  h help  q quit",
    "Esc:back j/k:scroll h:help q:quit",
];

/// Where the values start, after "Verdict   ".
const INDENT: &str = "          ";
/// Processes listed in full; the rest are counted.
const PROCESSES_SHOWN: usize = 4;

pub fn render(state: &State, view: &View, frame: &mut Frame, area: Rect) {
    if area.height < 2 {
        return;
    }
    let content = Rect {
        height: area.height - 1,
        ..area
    };
    let lines = match &view.details {
        Some(details) => lines(state, view, details, usize::from(area.width)),
        None => vec![Line::from(
            " This line has no flows any more (idle lines are forgotten after 60 s). Esc goes back.",
        )],
    };
    let most = lines.len().saturating_sub(usize::from(content.height));
    let scroll = usize::from(state.details_scroll).min(most) as u16;
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), content);
    frame.render_widget(
        Paragraph::new(keys_line(&KEYS, area.width)),
        row(area, area.height - 1),
    );
}

fn lines(state: &State, view: &View, details: &Details, width: usize) -> Vec<Line<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    let flows = match details.flows_total {
        1 => "1 flow".to_owned(),
        n => format!("{n} flows"),
    };
    lines.push(Line::styled(
        fit(
            &format!(
                " {} {}: {flows}",
                group_name(details.group_by),
                details.label
            ),
            width,
        ),
        bold,
    ));

    // The verdict first: it is the answer the screen is for.
    let verdict = details.verdict.unwrap_or(Verdict::Business);
    let mut verdict_line = vec![
        Span::raw("Verdict   "),
        Span::styled(
            verdict_text(verdict),
            verdict_style(Some(verdict)).add_modifier(Modifier::BOLD),
        ),
    ];
    if details.foreign {
        verdict_line.push(Span::raw(", "));
        verdict_line.push(Span::styled("F foreign", foreign_style()));
    }
    lines.push(Line::from(verdict_line));
    if let Some((tx, rx)) = &details.traffic {
        for (name, rates) in [("Sent   =>", tx), ("Recv   <=", rx)] {
            lines.push(Line::from(fit(
                &format!(
                    "{name} {:>6} {:>6} {:>6} (2s 10s 40s)  cum {:>6}  peak {:>6}",
                    units::rate(rates.last2, state.units),
                    units::rate(rates.last10, state.units),
                    units::rate(rates.last40, state.units),
                    units::amount(rates.cum),
                    units::rate(rates.peak, state.units),
                ),
                width,
            )));
        }
    }

    for (index, process) in details.processes.iter().enumerate() {
        if index == PROCESSES_SHOWN {
            lines.push(Line::from(format!(
                "{INDENT}... and {} more processes",
                details.processes.len() - PROCESSES_SHOWN
            )));
            break;
        }
        lines.push(Line::from(fit(
            &format!(
                "Process   {} {}, user {} (uid {})",
                process.pid, process.comm, process.user, process.uid
            ),
            width,
        )));
        lines.push(Line::from(fit(
            &format!("  exe     {}", exe_text(process)),
            width,
        )));
        if let Some(place) = cgroup_text(&process.cgroup) {
            lines.push(Line::from(fit(&format!("  runs in {place}"), width)));
        }
        let command = if process.cmdline.is_empty() {
            "(none)"
        } else {
            process.cmdline.as_str()
        };
        for (index, line) in wrap(command, width, INDENT).into_iter().enumerate() {
            let line = if index == 0 {
                format!("  command {}", line.trim_start())
            } else {
                line
            };
            lines.push(Line::from(line));
        }
    }
    for note in &details.without_process {
        let mut wrapped = wrap(note, width, INDENT);
        if let Some(first) = wrapped.first_mut() {
            *first = format!("Process   {}", first.trim_start());
        }
        lines.extend(wrapped.into_iter().map(Line::from));
    }

    lines.push(Line::from(fit(
        &format!("Where     {}", places(details, view)),
        width,
    )));

    lines.push(Line::styled("Why", bold));
    match details.owners.as_slice() {
        // Several owners: each one's verdict, bytes and the reasons of its own flows.
        owners @ [_, _, ..] => {
            for owner in owners {
                lines.push(Line::from(vec![
                    Span::raw(format!("  {}: ", owner.name)),
                    Span::styled(
                        verdict_text(owner.verdict),
                        verdict_style(Some(owner.verdict)),
                    ),
                    Span::raw(format!(", cum {}", units::amount(owner.bytes))),
                ]));
                reason_lines(&owner.reasons, width, "    ", &mut lines);
            }
        }
        _ => reason_lines(&details.reasons, width, "  ", &mut lines),
    }

    lines.push(Line::styled("What to do next", bold));
    lines.extend(
        wrap(verdict.advice(), width, "  ")
            .into_iter()
            .map(Line::from),
    );

    lines.push(Line::styled(
        fit(
            &format!(
                "Flows, by {}   tx 2s  rx 2s    cum  CC  flow, process",
                sort_name(state.sort)
            ),
            width,
        ),
        bold,
    ));
    for flow in &details.flows {
        lines.push(Line::from(fit(&flow_line(flow, state), width)));
    }
    if details.flows_total > details.flows.len() {
        lines.push(Line::from(format!(
            "  ... and {} more flows",
            details.flows_total - details.flows.len()
        )));
    }
    lines
}

/// "! suspicious", "C cloud-agent", "business".
fn verdict_text(verdict: Verdict) -> String {
    format!("{} {}", verdict.mark(), verdict.label())
        .trim_start()
        .to_owned()
}

/// One "- reason" per reason after `indent`, wrapped; a sentence when there is none.
fn reason_lines(reasons: &[Reason], width: usize, indent: &str, lines: &mut Vec<Line<'static>>) {
    if reasons.is_empty() {
        lines.push(Line::from(format!(
            "{indent}- no sign of compromise, and not a known cloud agent"
        )));
    }
    for reason in reasons {
        let mut wrapped = wrap(&reason.to_string(), width, &format!("{indent}  "));
        if let Some(first) = wrapped.first_mut() {
            *first = format!("{indent}- {}", first.trim_start());
        }
        lines.extend(wrapped.into_iter().map(Line::from));
    }
}

/// "NL, foreign (home: DE)", "local network", "NL (2 flows), ?? (1 flow)".
fn places(details: &Details, view: &View) -> String {
    let name = |place: &str| match place {
        "--" => "local network (--)".to_owned(),
        "??" => "unknown (??)".to_owned(),
        code => code.to_owned(),
    };
    let mut text = match details.places.as_slice() {
        [] => "not known yet".to_owned(),
        [(place, _)] => name(place),
        places => places
            .iter()
            .map(|(place, flows)| {
                let noun = if *flows == 1 { "flow" } else { "flows" };
                format!("{} ({flows} {noun})", name(place))
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let home = &view.setup.home;
    if details.foreign {
        text.push_str(&format!(", foreign (home: {home})"));
    } else if !home.is_empty() {
        text.push_str(&format!(" (home: {home})"));
    }
    text
}

/// "  8.00Mb  120kb 9.80MB  NL  udp 192.0.2.1:40000 -> 198.51.100.7:3333  4242 xmrig"
fn flow_line(flow: &FlowLine, state: &State) -> String {
    let id = &flow.id;
    format!(
        "  {:>6} {:>6} {:>6}  {:<2}  {} {} -> {}  {}",
        units::rate(flow.tx.last2, state.units),
        units::rate(flow.rx.last2, state.units),
        units::amount(flow.tx.cum + flow.rx.cum),
        flow.place,
        id.proto,
        endpoint(id.local_ip, id.local_port),
        endpoint(id.remote_ip, id.remote_port),
        flow.owner,
    )
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// Where a process runs, from its cgroup: "container docker:4f0c1e2a9b3d, unit …, cgroup
/// /system.slice/docker-4f0c….scope"; `None` if it is unknown.
fn cgroup_text(cgroup: &Cgroup) -> Option<String> {
    let path = cgroup.path.as_deref()?;
    let mut text = String::new();
    if let Some(container) = &cgroup.container {
        text.push_str(&format!("container {container}, "));
    }
    if let Some(unit) = &cgroup.unit {
        text.push_str(&format!("unit {unit}, "));
    }
    text.push_str(&format!("cgroup {path}"));
    Some(text)
}
