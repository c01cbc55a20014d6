//! Reverse DNS for `--resolve`, off the screen's thread: the console asks for the hosts
//! it shows and keeps drawing the addresses; names replace them as they arrive.
//!
//! A lookup can take seconds (a dead resolver times out), so a few workers take requests
//! from a bounded queue. When the queue is full a request is dropped and asked again at
//! the next refresh; answers, also "no name", are cached.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::Arc,
    thread,
};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

/// Lookups waiting for a worker; beyond this, requests wait for a later refresh.
const QUEUE: usize = 64;
const WORKERS: usize = 4;
/// Addresses remembered; past this the cache starts again (names can change anyway).
const CACHE_LIMIT: usize = 50_000;

/// A name for an address, or `None`: the seam for tests (the system's is [`system`]).
pub type Lookup = Arc<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

/// Asks the system resolver (getnameinfo: /etc/hosts, then DNS).
pub fn system() -> Lookup {
    Arc::new(|ip| {
        dns_lookup::lookup_addr(&ip)
            .ok()
            .filter(|name| *name != ip.to_string())
    })
}

pub struct Resolver {
    requests: Sender<IpAddr>,
    answers: Receiver<(IpAddr, Option<String>)>,
    /// Answers so far, `None` for addresses with no name.
    known: HashMap<IpAddr, Option<String>>,
    pending: HashSet<IpAddr>,
}

impl Resolver {
    /// Starts the workers; they end when the resolver is dropped.
    pub fn start(lookup: Lookup) -> Self {
        let (requests, queue) = bounded::<IpAddr>(QUEUE);
        let (answer, answers) = unbounded();
        for n in 0..WORKERS {
            let (queue, answer, lookup) = (queue.clone(), answer.clone(), lookup.clone());
            // A worker that cannot start leaves its requests to the others.
            let _ = thread::Builder::new()
                .name(format!("resolve-{n}"))
                .spawn(move || {
                    for ip in queue {
                        if answer.send((ip, lookup(ip))).is_err() {
                            break;
                        }
                    }
                });
        }
        Self {
            requests,
            answers,
            known: HashMap::new(),
            pending: HashSet::new(),
        }
    }

    /// Asks for `ip`'s name unless it is known or asked for already; never waits.
    pub fn want(&mut self, ip: IpAddr) {
        if self.known.contains_key(&ip) || self.pending.contains(&ip) {
            return;
        }
        match self.requests.try_send(ip) {
            Ok(()) => {
                self.pending.insert(ip);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
        }
    }

    /// Where answers arrive, for the screen's event loop.
    pub fn answers(&self) -> &Receiver<(IpAddr, Option<String>)> {
        &self.answers
    }

    /// Records an answer; returns the name, if there is one.
    pub fn record(&mut self, ip: IpAddr, name: Option<String>) -> Option<&str> {
        self.pending.remove(&ip);
        if self.known.len() >= CACHE_LIMIT {
            self.known.clear();
        }
        self.known
            .entry(ip)
            .insert_entry(name)
            .into_mut()
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::Ipv4Addr,
        sync::{
            Mutex,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[test]
    fn names_arrive_without_waiting_and_are_asked_once() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let lookup: Lookup = Arc::new(move |ip| {
            counter.fetch_add(1, Ordering::Relaxed);
            (ip == IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))).then(|| "pool.example".into())
        });
        let mut resolver = Resolver::start(lookup);
        let named = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let nameless = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8));
        resolver.want(named);
        resolver.want(nameless);
        resolver.want(named);
        let mut names = HashMap::new();
        for _ in 0..2 {
            let (ip, name) = resolver
                .answers()
                .recv_timeout(Duration::from_secs(5))
                .expect("an answer");
            names.insert(ip, resolver.record(ip, name).map(str::to_owned));
        }
        assert_eq!(names[&named].as_deref(), Some("pool.example"));
        assert_eq!(names[&nameless], None);
        resolver.want(named);
        resolver.want(nameless);
        assert_eq!(asked.load(Ordering::Relaxed), 2, "answers are cached");
    }

    #[test]
    fn a_full_queue_drops_requests_instead_of_waiting() {
        // Workers stuck on a lookup until the test releases them.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let inner = gate.clone();
        let lookup: Lookup = Arc::new(move |_| {
            drop(inner.lock());
            None
        });
        let mut resolver = Resolver::start(lookup);
        for n in 0..=(QUEUE + WORKERS + 10) as u32 {
            resolver.want(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n)));
        }
        assert!(resolver.pending.len() <= QUEUE + WORKERS);
        drop(held);
    }
}
