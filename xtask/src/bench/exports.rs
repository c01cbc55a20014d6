//! What the exports cost at 100,000 flows, side by side: `flowmeter log` under the
//! whole-program part's 100,000-flow load (program.rs: the same lab, trafgen and window),
//! once plain, once with `--metrics` scraped ten times a second, and once with `--ipfix`
//! to a collector socket. Each round runs the three one after another, and the ratios to
//! plain are taken within a round, so that a busy minute on this shared machine moves
//! all three. The scraper and the collector are threads of the bench that entered the
//! receiver's namespace, where the log listens and sends.
//!
//! All three use a short `--active-timeout`, so that every window holds a flush of all
//! 100,000 flows' records: the log writes them in every setup, and the IPFIX setup also
//! sends them.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow};

use super::{
    Plan,
    lab::{self, Lab, Netns},
    procs,
    program::{self, LOADS, Load, STOP_GRACE, Sample},
    results::{Record, median},
};

/// The whole-program part's 100,010-flow load.
const LOAD: &Load = &LOADS[4];
const METRICS: &str = "127.0.0.1:9465";
const COLLECTOR: &str = "127.0.0.1:4739";
/// Prometheus scrapes every 15 s by default; this is 150 times as often.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// Messages further apart than this belong to different flushes.
const FLUSH_GAP: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Plain,
    Scraped,
    Ipfix,
}

pub struct Setup {
    pub id: &'static str,
    pub label: &'static str,
    side: Side,
}

pub const SETUPS: [Setup; 3] = [
    Setup {
        id: "plain",
        label: "no export",
        side: Side::Plain,
    },
    Setup {
        id: "scraped",
        label: "`--metrics`, scraped every 100 ms",
        side: Side::Scraped,
    },
    Setup {
        id: "ipfix",
        label: "`--ipfix` to a collector socket",
        side: Side::Ipfix,
    },
];

/// What the scraper or the collector saw, with when.
enum Seen {
    /// A scrape began at `.0`; `.1` is how long a whole answer took, `None` if it failed.
    Scrape(Instant, Option<Duration>),
    /// An IPFIX message arrived at `.0`, with the sequence number `.1` (the data records
    /// sent before it).
    Message(Instant, u32),
}

/// Where a side thread says that its socket is bound (or why not).
type Ready = mpsc::Sender<Result<()>>;

/// What a side thread runs: until the flag is set, then it returns what it saw.
type SideBody = fn(&AtomicBool, &Ready) -> Result<Vec<Seen>>;

/// A side thread and the flag that stops it.
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<Seen>>>,
}

impl Running {
    fn finish(self) -> Result<Vec<Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("the bench's side thread panicked"))?
    }
}

/// One round's measurement of one setup.
struct Run {
    sample: Sample,
    seen: Vec<Seen>,
}

pub fn run(plan: &Plan, flowmeter: &Path, dir: &Path) -> Result<Vec<Record>> {
    let lab = Lab::new()?;
    // rounds[r][s]: setup s of round r, if it ran.
    let mut rounds: Vec<Vec<Option<Run>>> = Vec::new();
    let mut failures: Vec<Vec<String>> = SETUPS.iter().map(|_| Vec::new()).collect();
    for round in 1..=plan.runs {
        let mut runs = Vec::new();
        for (i, setup) in SETUPS.iter().enumerate() {
            let name = format!("exports-{}-{round}", setup.id);
            match measure(&lab, setup, plan, flowmeter, dir, &name) {
                Ok(run) => {
                    println!("bench: {name}: {}", program::summary(&run.sample));
                    if run.sample.killed {
                        failures[i].push(format!(
                            "run {round}: killed {STOP_GRACE:?} after SIGINT (its window counts)"
                        ));
                    }
                    runs.push(Some(run));
                }
                Err(e) => {
                    procs::check()?;
                    eprintln!("warning: bench {name} failed: {e:#}");
                    failures[i].push(format!("run {round}: {e:#}"));
                    runs.push(None);
                }
            }
        }
        rounds.push(runs);
    }
    Ok(records(plan, &rounds, &failures))
}

fn measure(
    lab: &Lab,
    setup: &Setup,
    plan: &Plan,
    flowmeter: &Path,
    dir: &Path,
    name: &str,
) -> Result<Run> {
    let side = match setup.side {
        Side::Plain => None,
        Side::Scraped => Some(start(&lab.receiver, scrape)?),
        Side::Ipfix => Some(start(&lab.receiver, collect)?),
    };
    let sample = program::measure(
        lab,
        LOAD,
        &extra_args(setup, plan),
        plan,
        flowmeter,
        dir,
        name,
    );
    // The side stops whether or not the window was measured.
    let seen = side.map(Running::finish).transpose()?.unwrap_or_default();
    Ok(Run {
        sample: sample?,
        seen,
    })
}

/// The options after the whole-program part's.
fn extra_args(setup: &Setup, plan: &Plan) -> Vec<String> {
    let mut args = vec![
        "--active-timeout".to_owned(),
        format!("{}", plan.cpu_secs / 2.0),
    ];
    match setup.side {
        Side::Plain => {}
        Side::Scraped => args.extend(["--metrics".to_owned(), METRICS.to_owned()]),
        Side::Ipfix => args.extend(["--ipfix".to_owned(), COLLECTOR.to_owned()]),
    }
    args
}

/// The command line, as the table shows it.
pub fn shown_flowmeter(plan: &Plan) -> String {
    format!(
        "{} --active-timeout {}",
        program::shown_flowmeter(LOAD, plan),
        plan.cpu_secs / 2.0
    )
}

/// Starts `body` on a thread inside `netns`, once it says it is ready (its socket bound).
fn start(netns: &Netns, body: SideBody) -> Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel();
    let thread = {
        let stop = Arc::clone(&stop);
        let name = netns.name().to_owned();
        thread::spawn(move || {
            if let Err(e) = lab::enter(&name) {
                let _ = ready_tx.send(Err(anyhow!("{e:#}")));
                return Err(e);
            }
            body(&stop, &ready_tx)
        })
    };
    let running = Running { stop, thread };
    match ready.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(running),
        Ok(Err(e)) => {
            let _ = running.finish();
            Err(e)
        }
        Err(_) => {
            let _ = running.finish();
            Err(anyhow!("the bench's side thread did not start"))
        }
    }
}

/// Asks `/metrics` every [`SCRAPE_EVERY`] until stopped. Scrapes before the first answer
/// (the log still starting) are not kept.
fn scrape(stop: &AtomicBool, ready: &Ready) -> Result<Vec<Seen>> {
    let _ = ready.send(Ok(()));
    let address: SocketAddr = METRICS.parse()?;
    let mut seen = Vec::new();
    let mut answered_once = false;
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let answer = get_metrics(address).then(|| began.elapsed());
        answered_once |= answer.is_some();
        if answered_once {
            seen.push(Seen::Scrape(began, answer));
        }
        thread::sleep(SCRAPE_EVERY.saturating_sub(began.elapsed()));
    }
    Ok(seen)
}

/// One whole answer of `/metrics`: status 200 and the exposition's `# EOF` at the end.
fn get_metrics(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut response = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut response).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1) == Some("200") && text.ends_with("# EOF\n")
}

/// Receives IPFIX messages on [`COLLECTOR`] until stopped, keeping each one's arrival and
/// sequence number.
fn collect(stop: &AtomicBool, ready: &Ready) -> Result<Vec<Seen>> {
    let socket = UdpSocket::bind(COLLECTOR).with_context(|| format!("binding {COLLECTOR}"))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let _ = ready.send(Ok(()));
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok(len) = socket.recv(&mut buf) else {
            continue; // the timeout, to look at the flag
        };
        if let Some(sequence) = sequence_number(&buf[..len]) {
            seen.push(Seen::Message(Instant::now(), sequence));
        }
    }
    Ok(seen)
}

/// RFC 7011 3.1: version 10, length, export time, sequence number, domain.
fn sequence_number(message: &[u8]) -> Option<u32> {
    let header = message.get(..16)?;
    (header[..2] == [0, 10]).then(|| u32::from_be_bytes(header[8..12].try_into().expect("4")))
}

/// The scrapes that began inside the window: their answers' times in ms, and how many
/// failed.
fn scrapes_in(run: &Run) -> (Vec<f64>, usize) {
    let (t0, t1) = run.sample.window;
    let mut times = Vec::new();
    let mut failed = 0;
    for seen in &run.seen {
        if let Seen::Scrape(at, answer) = seen
            && (t0..t1).contains(at)
        {
            match answer {
                Some(took) => times.push(took.as_secs_f64() * 1e3),
                None => failed += 1,
            }
        }
    }
    (times, failed)
}

/// The arrivals and sequence numbers of the IPFIX messages.
fn messages(run: &Run) -> Vec<(Instant, u32)> {
    run.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Message(at, sequence) => Some((*at, *sequence)),
            Seen::Scrape(..) => None,
        })
        .collect()
}

/// Data records sent per second over the window: the sequence number of the first
/// message after it, less that of the first message in it.
fn records_per_second(run: &Run) -> Option<f64> {
    let (t0, t1) = run.sample.window;
    let messages = messages(run);
    let first = messages.iter().find(|(at, _)| *at >= t0)?;
    let after = messages.iter().find(|(at, _)| *at >= t1)?;
    Some(f64::from(after.1.wrapping_sub(first.1)) / (t1 - t0).as_secs_f64())
}

/// Each flush (messages less than [`FLUSH_GAP`] apart) whose record count is known (a
/// message follows it): its records, and records per second from its first message to
/// its last.
fn flushes(run: &Run) -> Vec<(f64, f64)> {
    let messages = messages(run);
    let mut starts: Vec<usize> = vec![0];
    for i in 1..messages.len() {
        if messages[i].0 - messages[i - 1].0 > FLUSH_GAP {
            starts.push(i);
        }
    }
    starts
        .windows(2)
        .filter_map(|pair| {
            let (first, last, next) = (messages[pair[0]], messages[pair[1] - 1], messages[pair[1]]);
            let records = f64::from(next.1.wrapping_sub(first.1));
            let secs = (last.0 - first.0).as_secs_f64();
            (pair[1] - pair[0] >= 10 && secs > 0.0).then(|| (records, records / secs))
        })
        .collect()
}

fn records(plan: &Plan, rounds: &[Vec<Option<Run>>], failures: &[Vec<String>]) -> Vec<Record> {
    let command = format!(
        "{} in the receiver's namespace; the whole-program part's 100,010-flow trafgen load",
        shown_flowmeter(plan)
    );
    let record = |name: String, unit: &str, values: &[f64]| {
        Record::new(name, "flowmeter", unit)
            .hook(Some("auto"))
            .traffic(LOAD.label)
            .command(command.clone())
            .samples(values)
    };
    let of = |s: usize| rounds.iter().filter_map(move |r| r[s].as_ref());
    let mut out = Vec::new();
    for (s, setup) in SETUPS.iter().enumerate() {
        let pick =
            |f: fn(&Sample) -> Option<f64>| of(s).filter_map(|r| f(&r.sample)).collect::<Vec<_>>();
        let id = setup.id;
        out.push(
            record(
                format!("exports-cpu/{id}"),
                "% of one core",
                &pick(|s| Some(s.cpu_pct)),
            )
            .note(failures[s].join("; ")),
        );
        out.push(record(
            format!("exports-rss/{id}"),
            "MiB (VmHWM)",
            &pick(|s| Some(s.rss_mib)),
        ));
        out.push(record(
            format!("exports-cycle-p50/{id}"),
            "ms",
            &pick(|s| s.cycle.map(|c| c.p50)),
        ));
        out.push(record(
            format!("exports-cycle-p99/{id}"),
            "ms",
            &pick(|s| s.cycle.map(|c| c.p99)),
        ));
        out.push(record(
            format!("exports-cycle-max/{id}"),
            "ms",
            &pick(|s| s.cycle.map(|c| c.max)),
        ));
        if setup.side == Side::Plain {
            continue;
        }
        // Within a round, against that round's plain run.
        let ratio = |f: fn(&Sample) -> Option<f64>| {
            rounds
                .iter()
                .filter_map(|r| {
                    let (plain, this) = (f(&r[0].as_ref()?.sample)?, f(&r[s].as_ref()?.sample)?);
                    (plain > 0.0).then(|| this / plain)
                })
                .collect::<Vec<_>>()
        };
        let ratio_unit = "ratio to no export, same round";
        out.push(record(
            format!("exports-ratio-cpu/{id}"),
            ratio_unit,
            &ratio(|s| Some(s.cpu_pct)),
        ));
        out.push(record(
            format!("exports-ratio-cycle-p50/{id}"),
            ratio_unit,
            &ratio(|s| s.cycle.map(|c| c.p50)),
        ));
        out.push(record(
            format!("exports-ratio-cycle-p99/{id}"),
            ratio_unit,
            &ratio(|s| s.cycle.map(|c| c.p99)),
        ));
    }
    let scraped = || of(1).map(scrapes_in);
    let pooled = |f: fn(&[f64]) -> Option<f64>| {
        scraped()
            .filter_map(|(mut times, _)| {
                times.sort_by(f64::total_cmp);
                f(&times)
            })
            .collect::<Vec<_>>()
    };
    out.push(record("exports-scrape-p50".into(), "ms", &pooled(median)));
    out.push(record(
        "exports-scrape-p99".into(),
        "ms",
        &pooled(|t| percentile(t, 0.99)),
    ));
    out.push(record(
        "exports-scrape-max".into(),
        "ms",
        &pooled(|t| t.last().copied()),
    ));
    out.push(record(
        "exports-scrapes".into(),
        "scrapes answered in the window",
        &scraped().map(|(t, _)| t.len() as f64).collect::<Vec<_>>(),
    ));
    out.push(record(
        "exports-scrape-failures".into(),
        "scrapes unanswered in the window",
        &scraped()
            .map(|(_, failed)| failed as f64)
            .collect::<Vec<_>>(),
    ));
    out.push(record(
        "exports-ipfix-records-per-s".into(),
        "data records/s over the window",
        &of(2).filter_map(records_per_second).collect::<Vec<_>>(),
    ));
    let flushed: Vec<(f64, f64)> = of(2).flat_map(flushes).collect();
    out.push(record(
        "exports-ipfix-flush-records".into(),
        "data records per flush",
        &flushed.iter().map(|f| f.0).collect::<Vec<_>>(),
    ));
    out.push(record(
        "exports-ipfix-flush-rate".into(),
        "data records/s within a flush",
        &flushed.iter().map(|f| f.1).collect::<Vec<_>>(),
    ));
    out
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::{percentile, sequence_number};

    #[test]
    fn reads_the_sequence_number_of_ipfix_messages_only() {
        let mut message = vec![0, 10, 0, 40, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 7];
        assert_eq!(sequence_number(&message), Some(256));
        message[1] = 9; // NetFlow v9
        assert_eq!(sequence_number(&message), None);
        assert_eq!(sequence_number(&[0, 10]), None);
    }

    #[test]
    fn takes_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&[3.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[], 0.99), None);
    }
}
