//! The alert engine: where each interval's snapshot and the enrichers' facts become
//! alerts, and where a condition starts, is reminded of and ends.
//!
//! [`AlertEngine::observe`] is pure and deterministic: time comes only from the
//! snapshots (`at`, `interval`), never from a clock. It watches four conditions, each
//! under a key so that one condition is one story:
//!
//! - **foreign** (key: the remote address): more than
//!   [`AlertConfig::foreign_bytes`](super::AlertConfig::foreign_bytes) bytes, rx + tx
//!   summed over every flow to or from that one remote during one interval, when the remote is in a known country outside the home countries. Only
//!   when a home is declared (`--home`); local and unknown addresses are never foreign.
//! - **suspicious** (key: the process, pid and executable; for a flow with no local
//!   process, the remote address and port): at least one flow judged
//!   [`Verdict::Suspicious`] moved traffic during the interval.
//! - **rate** (key: interface and direction): an interface's rx or tx rate,
//!   `bytes * 8 / interval seconds` over the interface's exact totals, above the
//!   `--alert-rate` limit. A `PCT%` limit needs the link speed
//!   ([`AlertEngine::set_link_speed`], from `datapath::interfaces::link_speed_bps`);
//!   where it is unknown the limit does not apply, and [`AlertEngine::take_warnings`]
//!   says so once per interface.
//!
//! - **flood** (one key): more than `--alert-flood` new flows per second arrived, as
//!   [`FloodDetector`] reads them in one pass over the interval (see `flood.rs`). Its
//!   alert names the source prefixes and local ports that carry it.
//!
//! "Over" is strict everywhere: exactly the threshold raises nothing.
//!
//! A foreign or suspicious alert counts every flow of its condition but names one owner
//! of them, the culprit ([`Part::rank`]): the worst verdict, a process before flows
//! without one on equal verdicts, then the most bytes. It names that owner's worst, then
//! largest, flow, and carries the reasons of that owner's flows only.
//!
//! # Folding: a storm is a handful of lines
//!
//! Foreign and suspicious conditions are many when traffic is hostile, so not every one
//! gets an alert of its own:
//!
//! - While a flood alert is active (from its start to its end), a condition whose
//!   flows the flood carries ([`Carriers::carries`]: flood-like, no local process, from
//!   a named prefix or to a named port) is folded into the flood.
//! - Of the conditions that would start in one interval, at most `--alert-max-starts`
//!   per kind start, the largest by bytes first; the rest are folded.
//!
//! A folded condition raises nothing of its own: it is followed silently until it has
//! been absent for `clear`, so it is folded once, not once per interval. How many were
//! folded is carried by the next alert of the kind folded into (the last of the
//! interval's starts for the cap, the flood's next alert for the flood), in `folded`.
//!
//! # Start, reminder, end
//!
//! A condition *holds* in an interval when that interval's snapshot shows it. It
//! *starts* in the first interval in which it holds: one `start` alert, whose `since` is
//! the beginning of that interval (`at - interval`). While it keeps holding, a `reminder`
//! follows once at least `repeat` (`--alert-repeat`) of metered time (the sum of the
//! intervals' real lengths, so a wall-clock step neither hurries nor delays it) has
//! passed since the start or the last reminder. It *ends* once it has not held for
//! `clear` of metered time (`--alert-clear`, default 10 s; at least one whole
//! interval): one `end` alert stamped with the end of the interval that completed
//! that time, carrying the subject as last seen and that interval's figures. If it holds
//! again before, the episode simply goes on; after, that is a new start with a new
//! `since`.
//!
//! Every alert's `duration` is metered time too, since the start of the episode's first
//! interval; `since` is what the wall clock said then and is kept for the whole episode
//! (it names it). So a wall-clock step between two intervals starts and ends nothing and
//! leaves `duration` the real one; only `at - since` differs from it, by the step.
//!
//! Only flows that moved appear in a snapshot, so a suspicious process that sends in
//! bursts is absent between them; `clear` keeps such a process one episode.
//!
//! A snapshot with a zero-length interval carries no evidence and is ignored.
//!
//! All of this is decided in [`AlertEngine::observe`]; the conditions are gathered by
//! `flood` (first), `foreign`, `suspicious` and `rates`, one method each; `triage` decides
//! which per-flow conditions are told and which are folded.

use std::{
    collections::{BTreeMap, HashMap, HashSet, btree_map::Entry},
    fmt,
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{
    Alert, AlertConfig, AlertKind, Direction, Phase, RateLimit,
    flood::{Carriers, FloodDetector, FloodReading},
};
use crate::{
    datapath::{FlowDelta, Snapshot},
    enrich::{EnrichedSnapshot, Facts, sockets::Owner, verdict::Verdict},
    sinks::moment,
};

/// Something the caller should print once, e.g. `flowmeter: warning: {warning}`.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertWarning {
    /// A `PCT%` rate limit cannot apply to this interface.
    UnknownLinkSpeed { iface: Arc<str>, percent: f64 },
}

impl fmt::Display for AlertWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertWarning::UnknownLinkSpeed { iface, percent } => write!(
                f,
                "--alert-rate {percent}% does not apply to {iface}: its link speed is unknown \
                 (/sys/class/net/{iface}/speed is missing or -1, as on most virtual \
                 interfaces); give the limit in bits per second instead, e.g. --alert-rate 800M"
            ),
        }
    }
}

/// What one condition is about; the de-duplication key. The order is the order in
/// which one interval's alerts come out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Condition {
    Foreign {
        remote_ip: IpAddr,
    },
    SuspiciousProcess {
        pid: u32,
        exe: Option<PathBuf>,
    },
    SuspiciousFlow {
        remote_ip: IpAddr,
        remote_port: u16,
    },
    Rate {
        iface: Arc<str>,
        direction: Direction,
    },
    Flood,
}

/// A condition that holds.
struct Episode {
    since: SystemTime,
    /// Metered time since `since`: the alerts' `duration`.
    metered: Duration,
    /// Metered time since the start or the last reminder.
    unreminded: Duration,
    /// Metered time since it last held (zero while it holds).
    absent: Duration,
    /// The latest alert raised or refreshed for it: the end alert names its subject.
    last: Alert,
}

/// An interval's figures for a condition that did not hold, for its end alert.
#[derive(Clone, Copy, Default)]
struct Figures {
    bytes: u64,
    flows: usize,
    rate_bps: Option<u64>,
    /// Flood: new flows per second and packets.
    flood: Option<(u64, u64, u64)>,
}

/// A condition folded instead of raised, followed until it ends.
struct Folded {
    /// Metered time since it last held.
    absent: Duration,
    /// Whether it held in the interval being observed.
    held: bool,
}

/// The folded conditions, and how many no alert has counted yet, per kind folded into.
#[derive(Default)]
struct Folds {
    conditions: HashMap<Condition, Folded>,
    unreported: BTreeMap<AlertKind, usize>,
}

impl Folds {
    fn fold(&mut self, key: Condition, into: AlertKind) {
        let folded = Folded {
            absent: Duration::ZERO,
            held: true,
        };
        self.conditions.insert(key, folded);
        *self.unreported.entry(into).or_default() += 1;
    }

    /// Ages the folded conditions that did not hold this interval; forgets the ended.
    fn age(&mut self, interval: Duration, clear: Duration) {
        self.conditions.retain(|_, folded| {
            if std::mem::take(&mut folded.held) {
                folded.absent = Duration::ZERO;
                true
            } else {
                folded.absent += interval;
                folded.absent < clear
            }
        });
    }

    /// Gives each kind's count to the last of this interval's alerts of that kind;
    /// a count with no such alert waits for the next one.
    fn report(&mut self, alerts: &mut [Alert]) {
        self.unreported.retain(|kind, count| {
            match alerts.iter_mut().rev().find(|alert| alert.kind == *kind) {
                Some(alert) => {
                    alert.folded = *count;
                    false
                }
                None => true,
            }
        });
    }
}

/// Flows grouped under one condition during one interval.
struct Group {
    bytes: u64,
    flows: usize,
    /// How many of its flows the active flood carries.
    carried: usize,
}

/// One owner's flows within a condition: a process, or (`pid` `None`) the flows without
/// one.
struct Part {
    pid: Option<u32>,
    bytes: u64,
    /// The worst verdict of its flows.
    verdict: Verdict,
    /// Its flow an alert would name (its index in the snapshot): the worst verdict, then
    /// the most bytes, the first of equal ones.
    top: usize,
    top_rank: (Verdict, u64),
    /// The reasons of its flows, each sentence once, in flow order.
    reasons: Vec<String>,
}

impl Part {
    fn new(pid: Option<u32>, index: usize) -> Self {
        Self {
            pid,
            bytes: 0,
            verdict: Verdict::Business,
            top: index,
            top_rank: (Verdict::Business, 0),
            reasons: Vec::new(),
        }
    }

    fn add(&mut self, index: usize, flow: &FlowDelta, facts: &Facts) {
        let bytes = flow.rx_bytes.saturating_add(flow.tx_bytes);
        let verdict = facts.judgement.verdict;
        self.bytes = self.bytes.saturating_add(bytes);
        self.verdict = self.verdict.max(verdict);
        if (verdict, bytes) > self.top_rank {
            self.top = index;
            self.top_rank = (verdict, bytes);
        }
        for reason in &facts.judgement.reasons {
            let text = reason.to_string();
            if !self.reasons.contains(&text) {
                self.reasons.push(text);
            }
        }
    }

    /// Which owner an alert names, greatest first: the worst verdict, then (on equal
    /// verdicts) a process before flows without one, then the most bytes; as the
    /// console names a line's culprit.
    fn rank(&self) -> (Verdict, bool, u64) {
        (self.verdict, self.pid.is_some(), self.bytes)
    }
}

/// Watches the snapshots and raises de-duplicated alerts; see the module docs.
pub struct AlertEngine {
    config: AlertConfig,
    /// Link speeds in bits per second; absent or `None` is unknown.
    link_speeds: HashMap<Arc<str>, Option<u64>>,
    /// Interfaces already warned about.
    warned: HashSet<Arc<str>>,
    warnings: Vec<AlertWarning>,
    active: BTreeMap<Condition, Episode>,
    folds: Folds,
    detector: FloodDetector,
    /// What the active flood alert named, from its start to its end.
    carriers: Option<Carriers>,
}

impl AlertEngine {
    pub fn new(config: AlertConfig) -> Self {
        Self {
            config,
            link_speeds: HashMap::new(),
            warned: HashSet::new(),
            warnings: Vec::new(),
            active: BTreeMap::new(),
            folds: Folds::default(),
            detector: FloodDetector::default(),
            carriers: None,
        }
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Records `iface`'s link speed in bits per second (`None`: unknown), e.g. from
    /// `datapath::interfaces::link_speed_bps`. Only `PCT%` limits use it. May be called again at any time.
    pub fn set_link_speed(&mut self, iface: &str, bps: Option<u64>) {
        let iface: Arc<str> = Arc::from(iface);
        if bps.is_some() {
            // Warn again if it is ever lost.
            self.warned.remove(&iface);
        }
        self.link_speeds.insert(iface, bps);
    }

    /// Conditions that hold now and were told (folded ones are not counted).
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Warnings raised since the last call, each once: print them.
    pub fn take_warnings(&mut self) -> Vec<AlertWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// One interval, its flows with the enrichers' facts. Returns the alerts this
    /// interval raises, foreign first, then suspicious, rate and flood, each in a fixed
    /// order.
    pub fn observe(&mut self, interval: &EnrichedSnapshot) -> Vec<Alert> {
        let snapshot = interval.snapshot();
        if snapshot.interval.is_zero() {
            return Vec::new();
        }
        let mut held: BTreeMap<Condition, Alert> = BTreeMap::new();
        let mut measured: HashMap<Condition, Figures> = HashMap::new();
        // First: whether a flood is on decides what the per-flow conditions fold into.
        self.flood(interval, &mut held, &mut measured);
        self.foreign(interval, &mut held, &mut measured);
        self.suspicious(interval, &mut held);
        self.rates(snapshot, &mut held, &mut measured);

        let mut alerts = self.episodes(snapshot, held, measured);
        self.folds.age(snapshot.interval, self.config.clear);
        self.folds.report(&mut alerts);
        if !self.active.contains_key(&Condition::Flood) {
            self.carriers = None;
        }
        alerts
    }

    /// Starts, reminders and ends, from what held this interval (`held`) and the
    /// figures of what did not (`measured`).
    fn episodes(
        &mut self,
        snapshot: &Snapshot,
        held: BTreeMap<Condition, Alert>,
        measured: HashMap<Condition, Figures>,
    ) -> Vec<Alert> {
        let mut alerts: Vec<(Condition, Alert)> = Vec::new();
        let clear = self.config.clear;
        let ended: Vec<Condition> = self
            .active
            .iter_mut()
            .filter(|(key, _)| !held.contains_key(*key))
            .filter_map(|(key, episode)| {
                episode.absent += snapshot.interval;
                episode.metered += snapshot.interval;
                (episode.absent >= clear).then(|| key.clone())
            })
            .collect();
        for key in ended {
            let Some(episode) = self.active.remove(&key) else {
                continue;
            };
            let figures = measured.get(&key).copied().unwrap_or_default();
            let mut alert = Alert {
                phase: Phase::End,
                at: snapshot.at,
                interval: snapshot.interval,
                duration: episode.metered,
                bytes: figures.bytes,
                flows: figures.flows,
                rate_bps: figures.rate_bps,
                folded: 0,
                ..episode.last
            };
            if let Some(flood) = alert.flood.as_deref_mut() {
                // The carriers as last seen, this interval's rates.
                (flood.new_flows_per_s, flood.packets, flood.stray_packets) =
                    figures.flood.unwrap_or_default();
            }
            alerts.push((key, alert));
        }
        for (key, mut alert) in held {
            match self.active.entry(key.clone()) {
                Entry::Vacant(slot) => {
                    let since = moment::began(snapshot.at, snapshot.interval);
                    alert.since = since;
                    alert.duration = snapshot.interval;
                    slot.insert(Episode {
                        since,
                        metered: snapshot.interval,
                        unreminded: Duration::ZERO,
                        absent: Duration::ZERO,
                        last: alert.clone(),
                    });
                    alerts.push((key, alert));
                }
                Entry::Occupied(mut slot) => {
                    let episode = slot.get_mut();
                    episode.absent = Duration::ZERO;
                    alert.since = episode.since;
                    episode.metered += snapshot.interval;
                    alert.duration = episode.metered;
                    episode.unreminded += snapshot.interval;
                    if episode.unreminded >= self.config.repeat {
                        episode.unreminded = Duration::ZERO;
                        alert.phase = Phase::Reminder;
                        alerts.push((key, alert.clone()));
                    }
                    episode.last = alert;
                }
            }
        }
        alerts.sort_by(|a, b| a.0.cmp(&b.0));
        alerts.into_iter().map(|(_, alert)| alert).collect()
    }

    /// A flood: over `--alert-flood` new flows per second (0: never).
    fn flood(
        &mut self,
        interval: &EnrichedSnapshot,
        held: &mut BTreeMap<Condition, Alert>,
        measured: &mut HashMap<Condition, Figures>,
    ) {
        let threshold = self.config.flood_flows_per_s;
        if threshold == 0 {
            return;
        }
        let reading = self.detector.read(interval, threshold);
        if reading.holds() {
            self.carriers = Some(Carriers::of(&reading.figures));
            held.insert(Condition::Flood, flood_alert(reading, interval.snapshot()));
        } else if self.active.contains_key(&Condition::Flood) {
            let figures = Figures {
                bytes: reading.bytes,
                flows: reading.flows,
                rate_bps: Some(reading.rate_bps),
                flood: Some((
                    reading.figures.new_flows_per_s,
                    reading.figures.packets,
                    reading.figures.stray_packets,
                )),
            };
            measured.insert(Condition::Flood, figures);
        }
    }

    /// Remotes outside the home countries over the byte threshold.
    fn foreign(
        &mut self,
        interval: &EnrichedSnapshot,
        held: &mut BTreeMap<Condition, Alert>,
        measured: &mut HashMap<Condition, Figures>,
    ) {
        let home = &self.config.home;
        if home.is_empty() {
            return;
        }
        let key_of = |flow: &FlowDelta, facts: &Facts| {
            home.is_foreign(&facts.location)
                .then_some(Condition::Foreign {
                    remote_ip: flow.id.remote_ip,
                })
        };
        let carriers = self.carriers.as_ref();
        let groups = group_flows(interval, key_of, carriers);
        let over: HashMap<Condition, Group> = groups
            .into_iter()
            .filter_map(|(key, group)| {
                if group.bytes > self.config.foreign_bytes {
                    Some((key, group))
                } else {
                    // Kept only for conditions that may be ending now.
                    if self.active.contains_key(&key) {
                        measured.insert(key, Figures::of(&group));
                    }
                    None
                }
            })
            .collect();
        let over = triage(
            over,
            AlertKind::Foreign,
            &self.active,
            &mut self.folds,
            self.config.max_starts,
        );
        for (key, group, named) in name_owners(interval, over, key_of) {
            let mut alert = flow_alert(AlertKind::Foreign, interval, &group, named);
            alert.threshold_bytes = Some(self.config.foreign_bytes);
            held.insert(key, alert);
        }
    }

    /// Processes (or, with none, remote endpoints) with a suspicious flow that moved.
    fn suspicious(&mut self, interval: &EnrichedSnapshot, held: &mut BTreeMap<Condition, Alert>) {
        let key_of = |flow: &FlowDelta, facts: &Facts| {
            // A flow whose owner is still resolving waits for it: judged by the flow
            // alone it would raise an alert under its remote, then again as its process.
            let suspicious =
                facts.judgement.verdict == Verdict::Suspicious && facts.owner != Owner::Resolving;
            suspicious.then(|| match facts.owner.process() {
                Some(process) => Condition::SuspiciousProcess {
                    pid: process.pid,
                    exe: process.exe.clone(),
                },
                None => Condition::SuspiciousFlow {
                    remote_ip: flow.id.remote_ip,
                    remote_port: flow.id.remote_port,
                },
            })
        };
        let groups = group_flows(interval, key_of, self.carriers.as_ref());
        let groups = triage(
            groups,
            AlertKind::Suspicious,
            &self.active,
            &mut self.folds,
            self.config.max_starts,
        );
        for (key, group, named) in name_owners(interval, groups, key_of) {
            let alert = flow_alert(AlertKind::Suspicious, interval, &group, named);
            held.insert(key, alert);
        }
    }

    /// Interface directions over the rate limit.
    fn rates(
        &mut self,
        snapshot: &Snapshot,
        held: &mut BTreeMap<Condition, Alert>,
        measured: &mut HashMap<Condition, Figures>,
    ) {
        let Some(limit) = self.config.rate else {
            return;
        };
        let seconds = snapshot.interval.as_secs_f64();
        for totals in &snapshot.interfaces {
            let link_bps = self.link_speeds.get(&totals.iface).copied().flatten();
            let limit_bps = limit.bits_per_second(link_bps);
            if let (RateLimit::PercentOfLink(percent), None) = (limit, limit_bps)
                && self.warned.insert(totals.iface.clone())
            {
                self.warnings.push(AlertWarning::UnknownLinkSpeed {
                    iface: totals.iface.clone(),
                    percent,
                });
            }
            for (direction, bytes) in [
                (Direction::Rx, totals.rx.bytes),
                (Direction::Tx, totals.tx.bytes),
            ] {
                let key = Condition::Rate {
                    iface: totals.iface.clone(),
                    direction,
                };
                let rate = bytes as f64 * 8.0 / seconds;
                let rate_bps = Some(rate.round() as u64);
                if !limit_bps.is_some_and(|limit| rate > limit) {
                    if self.active.contains_key(&key) {
                        let figures = Figures {
                            bytes,
                            flows: 0,
                            rate_bps,
                            flood: None,
                        };
                        measured.insert(key, figures);
                    }
                    continue;
                }
                let alert = Alert {
                    iface: Some(totals.iface.clone()),
                    direction: Some(direction),
                    bytes,
                    rate_bps,
                    limit: Some(limit),
                    limit_bps: limit_bps.map(|limit| limit.round() as u64),
                    link_bps,
                    ..blank_alert(AlertKind::Rate, snapshot)
                };
                held.insert(key, alert);
            }
        }
    }
}

impl Figures {
    fn of(group: &Group) -> Self {
        Self {
            bytes: group.bytes,
            flows: group.flows,
            rate_bps: None,
            flood: None,
        }
    }
}

/// Which of an interval's foreign or suspicious conditions get an alert: those already
/// told, and of the new ones at most `max_starts`, the largest by bytes (ties: in the
/// conditions' order). The rest are folded: into the flood if it carries all their
/// flows, else into their kind's next alert. Folded ones that hold again stay folded.
fn triage(
    groups: HashMap<Condition, Group>,
    kind: AlertKind,
    active: &BTreeMap<Condition, Episode>,
    folds: &mut Folds,
    max_starts: usize,
) -> HashMap<Condition, Group> {
    let mut told = HashMap::new();
    let mut fresh = Vec::new();
    for (key, group) in groups {
        if active.contains_key(&key) {
            told.insert(key, group);
        } else if let Some(folded) = folds.conditions.get_mut(&key) {
            folded.held = true;
        } else if group.carried == group.flows {
            folds.fold(key, AlertKind::Flood);
        } else {
            fresh.push((key, group));
        }
    }
    if fresh.len() > max_starts {
        fresh.sort_unstable_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
        for (key, _) in fresh.drain(max_starts..) {
            folds.fold(key, kind);
        }
    }
    told.extend(fresh);
    told
}

/// Sums each condition's flows (rx + tx bytes) and counts those the active flood
/// carries.
fn group_flows(
    interval: &EnrichedSnapshot,
    key_of: impl Fn(&FlowDelta, &Facts) -> Option<Condition>,
    carriers: Option<&Carriers>,
) -> HashMap<Condition, Group> {
    let mut groups: HashMap<Condition, Group> = HashMap::new();
    for (flow, facts) in interval.flows() {
        let Some(key) = key_of(flow, facts) else {
            continue;
        };
        let group = groups.entry(key).or_insert(Group {
            bytes: 0,
            flows: 0,
            carried: 0,
        });
        group.bytes = group
            .bytes
            .saturating_add(flow.rx_bytes.saturating_add(flow.tx_bytes));
        group.flows += 1;
        if carriers.is_some_and(|carriers| carriers.carries(flow, facts)) {
            group.carried += 1;
        }
    }
    groups
}

/// The owner each of `groups` names ([`Part::rank`]), with its flow to name and the
/// reasons of its own flows only: a remote's alert must not name iperf3 and give the
/// reasons of another owner's flow. A second pass over the flows, made only for the few
/// groups that raise an alert.
fn name_owners(
    interval: &EnrichedSnapshot,
    groups: HashMap<Condition, Group>,
    key_of: impl Fn(&FlowDelta, &Facts) -> Option<Condition>,
) -> Vec<(Condition, Group, Part)> {
    if groups.is_empty() {
        return Vec::new();
    }
    let mut parts: HashMap<Condition, Vec<Part>> = HashMap::new();
    for (index, (flow, facts)) in interval.flows().enumerate() {
        let Some(key) = key_of(flow, facts).filter(|key| groups.contains_key(key)) else {
            continue;
        };
        let pid = facts.owner.process().map(|process| process.pid);
        let owners = parts.entry(key).or_default();
        let part = match owners.iter().position(|part| part.pid == pid) {
            Some(at) => &mut owners[at],
            None => {
                owners.push(Part::new(pid, index));
                owners.last_mut().expect("just pushed")
            }
        };
        part.add(index, flow, facts);
    }
    groups
        .into_iter()
        .filter_map(|(key, group)| {
            // The first of equal owners, in flow order.
            let named = parts.remove(&key)?.into_iter().reduce(|best, part| {
                if part.rank() > best.rank() {
                    part
                } else {
                    best
                }
            })?;
            Some((key, group, named))
        })
        .collect()
}

/// A foreign or suspicious alert, naming the owner `named` and its flow, with the
/// group's figures.
fn flow_alert(kind: AlertKind, interval: &EnrichedSnapshot, group: &Group, named: Part) -> Alert {
    let (flow, facts) = interval
        .flow(named.top)
        .expect("a group's top flow is one of the interval's");
    Alert {
        iface: Some(flow.id.iface.clone()),
        flow: Some(flow.id.clone()),
        flows: group.flows,
        country: facts.location.country(),
        process: match &facts.owner {
            Owner::Process(process) => Some(Arc::clone(process)),
            Owner::Unresolved
            | Owner::NoLocalSocket
            | Owner::Forwarded
            | Owner::Hidden
            | Owner::Resolving => None,
        },
        verdict: Some(facts.judgement.verdict),
        bytes: group.bytes,
        reasons: named.reasons,
        ..blank_alert(kind, interval.snapshot())
    }
}

/// A flood alert from the interval's reading.
fn flood_alert(reading: FloodReading, snapshot: &Snapshot) -> Alert {
    Alert {
        iface: reading.iface,
        flows: reading.flows,
        bytes: reading.bytes,
        rate_bps: Some(reading.rate_bps),
        flood: Some(Box::new(reading.figures)),
        ..blank_alert(AlertKind::Flood, snapshot)
    }
}

/// A start alert for this interval with no subject or figures yet.
fn blank_alert(kind: AlertKind, snapshot: &Snapshot) -> Alert {
    Alert::blank(kind, snapshot.at, snapshot.interval)
}
