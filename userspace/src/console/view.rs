//! The view model: what one screen shows, built from the aggregator's numbers and the
//! flows' facts, already grouped, sorted, filtered and worded, so that rendering only
//! lays it out.
//!
//! A line of many flows (a host with several connections, a process talking to many
//! hosts) names the culprit: of its owners (each process, and the kinds of owner without
//! one), the one with the worst verdict, then the most bytes, a process before flows
//! without one on equal verdicts. Its verdict is the line's, so it is the worst of the
//! line's flows; the country shown is the one that carries the most bytes, and the
//! foreign mark is there if any flow has it. The details screen lists every owner with
//! its own verdict, bytes and reasons.

use std::{cmp::Reverse, collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use flowmeter_common::{PROTO_TCP, PROTO_UDP};
use rustc_hash::{FxHashMap, FxHashSet};

use super::{
    facts::{FactsCache, Known},
    state::{RowKey, State},
};
use crate::{
    datapath::FlowId,
    enrich::{
        coverage::Coverage,
        geo::{HomeCountries, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Reason, Verdict},
    },
    flow::{Aggregator, GroupBy, GroupKey, Rates, Row, Top, Totals, Unattributed},
};

/// Lines kept per refresh: more than any screen shows; the rest are counted.
pub const MAX_ROWS: usize = 200;
/// Flows listed on a details screen.
pub const DETAIL_FLOWS: usize = 100;

/// What does not change while the console runs: where it meters and with what.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Each metered interface with its ingress hook: "eth0 xdp".
    pub interfaces: Vec<String>,
    /// The GeoIP database, in words.
    pub geo: String,
    /// The credit its licence asks for, shown on the help screen.
    pub attribution: Option<&'static str>,
    pub home: HomeCountries,
    /// `replay`: the recorded second on screen (`None` when metering live).
    pub recording: Option<super::replay::Recorded>,
}

/// Resolved host names (`--resolve`), by address.
pub type Names = HashMap<IpAddr, String>;

/// One screen's worth of content.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub setup: Arc<Setup>,
    /// At least one interval has been read.
    pub started: bool,
    /// Time metered so far.
    pub elapsed: Duration,
    pub group_by: GroupBy,
    /// The lines, in order (at most [`MAX_ROWS`]).
    pub rows: Vec<Entry>,
    /// Lines there are in all (before the filter and the cut).
    pub lines: usize,
    /// With a filter in force: how many lines match it.
    pub matching: Option<usize>,
    /// All interfaces together, exact.
    pub totals: Totals,
    /// How much of it was in no flow, and why.
    pub unattributed: Unattributed,
    /// The details of the selected line, when that screen is open.
    pub details: Option<Details>,
    /// What carries a flood, while one holds: two lines (see [`super::flood`]).
    pub flood: Option<[String; 2]>,
    /// The share of the last seconds' bytes that have a process, and why the rest has
    /// none (the console fills it in).
    pub coverage: Coverage,
}

impl View {
    pub fn keys(&self) -> Vec<RowKey> {
        self.rows.iter().map(|row| row.key.clone()).collect()
    }
}

/// One line of the main screen (two rows on screen: `=>` sent, `<=` received).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: RowKey,
    /// The first row's text: the remote host (or pair, port, process).
    pub label: String,
    /// The second row's text: the process behind it ("4242 xmrig", "+1" when several),
    /// or, for a process line, the remote host it sends the most to.
    pub second: String,
    /// Whose user goes beside which text on a narrow screen: the process line's label,
    /// else the second row.
    pub user_on_label: bool,
    pub flows: usize,
    pub tx: Rates,
    pub rx: Rates,
    /// "NL", "--" (local), "??" (unknown), or empty when nothing is known yet.
    pub place: String,
    /// The verdict of the owner it names (the worst of its flows).
    pub verdict: Option<Verdict>,
    pub foreign: bool,
    /// The named process's user, executable and command line (empty when the line
    /// names an owner without a process).
    pub user: String,
    pub exe: String,
    pub cmdline: String,
}

/// Everything about one line, for the details screen.
#[derive(Clone, Debug, PartialEq)]
pub struct Details {
    pub label: String,
    pub group_by: GroupBy,
    /// The line's numbers, sent and received (when it is among the lines kept).
    pub traffic: Option<(Rates, Rates)>,
    /// Its processes, the named one first, in the order of `owners`.
    pub processes: Vec<Arc<ProcessInfo>>,
    /// Sentences for flows that have no process (forwarded, raw, closed).
    pub without_process: Vec<&'static str>,
    /// Where its remotes are, most bytes first: ("NL", flows).
    pub places: Vec<(String, usize)>,
    pub foreign: bool,
    /// The named owner's: the worst of its flows.
    pub verdict: Option<Verdict>,
    /// Every distinct reason of its flows: signs of compromise, the agent, then context.
    pub reasons: Vec<Reason>,
    /// Who owns its flows, the named one first: each process, and each kind of owner
    /// without one, with the verdict, bytes and reasons of its own flows.
    pub owners: Vec<OwnerShare>,
    /// Its flows, sorted like the main screen.
    pub flows: Vec<FlowLine>,
    /// Flows in the line (more than `flows` holds when cut).
    pub flows_total: usize,
}

/// One owner of a line's flows, as the details screen lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerShare {
    /// "4242 xmrig", or the kind of owner without a process ("no local process").
    pub name: String,
    /// The worst verdict of its flows.
    pub verdict: Verdict,
    /// Its flows' bytes both ways since they were first seen.
    pub bytes: u64,
    /// The reasons its own flows carry: signs of compromise, the agent, then context.
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FlowLine {
    pub id: FlowId,
    pub tx: Rates,
    pub rx: Rates,
    pub place: String,
    /// "4242 xmrig", or a note when no process owns it.
    pub owner: String,
}

/// Two letters for a place: the country code, "--" for local ranges, "??" unknown.
pub fn place(location: Location) -> String {
    match location {
        Location::Country(code) => code.as_str().to_owned(),
        Location::Local => "--".to_owned(),
        Location::Unknown => "??".to_owned(),
    }
}

/// Builds the view of `state` (what the person chose) from the aggregator and facts.
pub fn build(
    aggregator: &Aggregator,
    cache: &FactsCache,
    state: &State,
    names: &Names,
    setup: &Arc<Setup>,
) -> View {
    let group_by = state.group_by;
    let needle = state.filter.to_lowercase();
    let (rows, lines, matching) = if needle.is_empty() {
        let top = aggregator.top(group_by, state.sort, MAX_ROWS, cache);
        (top.rows, top.total, None)
    } else {
        // Every line, then only those with a flow (or a name) that matches.
        let matched: FxHashSet<RowKey> = cache
            .iter()
            .filter(|(flow, known)| flow_matches(flow, known, &needle, names))
            .map(|(flow, known)| row_key(group_by, flow, known))
            .collect();
        let top = aggregator.top(group_by, state.sort, usize::MAX, cache);
        let mut rows: Vec<_> = top
            .rows
            .into_iter()
            .filter(|row| {
                matched.contains(&row.key) || key_text(&row.key).to_lowercase().contains(&needle)
            })
            .collect();
        let matching = rows.len();
        rows.truncate(MAX_ROWS);
        (rows, top.total, Some(matching))
    };

    let details_key = if state.details {
        state
            .selected
            .clone()
            .or_else(|| rows.first().map(|row| row.key.clone()))
    } else {
        None
    };
    // One lookup per flow of the cache: a fast hash, as the keys are the program's own.
    let mut summaries: FxHashMap<RowKey, Summary> = rows
        .iter()
        .map(|row| (row.key.clone(), Summary::default()))
        .collect();
    if let Some(key) = &details_key {
        summaries.entry(key.clone()).or_default().with_reasons = true;
    }
    // The lines' flows: found through the aggregator's groups where it keeps them (one
    // pass without hashing), else by the key of every flow's facts.
    let keys: Vec<RowKey> = summaries.keys().cloned().collect();
    match aggregator.flows_of_lines(&keys) {
        Some(members) => {
            for (line, flow) in members {
                if let (Some(summary), Some(known)) =
                    (summaries.get_mut(&keys[line]), cache.get(flow))
                {
                    summary.add(flow, known);
                }
            }
        }
        None => {
            for (flow, known) in cache.iter() {
                if let Some(summary) = summaries.get_mut(&row_key(group_by, flow, known)) {
                    summary.add(flow, known);
                }
            }
        }
    }
    for summary in summaries.values_mut() {
        summary.finish();
    }

    let entries = rows
        .iter()
        .map(|row| entry(row, &summaries[&row.key], state.show_ports, names))
        .collect();
    let details = details_key.map(|key| {
        let flows = aggregator.flows_of(&key, state.sort, DETAIL_FLOWS, cache);
        let mut details = details(
            &key,
            &summaries[&key],
            flows,
            cache,
            state.show_ports,
            names,
        );
        details.traffic = rows
            .iter()
            .find(|row| row.key == key)
            .map(|row| (row.tx, row.rx));
        details
    });
    View {
        setup: setup.clone(),
        started: aggregator.at().is_some(),
        elapsed: aggregator.elapsed(),
        group_by,
        rows: entries,
        lines,
        matching,
        totals: aggregator.totals(),
        unattributed: aggregator.unattributed(),
        details,
        // The console's flood watch fills it in, and its coverage.
        flood: None,
        coverage: Coverage::default(),
    }
}

/// The line `flow` belongs to under `group_by`: the aggregator's own key, with the
/// owner its facts give it (as `top` asks the `FactsCache`).
fn row_key(group_by: GroupBy, flow: &FlowId, known: &Known) -> RowKey {
    RowKey::of(group_by, flow, known)
}

/// Whether the filter (lowercase) is in the flow's remote host, process or country.
fn flow_matches(flow: &FlowId, known: &Known, needle: &str, names: &Names) -> bool {
    let contains = |text: &str| text.to_lowercase().contains(needle);
    if flow.remote_ip.to_string().contains(needle)
        || names
            .get(&flow.remote_ip)
            .is_some_and(|name| contains(name))
        || contains(&place(known.facts.location))
        || contains(&known.facts.location.to_string())
    {
        return true;
    }
    known.facts.owner.process().is_some_and(|process| {
        contains(&process.comm)
            || process.pid.to_string() == needle
            || contains(&process.user)
            || process
                .exe
                .as_ref()
                .is_some_and(|exe| contains(&exe.to_string_lossy()))
    })
}

/// A line's key in words, without what its flows add (ports, names).
fn key_text(key: &RowKey) -> String {
    match key {
        GroupKey::RemoteHost(ip) => ip.to_string(),
        GroupKey::HostPair { local, remote } => format!("{local} <-> {remote}"),
        GroupKey::RemotePort(port) | GroupKey::LocalPort(port) => port.to_string(),
        GroupKey::Process(Some(process)) => format!("{} {}", process.pid, process.comm),
        GroupKey::Process(None) => NO_PROCESS_LINE.to_owned(),
        GroupKey::Container(Some(label)) => label.to_string(),
        GroupKey::Container(None) => NO_CONTAINER_LINE.to_owned(),
    }
}

const NO_PROCESS_LINE: &str = "no process (forwarded, closed)";
const NO_CONTAINER_LINE: &str = "no container or unit";
const NO_LOCAL_SOCKET: &str = "no local process";
const UNRESOLVED: &str = "process unknown";
const RESOLVING: &str = "resolving";
const FORWARDED: &str = "forwarded";
const HIDDEN: &str = "process hidden";

/// What one owner's flows in a line add up to.
#[derive(Debug)]
struct Share {
    bytes: u64,
    /// The worst verdict of its flows.
    verdict: Verdict,
    /// Its flows' reasons, each once (gathered for the details screen only).
    reasons: Vec<Reason>,
}

impl Share {
    fn new() -> Self {
        Self {
            bytes: 0,
            // The least verdict: its flows' raise it.
            verdict: Verdict::Business,
            reasons: Vec::new(),
        }
    }

    fn add(&mut self, known: &Known, with_reasons: bool) {
        let judgement = &known.facts.judgement;
        self.bytes += known.bytes;
        self.verdict = self.verdict.max(judgement.verdict);
        if with_reasons {
            for reason in &judgement.reasons {
                if !self.reasons.contains(reason) {
                    self.reasons.push(reason.clone());
                }
            }
        }
    }
}

/// The owner of flows that have no process, in the order a tie names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NoProcess {
    /// No socket on this host carries them.
    NoLocalSocket,
    /// A socket carries them, but no process holds it now.
    Unresolved,
    /// Still being looked up.
    Resolving,
    /// Neither end is this host's: routed or NATed through it.
    Forwarded,
    /// In a network namespace this process may not read.
    Hidden,
}

impl NoProcess {
    /// Its name on a line.
    fn text(self) -> &'static str {
        match self {
            Self::NoLocalSocket => NO_LOCAL_SOCKET,
            Self::Unresolved => UNRESOLVED,
            Self::Resolving => RESOLVING,
            Self::Forwarded => FORWARDED,
            Self::Hidden => HIDDEN,
        }
    }

    /// What it means, for the details screen.
    fn note(self) -> &'static str {
        match self {
            Self::NoLocalSocket => {
                "no local process: addressed to this host, but no socket carries it (the \
                 kernel answered: ICMP, or a reset to a closed port; or a raw socket)"
            }
            Self::Forwarded => {
                "forwarded: neither end is this host's address (routed, bridged or NATed \
                 through it), and no socket behind a NAT mapping was found"
            }
            Self::Hidden => {
                "process hidden: its socket is in a network namespace this process may not \
                 read (run as root, or with CAP_SYS_PTRACE)"
            }
            Self::Unresolved => {
                "process unknown: a local socket carries it, but no process holds it now \
                 (closed, or the process exited)"
            }
            Self::Resolving => {
                "resolving: its owner is still being looked up in /proc; it shows within an \
                 interval or two"
            }
        }
    }
}

/// The share of the owner `is` finds in `list`, added (made by `new`) if not there.
fn share_of<K>(
    list: &mut Vec<(K, Share)>,
    is: impl Fn(&K) -> bool,
    new: impl FnOnce() -> K,
) -> &mut Share {
    let index = match list.iter().position(|(key, _)| is(key)) {
        Some(index) => index,
        None => {
            list.push((new(), Share::new()));
            list.len() - 1
        }
    };
    &mut list[index].1
}

/// Who owns some of a line's flows.
#[derive(Clone, Copy, Debug)]
enum Holder<'a> {
    Process(&'a Arc<ProcessInfo>),
    Without(NoProcess),
}

impl<'a> Holder<'a> {
    fn of(owner: &'a Owner) -> Self {
        match owner {
            Owner::Process(process) => Holder::Process(process),
            Owner::NoLocalSocket => Holder::Without(NoProcess::NoLocalSocket),
            Owner::Unresolved => Holder::Without(NoProcess::Unresolved),
            Owner::Resolving => Holder::Without(NoProcess::Resolving),
            Owner::Forwarded => Holder::Without(NoProcess::Forwarded),
            Owner::Hidden => Holder::Without(NoProcess::Hidden),
        }
    }

    fn text(self) -> String {
        match self {
            Holder::Process(process) => process_name(process),
            Holder::Without(kind) => kind.text().to_owned(),
        }
    }
}

/// A process as lines name it: "4242 nginx", with its container where it runs in one
/// ("4242 nginx in docker:4f0c1e2a9b3d").
pub fn process_name(process: &ProcessInfo) -> String {
    match &process.cgroup.container {
        Some(container) => format!("{} {} in {container}", process.pid, process.comm),
        None => format!("{} {}", process.pid, process.comm),
    }
}

/// The order owners are named in, least first: the worst verdict, then (on equal
/// verdicts) a process before flows without one, then the most bytes; ties by pid or
/// kind, so that equal lines do not flicker.
fn rank(holder: Holder<'_>, share: &Share) -> (Reverse<Verdict>, bool, Reverse<u64>, u32) {
    let (without, tie) = match holder {
        Holder::Process(process) => (false, process.pid),
        Holder::Without(kind) => (true, kind as u32),
    };
    (Reverse(share.verdict), without, Reverse(share.bytes), tie)
}

/// What the flows of one line have in common, summed in one pass over the facts.
#[derive(Debug, Default)]
struct Summary {
    /// Each process with its share.
    processes: Vec<(Arc<ProcessInfo>, Share)>,
    /// Each kind of owner without a process that the line's flows have, with its share.
    without: Vec<(NoProcess, Share)>,
    places: Vec<(Location, u64, usize)>,
    remotes: FxHashMap<IpAddr, u64>,
    remote_ports: Vec<u16>,
    local_ports: Vec<u16>,
    foreign: bool,
    /// Gathered for the details screen only.
    with_reasons: bool,
}

impl Summary {
    fn add(&mut self, flow: &FlowId, known: &Known) {
        let facts = &known.facts;
        let share = match Holder::of(&facts.owner) {
            Holder::Process(process) => share_of(
                &mut self.processes,
                |p| p.pid == process.pid,
                || process.clone(),
            ),
            Holder::Without(kind) => share_of(&mut self.without, |k| *k == kind, || kind),
        };
        share.add(known, self.with_reasons);
        match self.places.iter_mut().find(|(l, ..)| *l == facts.location) {
            Some((_, bytes, flows)) => {
                *bytes += known.bytes;
                *flows += 1;
            }
            None => self.places.push((facts.location, known.bytes, 1)),
        }
        *self.remotes.entry(flow.remote_ip).or_default() += known.bytes;
        // Two distinct ports are enough to say "several". Only TCP and UDP have ports.
        let has_ports = matches!(flow.proto.0, PROTO_TCP | PROTO_UDP);
        for (ports, port) in [
            (&mut self.remote_ports, flow.remote_port),
            (&mut self.local_ports, flow.local_port),
        ] {
            if has_ports && ports.len() < 2 && !ports.contains(&port) {
                ports.push(port);
            }
        }
        self.foreign |= facts.judgement.foreign;
    }

    fn finish(&mut self) {
        self.places
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| place(a.0).cmp(&place(b.0))));
        let processes = self.processes.iter_mut().map(|(_, share)| share);
        for share in processes.chain(self.without.iter_mut().map(|(_, share)| share)) {
            sort_reasons(&mut share.reasons);
        }
    }

    /// Every owner, in no order.
    fn each_owner(&self) -> impl Iterator<Item = (Holder<'_>, &Share)> {
        let processes = self
            .processes
            .iter()
            .map(|(process, share)| (Holder::Process(process), share));
        let without = self
            .without
            .iter()
            .map(|(kind, share)| (Holder::Without(*kind), share));
        processes.chain(without)
    }

    /// Every owner, the named one first.
    fn owners(&self) -> Vec<(Holder<'_>, &Share)> {
        let mut owners: Vec<_> = self.each_owner().collect();
        owners.sort_by_key(|&(holder, share)| rank(holder, share));
        owners
    }

    /// The owner the line names; `None` before any flow's facts are known.
    fn named(&self) -> Option<(Holder<'_>, &Share)> {
        self.each_owner()
            .min_by_key(|&(holder, share)| rank(holder, share))
    }

    /// The named owner's process, if it is one.
    fn named_process(&self) -> Option<&Arc<ProcessInfo>> {
        match self.named() {
            Some((Holder::Process(process), _)) => Some(process),
            _ => None,
        }
    }

    /// The process text of a line: "4242 xmrig" (the named owner), "+N" for the other
    /// processes and, counted as one, the kinds of owner without a process.
    fn process_text(&self) -> String {
        let Some((named, _)) = self.named() else {
            return String::new();
        };
        let mut text = named.text();
        // A line of only flows without a process says the kind that names it, no more.
        if !self.processes.is_empty() {
            let others = self.processes.len() + usize::from(!self.without.is_empty()) - 1;
            if others > 0 {
                text.push_str(&format!(" +{others}"));
            }
        }
        text
    }

    /// How many kinds of owner without a process the line's flows have.
    fn kinds_without_process(&self) -> usize {
        self.without.len()
    }

    /// The remote host with the most bytes (lowest address on a tie).
    fn heaviest_remote(&self) -> Option<IpAddr> {
        self.remotes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(ip, _)| *ip)
    }

    fn ports_text(ports: &[u16]) -> String {
        match ports {
            [port] => format!(":{port}"),
            [] => String::new(),
            _ => ":*".to_owned(),
        }
    }
}

fn host(ip: IpAddr, names: &Names) -> String {
    names.get(&ip).cloned().unwrap_or_else(|| ip.to_string())
}

/// A host with a port: `198.51.100.2:443`, `[2001:db8::1]:443`.
fn host_port(ip: IpAddr, names: &Names, port: &str) -> String {
    match (ip, port.is_empty(), names.contains_key(&ip)) {
        (IpAddr::V6(_), false, false) => format!("[{ip}]{port}"),
        _ => format!("{}{port}", host(ip, names)),
    }
}

fn entry(row: &Row<RowKey>, summary: &Summary, show_ports: bool, names: &Names) -> Entry {
    let (label, second, user_on_label) = texts(&row.key, summary, show_ports, names);
    let named = summary.named_process();
    Entry {
        key: row.key.clone(),
        label,
        second,
        user_on_label,
        flows: row.flows,
        tx: row.tx,
        rx: row.rx,
        place: summary
            .places
            .first()
            .map(|(location, ..)| place(*location))
            .unwrap_or_default(),
        verdict: summary.named().map(|(_, share)| share.verdict),
        foreign: summary.foreign,
        user: named.map(|p| p.user.clone()).unwrap_or_default(),
        exe: named.map(|p| exe_text(p)).unwrap_or_default(),
        cmdline: named.map(|p| p.cmdline.clone()).unwrap_or_default(),
    }
}

/// A line's two texts, and whether the user goes beside the first.
fn texts(
    key: &RowKey,
    summary: &Summary,
    show_ports: bool,
    names: &Names,
) -> (String, String, bool) {
    let ports = |ports: &[u16]| {
        if show_ports {
            Summary::ports_text(ports)
        } else {
            String::new()
        }
    };
    let remote_ports = ports(&summary.remote_ports);
    match key {
        GroupKey::RemoteHost(ip) => (
            host_port(*ip, names, &remote_ports),
            summary.process_text(),
            false,
        ),
        GroupKey::HostPair { local, remote } => (
            format!(
                "{} <-> {}",
                host_port(*local, &Names::new(), &ports(&summary.local_ports)),
                host_port(*remote, names, &remote_ports)
            ),
            summary.process_text(),
            false,
        ),
        GroupKey::RemotePort(port) | GroupKey::LocalPort(port) => {
            (port.to_string(), summary.process_text(), false)
        }
        GroupKey::Container(_) => (key_text(key), summary.process_text(), false),
        GroupKey::Process(process) => {
            let label = match (process, summary.named_process()) {
                (Some(key), Some(named)) if named.pid == key.pid => process_name(named),
                (Some(process), _) => format!("{} {}", process.pid, process.comm),
                // Says which when it is one kind: no local socket, a socket whose process
                // is gone, or an owner still being looked up.
                (None, _) if summary.kinds_without_process() <= 1 => Some(summary.process_text())
                    .filter(|text| !text.is_empty())
                    .unwrap_or_else(|| NO_PROCESS_LINE.to_owned()),
                (None, _) => NO_PROCESS_LINE.to_owned(),
            };
            let second = match (summary.heaviest_remote(), summary.remotes.len()) {
                (None, _) => String::new(),
                (Some(ip), 1) => format!("-> {}", host(ip, names)),
                (Some(ip), n) => format!("-> {} +{}", host(ip, names), n - 1),
            };
            (label, second, true)
        }
    }
}

/// Signs of compromise first, then the agent, then context, as one flow's are.
fn sort_reasons(reasons: &mut [Reason]) {
    reasons.sort_by_key(|reason| match reason.supports() {
        Some(Verdict::Suspicious) => 0,
        Some(_) => 1,
        None => 2,
    });
}

/// The executable's path, marked when deleted.
pub fn exe_text(process: &ProcessInfo) -> String {
    match &process.exe {
        Some(exe) if process.exe_deleted => format!("{} (deleted)", exe.display()),
        Some(exe) => exe.display().to_string(),
        None => "?".to_owned(),
    }
}

fn details(
    key: &RowKey,
    summary: &Summary,
    flows: Top<Row<FlowId>>,
    cache: &FactsCache,
    show_ports: bool,
    names: &Names,
) -> Details {
    let (label, ..) = texts(key, summary, show_ports, names);
    let mut kinds: Vec<NoProcess> = summary.without.iter().map(|(kind, _)| *kind).collect();
    kinds.sort();
    let ranked = summary.owners();
    let processes = ranked
        .iter()
        .filter_map(|(holder, _)| match holder {
            Holder::Process(process) => Some(Arc::clone(process)),
            Holder::Without(_) => None,
        })
        .collect();
    let owners: Vec<OwnerShare> = ranked
        .into_iter()
        .map(|(holder, share)| OwnerShare {
            name: holder.text(),
            verdict: share.verdict,
            bytes: share.bytes,
            reasons: share.reasons.clone(),
        })
        .collect();
    let mut reasons: Vec<Reason> = Vec::new();
    for reason in owners.iter().flat_map(|owner| &owner.reasons) {
        if !reasons.contains(reason) {
            reasons.push(reason.clone());
        }
    }
    sort_reasons(&mut reasons);
    let flow_lines = flows
        .rows
        .into_iter()
        .map(|row| {
            let known = cache.get(&row.key);
            let owner = match known.map(|k| &k.facts.owner) {
                Some(Owner::Process(process)) => process_name(process),
                Some(Owner::NoLocalSocket) => NO_LOCAL_SOCKET.to_owned(),
                Some(Owner::Resolving) => RESOLVING.to_owned(),
                Some(Owner::Forwarded) => FORWARDED.to_owned(),
                Some(Owner::Hidden) => HIDDEN.to_owned(),
                Some(Owner::Unresolved) | None => UNRESOLVED.to_owned(),
            };
            FlowLine {
                place: known.map(|k| place(k.facts.location)).unwrap_or_default(),
                owner,
                tx: row.tx,
                rx: row.rx,
                id: row.key,
            }
        })
        .collect();
    Details {
        label,
        group_by: key.group_by(),
        traffic: None,
        processes,
        without_process: kinds.into_iter().map(NoProcess::note).collect(),
        places: summary
            .places
            .iter()
            .map(|(location, _, flows)| (place(*location), *flows))
            .collect(),
        foreign: summary.foreign,
        verdict: summary.named().map(|(_, share)| share.verdict),
        reasons,
        owners,
        flows: flow_lines,
        flows_total: flows.total,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{datapath::Protocol, enrich::Facts, enrich::verdict::Judgement};

    fn known(owner: Owner, bytes: u64) -> Known {
        Known {
            facts: Facts {
                owner,
                location: Location::Local,
                judgement: Judgement {
                    verdict: Verdict::Business,
                    reasons: Vec::new(),
                    foreign: false,
                },
            },
            process: None,
            container: None,
            bytes,
            last_seen: Duration::ZERO,
        }
    }

    fn https() -> FlowId {
        FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(PROTO_TCP),
            local_ip: Ipv4Addr::new(10, 0, 0, 5).into(),
            local_port: 443,
            remote_ip: Ipv4Addr::new(192, 0, 2, 44).into(),
            remote_port: 50000,
        }
    }

    #[test]
    fn a_line_whose_owner_is_still_looked_up_says_resolving() {
        let mut summary = Summary::default();
        summary.add(&https(), &known(Owner::Resolving, 100));
        assert_eq!(summary.process_text(), RESOLVING);
        // The kind with the most bytes names the line; any process comes first.
        summary.add(&https(), &known(Owner::NoLocalSocket, 200));
        assert_eq!(summary.process_text(), NO_LOCAL_SOCKET);
        summary.add(&https(), &known(Owner::Process(process(7, "nginx")), 10));
        assert_eq!(summary.process_text(), "7 nginx +1");
    }

    fn process(pid: u32, comm: &str) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid,
            comm: comm.into(),
            exe: None,
            exe_deleted: false,
            cgroup: Default::default(),
            uid: 0,
            user: format!("{comm}-user"),
            cmdline: comm.into(),
        })
    }

    fn judged(owner: Owner, bytes: u64, verdict: Verdict, reasons: Vec<Reason>) -> Known {
        let mut known = known(owner, bytes);
        known.facts.judgement.verdict = verdict;
        known.facts.judgement.reasons = reasons;
        known
    }

    /// The line's named owner, its verdict and user, and the owners in order.
    fn named(summary: &mut Summary) -> (String, Option<Verdict>, String, Vec<String>) {
        summary.finish();
        let row = Row {
            key: GroupKey::RemoteHost(https().remote_ip),
            flows: 1,
            tx: Rates::default(),
            rx: Rates::default(),
            total: Rates::default(),
        };
        let entry = entry(&row, summary, false, &Names::new());
        let order = summary.owners().iter().map(|(h, _)| h.text()).collect();
        (entry.second, entry.verdict, entry.user, order)
    }

    #[test]
    fn the_worst_verdict_names_the_line_then_the_most_bytes() {
        let mut summary = Summary::default();
        let iperf = || Owner::Process(process(31, "iperf3"));
        summary.add(&https(), &judged(iperf(), 900, Verdict::Business, vec![]));
        summary.add(&https(), &judged(iperf(), 900, Verdict::Business, vec![]));
        let agent = Owner::Process(process(40, "barad_agent"));
        summary.add(&https(), &judged(agent, 50, Verdict::CloudAgent, vec![]));
        assert_eq!(
            named(&mut summary),
            (
                "40 barad_agent +1".into(),
                Some(Verdict::CloudAgent),
                "barad_agent-user".into(),
                vec!["40 barad_agent".into(), "31 iperf3".into()]
            ),
            "a cloud agent before business, though it moved less"
        );
        // Two suspicious processes: the one with more bytes.
        let tmp = vec![Reason::ExeInTempDir { dir: "/tmp".into() }];
        let miner = |pid, bytes| {
            judged(
                Owner::Process(process(pid, "miner")),
                bytes,
                Verdict::Suspicious,
                tmp.clone(),
            )
        };
        summary.add(&https(), &miner(60, 10));
        summary.add(&https(), &miner(50, 20));
        let (second, verdict, user, order) = named(&mut summary);
        assert_eq!(
            (second.as_str(), verdict, user.as_str()),
            ("50 miner +3", Some(Verdict::Suspicious), "miner-user")
        );
        assert_eq!(
            order,
            ["50 miner", "60 miner", "40 barad_agent", "31 iperf3"]
        );
    }

    #[test]
    fn suspicious_flows_without_a_process_name_the_line_over_business_processes() {
        let mut summary = Summary {
            with_reasons: true,
            ..Summary::default()
        };
        let iperf = Owner::Process(process(31, "iperf3"));
        summary.add(&https(), &judged(iperf, 900, Verdict::Business, vec![]));
        let pool = vec![Reason::MiningPort { port: 3333 }, Reason::NoLocalProcess];
        let routed = judged(Owner::NoLocalSocket, 10, Verdict::Suspicious, pool.clone());
        summary.add(&https(), &routed);
        // Its user is not the process's: the line names no process.
        assert_eq!(
            named(&mut summary),
            (
                "no local process +1".into(),
                Some(Verdict::Suspicious),
                String::new(),
                vec![NO_LOCAL_SOCKET.into(), "31 iperf3".into()]
            )
        );
        // Each owner keeps the reasons of its own flows.
        let reasons: Vec<&[Reason]> = summary
            .owners()
            .iter()
            .map(|(_, share)| share.reasons.as_slice())
            .collect();
        assert_eq!(reasons, [pool.as_slice(), &[]]);
    }
}
