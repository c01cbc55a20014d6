//! Enrichers: what the kernel cannot know about a flow. Which local process owns it
//! (`sockets`), where its remote end is (`geo`), and what to make of it (`verdict`).
//!
//! [`Enricher`] runs the three once per interval over a snapshot's flows, and hands on
//! an [`EnrichedSnapshot`]: every flow paired with its [`Facts`]. Cost follows what
//! changed: a flow's owner, location and judgement are found once (`known`) and its
//! process's facts once per process (`processes`), then found again only when something
//! they depend on can have changed; each interval adds only what depends on it, the
//! fan-out of each process (its outbound flood).

pub mod coverage;
mod enriched;
pub mod geo;
mod known;
mod nat;
mod owners;
mod processes;
pub mod resolver;
pub mod sockets;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

pub use enriched::EnrichedSnapshot;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::datapath::{FlowDelta, FlowId, Snapshot, SocketRecords};
use geo::{GeoDb, HomeCountries, Location};
use known::{Known, KnownFlows, MadeFrom};
use owners::Owners;
use processes::Processes;
use resolver::{MakeWork, Resolver};
use sockets::{Owner, ProcPaths, Timing};
use verdict::{FlowContext, Judgement, Persistence, Reason, Rules};

/// What the enrichers know about one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub owner: Owner,
    pub location: Location,
    pub judgement: Judgement,
}

/// Sockets, GeoIP and verdict rules, with their caches.
pub struct Enricher {
    /// Finds owners in `/proc`, on its own thread.
    resolver: Resolver,
    /// How long owners are kept: the resolver's socket table follows it too.
    timing: Timing,
    geo: GeoDb,
    home: HomeCountries,
    rules: Rules,
    persistence: Persistence,
    /// Bumped when the rules or persistence points change: every judgement is stale.
    generation: u64,
    known: KnownFlows,
    processes: Processes,
}

impl Enricher {
    /// Starts the resolving thread, which reads the socket tables of the calling
    /// thread's network namespace: call it from the thread that meters (or the one that
    /// spawns it).
    pub fn new(geo: GeoDb, home: HomeCountries, rules: Rules) -> Self {
        let paths = ProcPaths::default();
        let timing = Timing::default();
        Self {
            processes: Processes::new(paths.proc_root.clone()),
            resolver: Resolver::threaded(owners_work(paths, timing, None)),
            timing,
            geo,
            home,
            rules,
            persistence: Persistence::new(),
            generation: 1,
            known: KnownFlows::default(),
        }
    }

    /// Persistence points found by `audit`, so flows of processes started from them
    /// are judged with that in mind.
    pub fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self.generation += 1;
        self
    }

    /// Owners first from the kernel's records of sockets (see `owners`), then from
    /// `/proc`: starts the resolving thread again, from the calling thread (call it from
    /// the thread that meters).
    /// `None` (the kernel records nothing): as it was, `/proc` alone.
    pub fn with_socket_records(mut self, records: Option<Arc<dyn SocketRecords>>) -> Self {
        if let Some(records) = records {
            let work = owners_work(ProcPaths::default(), self.timing, Some(records));
            self.resolver = Resolver::threaded(work);
        }
        self
    }

    /// Owners found on the calling thread, each interval waiting for `/proc` as long as
    /// it takes: the path before the resolving thread, for benchmarks comparing the two.
    pub fn resolving_inline(mut self) -> Self {
        self.resolver = self.resolver.inline();
        self
    }

    /// Owners found by `make`'s work instead of the socket table (tests make it slow).
    #[cfg(test)]
    fn with_resolver(mut self, make: MakeWork) -> Self {
        self.resolver = Resolver::threaded(make);
        self
    }

    pub fn geo(&self) -> &GeoDb {
        &self.geo
    }

    pub fn home(&self) -> &HomeCountries {
        &self.home
    }

    /// How many flows' facts are kept (those reported lately).
    pub fn known_flows(&self) -> usize {
        self.known.len()
    }

    /// The snapshot with every flow paired with its facts. Asks `/proc` only about
    /// flows not seen before (and unowned ones due for a retry, see [`SocketTable`]),
    /// on the resolving thread, waiting for it at most [`resolver::budget`]: flows it
    /// has not answered by then are [`Owner::Resolving`] until a later interval.
    pub fn enrich(&mut self, snapshot: Snapshot, now: Instant) -> EnrichedSnapshot {
        let flows = &snapshot.flows;
        let mut triage = self.triage(flows, now);
        let mut arrived = self.ask_and_wait(triage.ask, snapshot.interval, now);
        for &index in &triage.due {
            triage.facts[index] = Some(self.due_facts(&flows[index], &mut arrived, now));
        }
        // Answers for flows of earlier intervals, some shown as resolving above; the
        // others' open records take them too.
        let mut late = Vec::new();
        for (flow, (owner, asked)) in arrived {
            if let Some(facts) = self.settle(&flow, owner, asked, now) {
                late.push((flow, facts));
            }
        }
        for index in triage.resolving {
            if let Some(known) = self.known.get_mut(&flows[index].id) {
                triage.facts[index] = Some(known.facts.clone());
            }
        }
        self.known.sweep(now, self.timing.forget_after, flows.len());
        self.processes.forget_unseen(now, self.timing.forget_after);
        let mut facts: Vec<Facts> = triage.facts.into_iter().flatten().collect();
        self.judge_floods(flows, &mut facts, now);
        EnrichedSnapshot::from_parts(snapshot, facts).with_late(late)
    }

    /// Known flows' facts from memory (judged again if stale); the others are due for
    /// a lookup, and those not asked for yet are to be asked.
    fn triage(&mut self, flows: &[FlowDelta], now: Instant) -> Triage {
        let retry_unowned = self.timing.retry_unowned;
        let mut triage = Triage {
            facts: Vec::with_capacity(flows.len()),
            ..Triage::default()
        };
        for (index, flow) in flows.iter().enumerate() {
            let known = match self.known.get_mut(&flow.id) {
                Some(known) if !is_due(known, &self.resolver, &flow.id, now, retry_unowned) => {
                    known
                }
                _ => {
                    if sockets::is_tcp_or_udp(&flow.id) && !self.resolver.is_pending(&flow.id) {
                        triage.ask.push(flow.id.clone());
                    }
                    triage.due.push(index);
                    triage.facts.push(None);
                    continue;
                }
            };
            let grounds = Grounds::of(&self.rules, &self.home, &self.persistence, self.generation);
            refresh(known, flow, &mut self.processes, &grounds, now);
            if known.facts.owner == Owner::Resolving {
                triage.resolving.push(index);
            }
            triage.facts.push(Some(known.facts.clone()));
        }
        triage
    }

    /// Asks the resolver about `ask`, waits for answers at most the interval's budget
    /// (not at all if nothing was asked), and takes every answer ready: each flow's
    /// owner, and when it was checked.
    fn ask_and_wait(
        &mut self,
        ask: Vec<FlowId>,
        interval: Duration,
        now: Instant,
    ) -> FxHashMap<FlowId, (Owner, Instant)> {
        let asked = !ask.is_empty() && self.resolver.ask(ask, now);
        let deadline = match asked {
            true => Instant::now() + resolver::budget(interval),
            false => Instant::now(),
        };
        let mut arrived = FxHashMap::default();
        for answer in self.resolver.answers(deadline) {
            let asked = answer.asked;
            let owners = answer.owners.into_iter().map(|owner| (owner, asked));
            arrived.extend(answer.flows.into_iter().zip(owners));
        }
        arrived
    }

    /// The facts of a flow that was due for a lookup: with its owner if it arrived,
    /// else as known (an unowned flow keeps its owner until the answer), else resolving.
    fn due_facts(
        &mut self,
        flow: &FlowDelta,
        arrived: &mut FxHashMap<FlowId, (Owner, Instant)>,
        now: Instant,
    ) -> Facts {
        // No socket can carry the others: they need no answer.
        let answer = match sockets::is_tcp_or_udp(&flow.id) {
            true => arrived.remove(&flow.id),
            false => Some((Owner::NoLocalSocket, now)),
        };
        if answer.is_none()
            && let Some(known) = self.known.get_mut(&flow.id)
        {
            // Unowned and due for a retry: its owner stays until the answer.
            let grounds = Grounds::of(&self.rules, &self.home, &self.persistence, self.generation);
            refresh(known, flow, &mut self.processes, &grounds, now);
            return known.facts.clone();
        }
        let (owner, checked) = answer.unwrap_or((Owner::Resolving, now));
        let known = self.first_facts(flow, owner, checked, now);
        let facts = known.facts.clone();
        self.known.insert(flow.id.clone(), known);
        facts
    }

    /// A flow's facts as first found (or found again when its owner was due): `owner`,
    /// as checked at `checked`.
    fn first_facts(
        &mut self,
        flow: &FlowDelta,
        owner: Owner,
        checked: Instant,
        now: Instant,
    ) -> Known {
        // An owner found again keeps what was known of the flow besides it.
        let (location, sent) = match self.known.get_mut(&flow.id) {
            Some(known) => (known.facts.location, known.sent),
            None => (self.geo.locate(flow.id.remote_ip), false),
        };
        let sent = sent || flow.tx_packets > 0;
        let made_from = made_from(&mut self.processes, &owner, sent, self.generation, now);
        let mut facts = Facts {
            owner,
            location,
            judgement: Judgement {
                verdict: verdict::Verdict::Business,
                reasons: Vec::new(),
                foreign: false,
            },
        };
        let grounds = Grounds::of(&self.rules, &self.home, &self.persistence, self.generation);
        facts.judgement = grounds.base_judgement(&flow.id, &facts, &made_from);
        Known {
            facts,
            owner_checked: checked,
            seen: now,
            sent,
            made_from: made_from.0,
        }
    }

    /// The owner of a flow reported earlier, arrived now: its facts are judged again,
    /// and returned. A flow forgotten meanwhile is looked up afresh if it comes back.
    fn settle(
        &mut self,
        flow: &FlowId,
        owner: Owner,
        asked: Instant,
        now: Instant,
    ) -> Option<Facts> {
        let known = self.known.get_mut(flow)?;
        if let Owner::Process(_) = known.facts.owner {
            return None;
        }
        known.facts.owner = owner;
        known.owner_checked = asked;
        let made_from = made_from(
            &mut self.processes,
            &known.facts.owner,
            known.sent,
            self.generation,
            now,
        );
        known.made_from = made_from.0;
        let grounds = Grounds::of(&self.rules, &self.home, &self.persistence, self.generation);
        known.facts.judgement = grounds.base_judgement(flow, &known.facts, &made_from);
        Some(known.facts.clone())
    }

    /// The interval's part: processes that sent to more remote hosts than the flood
    /// limit have their flows judged again with that count.
    fn judge_floods(&mut self, flows: &[FlowDelta], facts: &mut [Facts], now: Instant) {
        let remote_hosts = outbound_hosts_per_process(flows, facts);
        if !remote_hosts.values().any(|&hosts| self.rules.floods(hosts)) {
            return;
        }
        for (flow, facts) in flows.iter().zip(facts.iter_mut()) {
            let Owner::Process(process) = &facts.owner else {
                continue;
            };
            let hosts = remote_hosts.get(&process.pid).copied().unwrap_or(0);
            if !self.rules.floods(hosts) {
                continue;
            }
            let hugetlb_kb = self.processes.facts(process, now).hugetlb_kb;
            let grounds = Grounds::of(&self.rules, &self.home, &self.persistence, self.generation);
            let judgement = grounds.judge(&flow.id, facts, hugetlb_kb, true, hosts);
            facts.judgement = judgement;
        }
    }
}

/// The resolving thread's work: owners in the order `owners` says.
fn owners_work(
    paths: ProcPaths,
    timing: Timing,
    records: Option<Arc<dyn SocketRecords>>,
) -> MakeWork {
    Arc::new(move || Box::new(Owners::new(paths.clone(), timing, records.clone())))
}

/// One interval's flows sorted by what memory knows of them.
#[derive(Default)]
struct Triage {
    /// `facts[i]` is flow i's, `None` while it is due.
    facts: Vec<Option<Facts>>,
    /// Flows due for a lookup, by index.
    due: Vec<usize>,
    /// The due flows not asked for yet.
    ask: Vec<FlowId>,
    /// Flows shown as resolving from memory: an answer in this interval updates them.
    resolving: Vec<usize>,
}

/// What judgements are made with: borrowed apart from the caches they fill.
struct Grounds<'a> {
    rules: &'a Rules,
    home: &'a HomeCountries,
    persistence: &'a Persistence,
    /// The rules' and persistence points' generation.
    generation: u64,
}

impl<'a> Grounds<'a> {
    fn of(
        rules: &'a Rules,
        home: &'a HomeCountries,
        persistence: &'a Persistence,
        generation: u64,
    ) -> Self {
        Self {
            rules,
            home,
            persistence,
            generation,
        }
    }

    /// The judgement of a flow in an interval where its process does not flood.
    fn base_judgement(
        &self,
        flow: &FlowId,
        facts: &Facts,
        (made_from, hugetlb_kb): &(MadeFrom, Option<u64>),
    ) -> Judgement {
        self.judge(flow, facts, *hugetlb_kb, made_from.sent, 0)
    }

    /// The judgement of a flow with `facts`' owner and location; `remote_hosts`: how
    /// many its process sent to this interval.
    fn judge(
        &self,
        flow: &FlowId,
        facts: &Facts,
        hugetlb_kb: Option<u64>,
        outbound: bool,
        remote_hosts: usize,
    ) -> Judgement {
        let mut context = FlowContext::new(facts.location, self.home);
        context.persistence = self.persistence;
        context.hugetlb_kb = hugetlb_kb;
        context.outbound = outbound;
        context.remote_hosts_of_process = remote_hosts;
        let mut judgement = self.rules.judge(flow, facts.owner.process(), &context);
        if facts.owner == Owner::Resolving {
            // No process known yet is not "no local process".
            judgement
                .reasons
                .retain(|reason| !matches!(reason, Reason::NoLocalProcess));
        }
        judgement
    }
}

/// Whether a known flow's owner is to be looked up: an unowned flow due for a retry, or
/// a resolving one whose lookup was refused (asked for once while it is pending).
fn is_due(
    known: &Known,
    resolver: &Resolver,
    flow: &FlowId,
    now: Instant,
    retry_unowned: Duration,
) -> bool {
    match known.facts.owner {
        Owner::Resolving => !resolver.is_pending(flow),
        _ => known.owner_due(now, retry_unowned),
    }
}

/// A known flow reported again: marked seen, and judged again if what its judgement was
/// made from changed.
fn refresh(
    known: &mut Known,
    flow: &FlowDelta,
    processes: &mut Processes,
    grounds: &Grounds,
    now: Instant,
) {
    known.seen = now;
    known.sent |= flow.tx_packets > 0;
    let made_from = made_from(
        processes,
        &known.facts.owner,
        known.sent,
        grounds.generation,
        now,
    );
    if made_from.0 != known.made_from {
        known.made_from = made_from.0;
        known.facts.judgement = grounds.base_judgement(&flow.id, &known.facts, &made_from);
    }
}

/// What a judgement of a flow with `owner` is made from now, with the process's huge
/// pages (which the judgement reads).
fn made_from(
    processes: &mut Processes,
    owner: &Owner,
    sent: bool,
    rules: u64,
    now: Instant,
) -> (MadeFrom, Option<u64>) {
    let (process, hugetlb_kb) = match owner {
        Owner::Process(process) => {
            let facts = processes.facts(process, now);
            (facts.generation, facts.hugetlb_kb)
        }
        Owner::Unresolved
        | Owner::NoLocalSocket
        | Owner::Forwarded
        | Owner::Hidden
        | Owner::Resolving => (0, None),
    };
    let made_from = MadeFrom {
        process,
        rules,
        sent,
    };
    (made_from, hugetlb_kb)
}

/// How many distinct remote hosts each process sent to in this interval.
fn outbound_hosts_per_process(flows: &[FlowDelta], facts: &[Facts]) -> FxHashMap<u32, usize> {
    let mut hosts: FxHashMap<u32, FxHashSet<IpAddr>> = FxHashMap::default();
    for (flow, facts) in flows.iter().zip(facts) {
        if let (Some(process), true) = (facts.owner.process(), flow.tx_packets > 0) {
            hosts
                .entry(process.pid)
                .or_default()
                .insert(flow.id.remote_ip);
        }
    }
    hosts
        .into_iter()
        .map(|(pid, set)| (pid, set.len()))
        .collect()
}
