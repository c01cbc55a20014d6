//! Enrichers: what the kernel cannot know about a flow. Which local process owns it
//! (`sockets`), where its remote end is (`geo`), and what to make of it (`verdict`).
//!
//! [`Enricher`] runs the three once per interval over a snapshot's flows, and hands on
//! an [`EnrichedSnapshot`]: every flow paired with its [`Facts`].

mod enriched;
pub mod geo;
pub mod sockets;
pub mod verdict;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::PathBuf,
    time::Instant,
};

pub use enriched::EnrichedSnapshot;

use crate::datapath::{FlowDelta, Snapshot};
use geo::{GeoDb, HomeCountries, Location};
use sockets::{Owner, ProcPaths, SocketTable};
use verdict::{FlowContext, Judgement, Persistence, Rules};

/// What the enrichers know about one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub owner: Owner,
    pub location: Location,
    pub judgement: Judgement,
}

/// Sockets, GeoIP and verdict rules, with their caches.
pub struct Enricher {
    sockets: SocketTable,
    geo: GeoDb,
    home: HomeCountries,
    rules: Rules,
    persistence: Persistence,
    proc_root: PathBuf,
}

impl Enricher {
    pub fn new(geo: GeoDb, home: HomeCountries, rules: Rules) -> Self {
        let paths = ProcPaths::default();
        Self {
            proc_root: paths.proc_root.clone(),
            sockets: SocketTable::new(paths),
            geo,
            home,
            rules,
            persistence: Persistence::new(),
        }
    }

    /// Persistence points found by `audit`, so flows of processes started from them
    /// are judged with that in mind.
    pub fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    pub fn geo(&self) -> &GeoDb {
        &self.geo
    }

    pub fn home(&self) -> &HomeCountries {
        &self.home
    }

    /// The snapshot with every flow paired with its facts. Reads /proc only for flows
    /// not seen before (see [`SocketTable`]); call it from a thread in the metered
    /// namespace.
    pub fn enrich(&mut self, snapshot: Snapshot, now: Instant) -> EnrichedSnapshot {
        let flows = &snapshot.flows;
        self.sockets.resolve(flows.iter().map(|f| &f.id), now);
        let owners: Vec<Owner> = flows
            .iter()
            .map(|f| {
                self.sockets
                    .owner(&f.id)
                    .cloned()
                    .unwrap_or(Owner::Unresolved)
            })
            .collect();
        let remote_hosts = outbound_hosts_per_process(flows, &owners);
        let mut hugetlb: HashMap<u32, Option<u64>> = HashMap::new();
        let mut owners = owners.into_iter();
        EnrichedSnapshot::from_fn(snapshot, |flow| {
            // One owner per flow, in the same order.
            let owner = owners.next().unwrap_or(Owner::Unresolved);
            let location = self.geo.locate(flow.id.remote_ip);
            let process = owner.process();
            let mut context = FlowContext::new(location, &self.home);
            context.persistence = &self.persistence;
            if let Some(process) = process {
                context.remote_hosts_of_process =
                    remote_hosts.get(&process.pid).copied().unwrap_or(0);
                context.hugetlb_kb = *hugetlb
                    .entry(process.pid)
                    .or_insert_with(|| verdict::hugetlb_kb(&self.proc_root, process.pid));
            }
            let judgement = self.rules.judge(&flow.id, process, &context);
            Facts {
                owner,
                location,
                judgement,
            }
        })
    }
}

/// How many distinct remote hosts each process sent to in this interval.
fn outbound_hosts_per_process(flows: &[FlowDelta], owners: &[Owner]) -> HashMap<u32, usize> {
    let mut hosts: HashMap<u32, HashSet<IpAddr>> = HashMap::new();
    for (flow, owner) in flows.iter().zip(owners) {
        if let (Some(process), true) = (owner.process(), flow.tx_packets > 0) {
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
