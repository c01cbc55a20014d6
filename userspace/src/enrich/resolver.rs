//! The resolving thread: the `/proc` work of finding flows' owners, off the metering
//! thread, so that enrichment never holds the reader up.
//!
//! [`super::Enricher`] hands each interval's due flows (new ones, and unowned ones due for
//! a retry) to [`Resolver::ask`] as one batch, waits for answers at most [`budget`], and
//! takes every answer that is ready ([`Resolver::answers`]), those of earlier intervals
//! too. Flows still unanswered are shown as [`Owner::Resolving`] until theirs arrives. The
//! thread owns the socket table (`/proc/net/*`, `/proc/*/fd`); the enricher keeps the
//! caches and the judgements.

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use rustc_hash::FxHashSet;

use crate::{datapath::FlowId, shrink};

use super::sockets::{Owner, SocketTable};

/// The `/proc` work: the owner of each flow. A trait so tests can make it slow.
pub trait Resolve: Send {
    /// Work done once when the thread starts, before any batch.
    fn prime(&mut self) {}

    /// The owners of `flows`, in their order, as `/proc` shows them at `now`.
    fn owners(&mut self, flows: &[FlowId], now: Instant) -> Vec<Owner>;

    /// Forgets what is no longer needed at `now`, while no batch comes.
    fn forget_idle(&mut self, _now: Instant) {}
}

impl Resolve for SocketTable {
    fn prime(&mut self) {
        SocketTable::prime(self);
    }

    fn owners(&mut self, flows: &[FlowId], now: Instant) -> Vec<Owner> {
        self.resolve(flows, now);
        flows
            .iter()
            .map(|flow| self.owner(flow).cloned().unwrap_or(Owner::Unresolved))
            .collect()
    }

    fn forget_idle(&mut self, now: Instant) {
        SocketTable::forget_idle(self, now);
    }
}

/// Makes the work, on the thread that will do it (again if that thread was lost).
pub type MakeWork = Arc<dyn Fn() -> Box<dyn Resolve> + Send + Sync>;

/// Batches that may wait for the thread beside the one it works on; beyond them,
/// [`Resolver::ask`] refuses and the flows stay due for the next interval.
const QUEUED_BATCHES: usize = 2;

/// How long an interval of `interval` waits for its owners: a quarter of it, within
/// 20..=250 ms. The next read stays on time, and a cycle at a million flows within its
/// 250 ms; on a quiet host the answer comes in the same interval, as when `/proc` was
/// read inline, also in a debug build on a loaded machine (a cold lookup took 40-100 ms
/// there, a warm one 20 ms; a tenth of the interval flaked).
pub fn budget(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(250))
}

/// How often the thread forgets idle flows while no batch comes.
const FORGET_EVERY: Duration = Duration::from_secs(5);

/// The owners of one batch, in the order they were asked for.
#[derive(Debug)]
pub struct Answer {
    pub flows: Vec<FlowId>,
    pub owners: Vec<Owner>,
    /// The `now` the batch was asked at: when the owners were checked.
    pub asked: Instant,
}

/// Hands batches to the resolving thread and takes its answers. Bounded: at most
/// `QUEUED_BATCHES` wait, one is worked on and `QUEUED_BATCHES + 1` answers wait, so
/// the pending flows are at most a few intervals' new ones.
pub struct Resolver {
    make: MakeWork,
    mode: Mode,
    /// Flows asked for and not answered yet: asked for once, however long it takes.
    pending: FxHashSet<FlowId>,
    /// Batches asked for and not answered yet.
    unanswered: usize,
}

enum Mode {
    /// No thread (the last one was lost): the next batch starts one.
    NotStarted,
    Thread(Worker),
    /// Every batch answered at once on the caller's thread: the path before the thread,
    /// kept for benchmarks (and used if no thread can be started).
    Inline {
        work: Box<dyn Resolve>,
        answers: Vec<Answer>,
    },
}

struct Worker {
    requests: Sender<Request>,
    answers: Receiver<Answer>,
}

struct Request {
    flows: Vec<FlowId>,
    asked: Instant,
}

impl Resolver {
    /// Resolves on its own thread, started now, from the calling thread: see
    /// [`Self::start`] for why that thread's namespace is the one read.
    pub fn threaded(make: MakeWork) -> Self {
        let mut resolver = Self {
            make,
            mode: Mode::NotStarted,
            pending: FxHashSet::default(),
            unanswered: 0,
        };
        resolver.mode = resolver.start();
        resolver
    }

    /// Resolves each batch at once, on the thread that asks.
    pub fn inline(mut self) -> Self {
        self.lost();
        self.mode = Mode::Inline {
            work: (self.make)(),
            answers: Vec::new(),
        };
        self
    }

    /// Whether `flow` was asked for and is not answered yet.
    pub fn is_pending(&self, flow: &FlowId) -> bool {
        self.pending.contains(flow)
    }

    /// Hands `flows` (none of them pending) to the resolver. False if it has enough
    /// batches waiting: the flows are not taken, and stay due.
    pub fn ask(&mut self, flows: Vec<FlowId>, now: Instant) -> bool {
        if flows.is_empty() {
            return true;
        }
        if let Mode::NotStarted = self.mode {
            self.mode = self.start();
        }
        match &mut self.mode {
            Mode::NotStarted => unreachable!("started above"),
            Mode::Inline { work, answers } => {
                let owners = work.owners(&flows, now);
                answers.push(Answer {
                    flows,
                    owners,
                    asked: now,
                });
                true
            }
            Mode::Thread(worker) => {
                let pending: Vec<FlowId> = flows.clone();
                match worker.requests.try_send(Request { flows, asked: now }) {
                    Ok(()) => {
                        self.pending.extend(pending);
                        self.unanswered += 1;
                        true
                    }
                    Err(TrySendError::Full(_)) => false,
                    Err(TrySendError::Disconnected(_)) => {
                        self.lost();
                        false
                    }
                }
            }
        }
    }

    /// Every answer that is ready, waiting until `deadline` while batches are unanswered.
    /// A deadline already past takes only what is ready.
    pub fn answers(&mut self, deadline: Instant) -> Vec<Answer> {
        let mut ready = Vec::new();
        match &mut self.mode {
            Mode::NotStarted => {}
            Mode::Inline { answers, .. } => ready = std::mem::take(answers),
            Mode::Thread(worker) => {
                while self.unanswered > 0 {
                    match worker.answers.recv_deadline(deadline) {
                        Ok(answer) => {
                            self.unanswered -= 1;
                            ready.push(answer);
                        }
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => {
                            self.lost();
                            break;
                        }
                    }
                }
            }
        }
        for answer in &ready {
            for flow in &answer.flows {
                self.pending.remove(flow);
            }
        }
        shrink::to_live(&mut self.pending);
        ready
    }

    /// The thread ended (it panicked): what it held is never answered, so nothing is
    /// pending; the next batch starts another.
    fn lost(&mut self) {
        self.mode = Mode::NotStarted;
        self.pending.clear();
        self.unanswered = 0;
    }

    fn start(&self) -> Mode {
        let (requests, inbox) = bounded::<Request>(QUEUED_BATCHES);
        let (outbox, answers) = bounded::<Answer>(QUEUED_BATCHES + 1);
        let make = Arc::clone(&self.make);
        // A thread starts in the network namespace of the thread that spawns it (clone(2)
        // copies the caller's namespaces, which setns may have changed, not the first
        // thread's). It is spawned by the caller of `Enricher::new` (or of `enrich`, after
        // a loss), which meters, so the socket tables it reads (`/proc/thread-self/net`)
        // are those of the metered namespace, as when the caller read them itself.
        let spawned = thread::Builder::new()
            .name("flowmeter-resolve".into())
            .spawn(move || {
                let mut work = make();
                // While the programs attach: the first interval's flows are then mostly
                // on sockets whose holders are known.
                work.prime();
                // Ends when the enricher drops: no more requests, or no one to answer.
                // It is not joined: a long batch at exit delays nothing.
                loop {
                    let request = match inbox.recv_timeout(FORGET_EVERY) {
                        Ok(request) => request,
                        // No new flow for a while (a flood ended): what it left is
                        // forgotten all the same.
                        Err(RecvTimeoutError::Timeout) => {
                            work.forget_idle(Instant::now());
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let owners = work.owners(&request.flows, request.asked);
                    let answer = Answer {
                        flows: request.flows,
                        owners,
                        asked: request.asked,
                    };
                    if outbox.send(answer).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => Mode::Thread(Worker { requests, answers }),
            Err(_) => Mode::Inline {
                work: (self.make)(),
                answers: Vec::new(),
            },
        }
    }
}
