//! The enricher's caches against the judgement made afresh: the same facts every
//! interval, whatever was cached, and memory that follows the live flows.

use std::{
    net::{Ipv4Addr, UdpSocket},
    path::Path,
    time::{Duration, SystemTime},
};

use super::*;
use crate::datapath::Protocol;

const UDP: u8 = 17;
const TCP: u8 = 6;

fn flow(proto: u8, local_port: u16, remote: [u8; 4], remote_port: u16, sent: bool) -> FlowDelta {
    FlowDelta {
        id: FlowId {
            iface: "eth0".into(),
            proto: Protocol(proto),
            local_ip: Ipv4Addr::new(10, 0, 0, 1).into(),
            local_port,
            remote_ip: Ipv4Addr::from(remote).into(),
            remote_port,
        },
        rx_packets: 3,
        rx_bytes: 300,
        tx_packets: u64::from(sent),
        tx_bytes: if sent { 100 } else { 0 },
        tcp_flags: 0,
    }
}

fn snapshot(flows: Vec<FlowDelta>) -> Snapshot {
    Snapshot {
        at: SystemTime::now(),
        interval: Duration::from_secs(1),
        flows,
        interfaces: Vec::new(),
        overflow: Vec::new(),
    }
}

fn enricher() -> Enricher {
    let geo = GeoDb::embedded().expect("embedded GeoIP database");
    Enricher::new(geo, "DE".parse().unwrap(), Rules::default())
}

/// The judgement as the enricher made it before it cached anything: every fact found
/// again for this interval. `sent`: the flow sent in this interval or an earlier one.
fn afresh(
    enricher: &Enricher,
    flows: &[FlowDelta],
    owners: &[Owner],
    sent: impl Fn(&FlowId) -> bool,
) -> Vec<Facts> {
    let mut hosts: HashMap<u32, HashSet<IpAddr>> = HashMap::new();
    for (flow, owner) in flows.iter().zip(owners) {
        if let (Some(process), true) = (owner.process(), flow.tx_packets > 0) {
            hosts
                .entry(process.pid)
                .or_default()
                .insert(flow.id.remote_ip);
        }
    }
    flows
        .iter()
        .zip(owners)
        .map(|(flow, owner)| {
            let location = enricher.geo.locate(flow.id.remote_ip);
            let mut context = FlowContext::new(location, &enricher.home);
            context.persistence = &enricher.persistence;
            context.outbound = sent(&flow.id);
            if let Some(process) = owner.process() {
                context.remote_hosts_of_process = hosts.get(&process.pid).map_or(0, HashSet::len);
                context.hugetlb_kb = verdict::hugetlb_kb(Path::new("/proc"), process.pid);
            }
            Facts {
                owner: owner.clone(),
                location,
                judgement: enricher.rules.judge(&flow.id, owner.process(), &context),
            }
        })
        .collect()
}

use std::collections::{HashMap, HashSet};

#[test]
fn cached_facts_are_the_facts_found_afresh_in_every_interval() {
    // This test's own socket: flows on its port are owned by this process.
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut enricher = enricher();
    let start = Instant::now();
    let mut ever_sent: HashSet<FlowId> = HashSet::new();
    for interval in 0..6u8 {
        let mut flows = vec![
            // Owned: to a pool port, to an ordinary one, to a home-country address.
            flow(UDP, port, [198, 51, 100, 9], 3333, true),
            flow(UDP, port, [203, 0, 113, 7], 443, true),
            flow(UDP, port, [5, 1, 66, 255], 53, interval % 2 == 0),
            // Unowned: from a pool port, sending only from the third interval on.
            flow(TCP, 1, [198, 51, 100, 20], 4444, interval >= 2),
            // Unowned, new each interval (churn), from a pool port, never sending.
            flow(UDP, 2, [203, 0, 113, interval], 14444, false),
        ];
        // In interval 3 the owner fans out to more hosts than the flood limit.
        if interval == 3 {
            for n in 0..=200u16 {
                let [a, b] = n.to_be_bytes();
                flows.push(flow(UDP, port, [100, 64, a, b], 8000, true));
            }
        }
        for delta in &flows {
            if delta.tx_packets > 0 {
                ever_sent.insert(delta.id.clone());
            }
        }
        let now = start + Duration::from_secs(u64::from(interval));
        let enriched = enricher.enrich(snapshot(flows.clone()), now);
        let owners: Vec<Owner> = enriched
            .flows()
            .map(|(_, facts)| facts.owner.clone())
            .collect();
        assert_eq!(
            owners[0].process().map(|p| p.pid),
            Some(std::process::id()),
            "the socket's flows are this process's"
        );
        let expected = afresh(&enricher, &flows, &owners, |id| ever_sent.contains(id));
        let got: Vec<Facts> = enriched.flows().map(|(_, facts)| facts.clone()).collect();
        assert_eq!(got, expected, "interval {interval}");
        let verdicts: Vec<_> = got.iter().map(|f| f.judgement.verdict).collect();
        use verdict::Verdict::{Business, Suspicious};
        // The unowned pool-port flow counts once the host sends on it; the spoofed never.
        let unowned = if interval >= 2 { Suspicious } else { Business };
        let flood = if interval == 3 { Suspicious } else { Business };
        assert_eq!(
            &verdicts[..5],
            [Suspicious, flood, flood, unowned, Business]
        );
    }
    drop(socket);
}

#[test]
fn flows_no_longer_reported_are_forgotten_and_a_flood_stays_bounded() {
    let mut enricher = enricher();
    let start = Instant::now();
    let steady: Vec<FlowDelta> = (0..100u8)
        .map(|n| flow(TCP, 1, [198, 51, 100, n], 443, true))
        .collect();
    enricher.enrich(snapshot(steady.clone()), start);
    assert_eq!(enricher.known_flows(), 100);
    // A flood: 10,000 new flows each interval beside the steady ones.
    let count = 10_000u32;
    for interval in 1..=5u32 {
        let mut flows = steady.clone();
        flows.extend((0..count).map(|n| {
            let [_, a, b, c] = (interval * count + n).to_be_bytes();
            flow(UDP, 2, [100, a, b, c], 3333, false)
        }));
        let live = flows.len();
        let enriched = enricher.enrich(
            snapshot(flows),
            start + Duration::from_secs(interval.into()),
        );
        assert_eq!(enriched.flows().len(), live);
        assert!(
            enricher.known_flows() <= 2 * live + 4096,
            "{}",
            enricher.known_flows()
        );
    }
    // Two minutes later, only what the reader still reports is kept.
    let later = start + Duration::from_secs(200);
    enricher.enrich(snapshot(steady[..10].to_vec()), later);
    assert_eq!(enricher.known_flows(), 10);
}

/// The `/proc` work of a test: owners by a rule, after a delay or once a gate opens;
/// what it was asked is noted.
#[derive(Clone)]
struct FakeResolver {
    owner_of: Arc<dyn Fn(&FlowId) -> Owner + Send + Sync>,
    delay: Duration,
    /// Each batch waits for a message here, or for the sender to go.
    gate: Option<crossbeam_channel::Receiver<()>>,
    asked: Arc<Mutex<Vec<FlowId>>>,
}

impl resolver::Resolve for FakeResolver {
    fn owners(&mut self, flows: &[FlowId], _now: Instant) -> Vec<Owner> {
        if let Some(gate) = &self.gate {
            let _ = gate.recv();
        }
        std::thread::sleep(self.delay);
        self.asked.lock().unwrap().extend(flows.iter().cloned());
        flows.iter().map(|flow| (self.owner_of)(flow)).collect()
    }
}

impl FakeResolver {
    /// Flows on local port 1 are `process`'s; the others have no local socket.
    fn new(process: Arc<ProcessInfo>, delay: Duration) -> Self {
        Self {
            owner_of: Arc::new(move |flow| match flow.local_port {
                1 => Owner::Process(Arc::clone(&process)),
                _ => Owner::NoLocalSocket,
            }),
            delay,
            gate: None,
            asked: Arc::default(),
        }
    }

    fn enricher(&self) -> Enricher {
        let fake = self.clone();
        enricher().with_resolver(Arc::new(move || Box::new(fake.clone())))
    }
}

fn described(pid: u32, exe: &str) -> Arc<ProcessInfo> {
    Arc::new(ProcessInfo {
        pid,
        comm: exe.rsplit('/').next().unwrap().into(),
        exe: Some(exe.into()),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: "root".into(),
        cmdline: exe.into(),
    })
}

fn owners(enriched: &EnrichedSnapshot) -> Vec<Owner> {
    enriched
        .flows()
        .map(|(_, facts)| facts.owner.clone())
        .collect()
}

/// More than a test's budget (a tenth of its 1 s intervals, at most 50 ms), and well
/// under what a loaded machine might add to it.
const SLOW: Duration = Duration::from_millis(400);

use std::sync::Mutex;

use crate::proc::ProcessInfo;

#[test]
fn owners_answered_within_the_budget_are_there_at_once() {
    let nginx = described(4242, "/usr/sbin/nginx");
    let mut enricher = FakeResolver::new(nginx.clone(), Duration::ZERO).enricher();
    let flows = vec![
        flow(TCP, 1, [198, 51, 100, 1], 443, true),
        flow(TCP, 2, [198, 51, 100, 2], 443, true),
    ];
    let enriched = enricher.enrich(snapshot(flows), Instant::now());
    assert_eq!(
        owners(&enriched),
        [Owner::Process(nginx), Owner::NoLocalSocket]
    );
}

#[test]
fn a_slow_lookup_leaves_the_flow_resolving_and_a_later_interval_has_its_owner() {
    let nginx = described(4242, "/usr/sbin/nginx");
    let fake = FakeResolver::new(nginx.clone(), SLOW);
    let mut enricher = fake.enricher();
    let flows = vec![
        flow(TCP, 1, [198, 51, 100, 1], 443, true),
        // Sends to a pool port: a sign to judge once its owner is known.
        flow(TCP, 2, [198, 51, 100, 2], 3333, true),
        // No socket carries ICMP: known at once, never asked about.
        flow(1, 0, [198, 51, 100, 3], 0, true),
    ];
    let start = Instant::now();
    let took = Instant::now();
    let first = enricher.enrich(snapshot(flows.clone()), start);
    let took = took.elapsed();
    assert!(took < SLOW, "enrich waited {took:?} for a slow lookup");
    assert_eq!(
        owners(&first),
        [Owner::Resolving, Owner::Resolving, Owner::NoLocalSocket]
    );
    let (_, pool) = first.flow(1).unwrap();
    assert!(
        !pool.judgement.reasons.contains(&Reason::NoLocalProcess),
        "resolving is not \"no local process\": {:?}",
        pool.judgement.reasons
    );
    std::thread::sleep(SLOW + SLOW / 2);
    let later = enricher.enrich(snapshot(flows), start + Duration::from_secs(1));
    assert_eq!(
        owners(&later),
        [
            Owner::Process(nginx),
            Owner::NoLocalSocket,
            Owner::NoLocalSocket
        ]
    );
    let (_, pool) = later.flow(1).unwrap();
    assert!(pool.judgement.reasons.contains(&Reason::NoLocalProcess));
    // Each flow was asked about once, though two intervals reported it.
    assert_eq!(fake.asked.lock().unwrap().len(), 2);
}

#[test]
fn flows_refused_while_the_resolver_is_behind_are_asked_again_and_none_is_lost() {
    let nginx = described(4242, "/usr/sbin/nginx");
    let (open, gate) = crossbeam_channel::bounded::<()>(0);
    let mut fake = FakeResolver::new(nginx.clone(), Duration::ZERO);
    fake.gate = Some(gate);
    let mut enricher = fake.enricher();
    let start = Instant::now();
    // One new flow each interval, the older ones still moving, while the resolver is
    // stuck on its first batch: its queue fills and later batches are refused.
    let mut flows = Vec::new();
    for interval in 0..6u8 {
        flows.push(flow(TCP, 1, [198, 51, 100, interval], 443, true));
        let now = start + Duration::from_secs(interval.into());
        let enriched = enricher.enrich(snapshot(flows.clone()), now);
        assert!(owners(&enriched).iter().all(|o| *o == Owner::Resolving));
    }
    drop(open);
    let mut interval = 6;
    let all_owned = loop {
        let now = start + Duration::from_secs(interval);
        let enriched = enricher.enrich(snapshot(flows.clone()), now);
        let owned = owners(&enriched)
            .iter()
            .all(|owner| *owner == Owner::Process(nginx.clone()));
        if owned || interval == 60 {
            break owned;
        }
        interval += 1;
        // Intervals are apart: the resolver has time to answer between them.
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(all_owned, "every flow gets its owner");
    let mut asked: Vec<IpAddr> = fake
        .asked
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.remote_ip)
        .collect();
    asked.sort();
    let flows: Vec<IpAddr> = flows.iter().map(|f| f.id.remote_ip).collect();
    assert_eq!(asked, flows, "each flow was looked up once");
}

#[test]
fn a_late_owner_is_its_own_process_even_if_another_now_has_its_pid() {
    // The first owner ran from /tmp (suspicious); after it exited, its pid went to a
    // process from /usr/sbin. The late answer for the old flow names the old process.
    let old = described(4242, "/tmp/.x/miner");
    let new = described(4242, "/usr/sbin/nginx");
    let old_flow = flow(TCP, 1, [198, 51, 100, 1], 443, true);
    let owner_of = {
        let (old, new) = (old.clone(), new.clone());
        let old_id = old_flow.id.clone();
        move |flow: &FlowId| match *flow == old_id {
            true => Owner::Process(Arc::clone(&old)),
            false => Owner::Process(Arc::clone(&new)),
        }
    };
    let mut fake = FakeResolver::new(old.clone(), SLOW);
    fake.owner_of = Arc::new(owner_of);
    let mut enricher = fake.enricher();
    let start = Instant::now();
    enricher.enrich(snapshot(vec![old_flow.clone()]), start);
    std::thread::sleep(SLOW + SLOW / 2);
    let new_flow = flow(TCP, 1, [198, 51, 100, 2], 443, true);
    let flows = vec![old_flow, new_flow];
    enricher.enrich(snapshot(flows.clone()), start + Duration::from_secs(1));
    std::thread::sleep(SLOW + SLOW / 2);
    let enriched = enricher.enrich(snapshot(flows), start + Duration::from_secs(2));
    assert_eq!(
        owners(&enriched),
        [Owner::Process(old), Owner::Process(new)]
    );
    let verdicts: Vec<_> = enriched
        .flows()
        .map(|(_, facts)| facts.judgement.verdict)
        .collect();
    use verdict::Verdict::{Business, Suspicious};
    assert_eq!(verdicts, [Suspicious, Business]);
}

#[test]
fn dropping_the_enricher_does_not_wait_for_a_lookup_under_way() {
    let fake = FakeResolver::new(described(4242, "/usr/sbin/nginx"), SLOW);
    let mut enricher = fake.enricher();
    let flows = vec![flow(TCP, 1, [198, 51, 100, 1], 443, true)];
    enricher.enrich(snapshot(flows), Instant::now());
    let dropped = Instant::now();
    drop(enricher);
    assert!(
        dropped.elapsed() < SLOW / 2,
        "drop took {:?}",
        dropped.elapsed()
    );
}
