//! `flowmeter log --metrics`, scraped by a real Prometheus (Debian's `prometheus`,
//! `/usr/bin/prometheus`; `cargo xtask setup` installs it) that the test starts on a
//! free loopback port with a scrape interval of 1 s, its own configuration and a TSDB in
//! a temporary directory, and kills on every path (`Prometheus`'s drop).
//!
//! Prometheus runs in namespace `a`, beside flowmeter (`ip netns exec`, loopback up):
//! the metrics listener is in the namespace flowmeter meters, as on a host, and a
//! scraper reaches it there; nothing listens in the host's own namespace. The test asks
//! Prometheus's query API (`/api/v1/query`) from a thread that has entered `a`.
//!
//! A known number of frames (10,000, each from another remote address and port) crosses
//! the veth pair; Prometheus must then return exactly those packets and bytes for the
//! interface, say the target is up, and hold no more series than docs/metrics.md's
//! bound. The endpoint comes from the configuration file's `[log]` table, which so is
//! tested too. The endpoint must also answer every scrape while 100,000 flows arrive and
//! end. Needs root.

mod common;

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use common::{
    Flowmeter,
    attach::{attached, wait_detached},
    console::ScriptedConsole,
    netns::{Family, MAC_A, MAC_B, Netns, VethPair},
    packets::{self, RawSender, UDP_FRAME_HEADERS},
};

const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Distinct remotes sent to a: each frame is another flow.
const REMOTES: u64 = 10_000;
const PAYLOAD: usize = 18;
/// `--metrics-top` in the test's configuration.
const METRICS_TOP: u64 = 5;
/// How long Prometheus may take to be ready, to scrape, to show what was sent.
const PATIENCE: Duration = Duration::from_secs(20);

/// docs/metrics.md: the most series one host exports with `I` interfaces, `--metrics-top
/// N` and `C` country labels (the database's codes with `local` and `unknown`; 252 for
/// the embedded DB-IP database), plus the 5 Prometheus adds per target (`up`, `scrape_*`).
fn series_bound(interfaces: u64, top: u64, countries: u64) -> u64 {
    25 * interfaces + 2 * countries + 2 * top + 45 + 5
}

#[test]
fn prometheus_scrapes_exact_interface_counts_with_bounded_series() {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: `cargo xtask setup` installs Debian's prometheus"
    );
    let pair = VethPair::new(Family::V4);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port(&pair.a)));
    let config = dir.path().join("flowmeter.toml");
    fs::write(
        &config,
        format!("[log]\nmetrics = \"{metrics}\"\nmetrics-top = {METRICS_TOP}\n"),
    )
    .unwrap();
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!(
            "--iface {} --interval 0.25 --config {}",
            pair.a_if,
            config.display()
        ),
    );
    let before = pair.a_counters();
    let prometheus = Prometheus::start(&pair.a, dir.path(), metrics);
    prometheus.wait_for(r#"up{job="flowmeter"}"#, |up| up == 1.0);
    let idle_series = prometheus.value(r#"count({job="flowmeter"})"#);

    send_distinct_sources(&pair, REMOTES);
    pair.wait_quiet();
    let counted = pair.a_counters().since(&before);
    let frame = (UDP_FRAME_HEADERS + PAYLOAD) as u64;
    assert_eq!(
        (counted.rx_packets, counted.rx_bytes),
        (REMOTES, REMOTES * frame),
        "the interface's own counters: only the test's frames crossed"
    );

    let device = &pair.a_if;
    let query = |metric: &str, direction: &str| {
        format!(
            r#"flowmeter_interface_{metric}_total{{device="{device}",direction="{direction}"}}"#
        )
    };
    // Once a scrape has the last interval, every counter is exact.
    prometheus.wait_for(&query("packets", "rx"), |v| v == REMOTES as f64);
    assert_eq!(
        prometheus.value(&query("bytes", "rx")),
        (REMOTES * frame) as f64
    );
    assert_eq!(
        prometheus.value(&query("packets", "tx")),
        counted.tx_packets as f64
    );
    assert_eq!(
        prometheus.value(&query("bytes", "tx")),
        counted.tx_bytes as f64
    );
    assert_eq!(prometheus.value(r#"up{job="flowmeter"}"#), 1.0);

    let series = prometheus.value(r#"count({job="flowmeter"})"#) as u64;
    let bound = series_bound(1, METRICS_TOP, 252);
    eprintln!("series: {idle_series} idle, {series} after {REMOTES} remotes; bound {bound}");
    assert!(series <= bound, "{series} series, over the bound {bound}");
    // The remotes added a handful of series (countries, verdicts, processes), not one
    // per remote.
    assert!(
        series - (idle_series as u64) < 40,
        "{idle_series} series became {series}"
    );

    drop(prometheus);
    flowmeter.stop_when_quiet(&pair, &before);
    wait_detached(&pair);
}

/// `top` and `bench` serve the same families from their own loops: the interface's exact
/// counts; `top`'s enriched traffic by country too, `bench` (no enrichers) none.
#[test]
fn top_and_bench_serve_exact_interface_counts() {
    const SENT: u64 = 300;
    for command in ["top", "bench"] {
        let pair = VethPair::new(Family::V4);
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port(&pair.a)));
        let args = format!("--iface {} --metrics {metrics}", pair.a_if);
        // Each ends with the test: `script` and the console are killed on drop, and so
        // is `bench` (which would end after its --duration anyway).
        let _top;
        let _bench;
        if command == "top" {
            _top = ScriptedConsole::start(&pair.a, &format!("{args} --interval 0.25"), "");
        } else {
            _bench = Flowmeter::spawn(&pair.a, &format!("bench {args} --duration 30"));
        }
        wait_until(&format!("{command} attached"), || {
            attached(&pair).tc_ingress == 1
        });
        send_distinct_sources(&pair, SENT);
        let packets = format!(
            r#"flowmeter_interface_packets_total{{device="{}",direction="rx"}} {SENT}"#,
            pair.a_if
        );
        let bytes = format!(
            r#"flowmeter_interface_bytes_total{{device="{}",direction="rx"}} {}"#,
            pair.a_if,
            SENT * (UDP_FRAME_HEADERS + PAYLOAD) as u64
        );
        let mut text = String::new();
        wait_until(&format!("{command}: {packets}"), || {
            text = get(&pair.a, metrics, "/metrics").1;
            text.lines().any(|line| line == packets)
        });
        assert!(
            text.lines().any(|line| line == bytes),
            "{command}: no {bytes} in\n{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{command}: {text}");
        assert_eq!(
            text.contains("flowmeter_country_bytes_total{"),
            command == "top",
            "{command}: {text}"
        );
    }
}

/// The endpoint answers while a 100,000-flow load runs: a scraper asks `/metrics` ten
/// times a second while 100,000 distinct flows arrive, fill the table, and end by idle
/// timeout (the interval that writes 100,000 flow records is the heaviest there is).
/// Every scrape is a whole exposition (200, `# EOF`), the flow gauge reaches the load,
/// and the interface's counters come out exact, so metering went on under scraping.
/// Whether scraping slows the cycle is a benchmark (`cargo xtask bench --only exports`),
/// not asserted here.
#[test]
fn the_endpoint_answers_during_a_100k_flow_load() {
    const LOAD: u64 = 100_000;
    let pair = VethPair::new(Family::V4);
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port(&pair.a)));
    let flowmeter = Flowmeter::start_log(
        &pair.a,
        &format!(
            "--iface {} --interval 0.5 --flows 131072 --new-flow-budget 0 --idle-timeout 10 \
             --metrics {metrics}",
            pair.a_if
        ),
    );
    let before = pair.a_counters();
    let scraping = AtomicBool::new(true);
    let scrapes = thread::scope(|scope| {
        let scraper = scope.spawn(|| {
            let mut scrapes = Vec::new();
            while scraping.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let (status, body) = get(&pair.a, metrics, "/metrics");
                scrapes.push(Scrape {
                    status,
                    whole: body.ends_with("# EOF\n"),
                    flows: gauge(&body, "flowmeter_flows"),
                    took: asked.elapsed(),
                });
                thread::sleep(Duration::from_millis(100));
            }
            scrapes
        });
        send_distinct_sources(&pair, LOAD);
        let packets = format!(
            r#"flowmeter_interface_packets_total{{device="{}",direction="rx"}} {LOAD}"#,
            pair.a_if
        );
        // The load arrives, is read, and its flows end (idle 10 s) and are written.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = get(&pair.a, metrics, "/metrics").1;
            let counted = text.lines().any(|line| line == packets);
            // Fewer than 1% left: the load's flows have ended (the host's own may not).
            let ended = gauge(&text, "flowmeter_flows").is_some_and(|f| f < LOAD as f64 / 100.0);
            if counted && ended {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not {packets}, or the load's flows not ended, after 90 s:\n{text}"
            );
            thread::sleep(Duration::from_millis(250));
        }
        scraping.store(false, Ordering::Relaxed);
        scraper.join().expect("the scraper")
    });
    let answered = scrapes
        .iter()
        .filter(|s| s.status == 200 && s.whole)
        .count();
    let most_flows = scrapes.iter().filter_map(|s| s.flows).fold(0.0, f64::max);
    let slowest = scrapes.iter().map(|s| s.took).max().unwrap_or_default();
    eprintln!(
        "{} scrapes, {answered} whole; at most {most_flows} flows; slowest {slowest:?}",
        scrapes.len()
    );
    assert!(scrapes.len() >= 50, "only {} scrapes", scrapes.len());
    assert_eq!(answered, scrapes.len(), "a scrape was refused or cut short");
    assert!(
        most_flows >= LOAD as f64,
        "the flow gauge never showed the load: at most {most_flows}"
    );
    flowmeter.stop_when_quiet(&pair, &before);
    wait_detached(&pair);
}

/// One answer of the scraper.
struct Scrape {
    status: u16,
    /// The body ends as the exposition format's does.
    whole: bool,
    flows: Option<f64>,
    took: Duration,
}

/// The value of an unlabelled metric's line, `NAME VALUE`.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `count` frames from b to a, each from another source address and port.
fn send_distinct_sources(pair: &VethPair, count: u64) {
    pair.b.run(|| {
        let sender = RawSender::bind(&pair.b_if);
        let macs = (packets::mac(MAC_A), packets::mac(MAC_B));
        let a_ip = packets::ipv4(pair.a_ip);
        sender.send_udp(count, PAYLOAD, |n| packets::distinct_source(n, a_ip, macs));
    });
}

/// Polls `done` until it holds, for at most [`PATIENCE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {PATIENCE:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// A port nothing listens on in `netns` (a fresh namespace: none is taken but ours).
fn free_port(netns: &Netns) -> u16 {
    netns.run(|| {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a loopback port")
            .port()
    })
}

/// A Prometheus server in a namespace, scraping one target; killed when dropped.
struct Prometheus<'a> {
    child: Child,
    netns: &'a Netns,
    address: SocketAddr,
}

impl<'a> Prometheus<'a> {
    /// Starts it with its configuration and TSDB under `dir`, and waits until ready.
    fn start(netns: &'a Netns, dir: &Path, target: SocketAddr) -> Self {
        let address = SocketAddr::from(([127, 0, 0, 1], free_port(netns)));
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: flowmeter\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name(), PROMETHEUS])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let mut prometheus = Self {
            child,
            netns,
            address,
        };
        let deadline = Instant::now() + PATIENCE;
        while get(netns, address, "/-/ready").0 != 200 {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                let log = fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
                panic!("prometheus exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in {PATIENCE:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// The instant query's one value; panics unless it has exactly one.
    fn value(&self, promql: &str) -> f64 {
        self.try_value(promql)
            .unwrap_or_else(|answer| panic!("{promql}: no single value in {answer}"))
    }

    fn try_value(&self, promql: &str) -> Result<f64, String> {
        let path = format!("/api/v1/query?query={}", percent_encoded(promql));
        let (status, body) = get(self.netns, self.address, &path);
        let answer: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        match answer["data"]["result"].as_array().map(Vec::as_slice) {
            Some([one]) => one["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| answer.to_string()),
            _ => Err(answer.to_string()),
        }
    }

    /// Waits until the query's value satisfies `wanted`.
    fn wait_for(&self, promql: &str, wanted: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.try_value(promql);
            if value.as_ref().is_ok_and(|v| wanted(*v)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} still {value:?} after {PATIENCE:?}"
            );
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus<'_> {
    fn drop(&mut self) {
        // `ip netns exec` execs prometheus: the child's pid is the server's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` at `address` inside `netns`: the status (0 if nothing answered) and body.
fn get(netns: &Netns, address: SocketAddr, path: &str) -> (u16, String) {
    netns.run(|| {
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
            return (0, String::new());
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut response).is_err()
        {
            return (0, String::new());
        }
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    })
}

/// Every byte but letters and digits as %XX, for a query string.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
