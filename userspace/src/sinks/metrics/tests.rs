//! The exposition as Prometheus reads it: names, labels, the `other` bucket, the bound
//! on series, and the endpoint over a real socket.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{CONTENT_TYPE, Families, Metrics, OTHER, Setup, UNOWNED};
use crate::{
    datapath::{DirectionTotals, FlowDelta, InterfaceTotals, Snapshot},
    enrich::{EnrichedSnapshot, Facts, geo::Location, sockets::Owner},
    sinks::fixtures::{business, flow, miner},
};

fn setup(top_processes: usize) -> Setup {
    Setup {
        top_processes,
        flow_capacity: 65_536,
        interfaces: vec![("eth0".into(), Some(1_000_000_000)), ("wg0".into(), None)],
        alerts: true,
    }
}

fn snapshot(flows: Vec<FlowDelta>) -> Snapshot {
    let rx = DirectionTotals {
        packets: 12,
        bytes: 9_000,
        unattributed_packets: 2,
        unattributed_bytes: 120,
        non_ip_packets: 2,
        non_ip_bytes: 120,
        ..DirectionTotals::default()
    };
    let tx = DirectionTotals {
        packets: 10,
        bytes: 700,
        unattributed_packets: 3,
        unattributed_bytes: 180,
        table_full_packets: 3,
        table_full_bytes: 180,
        ..DirectionTotals::default()
    };
    Snapshot {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        interval: Duration::from_secs(1),
        flows,
        interfaces: vec![InterfaceTotals {
            iface: Arc::from("eth0"),
            rx,
            tx,
        }],
        overflow: Vec::new(),
    }
}

/// A flow owned by a process named `comm`.
fn owned(comm: &str, location: Location) -> Facts {
    let mut process = (*miner()).clone();
    process.comm = comm.into();
    Facts {
        owner: Owner::Process(Arc::new(process)),
        ..business(location)
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|line| !line.starts_with('#')).collect()
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

#[test]
fn interfaces_are_named_and_labelled_as_node_exporter_does() {
    let mut families = Families::new(&setup(10));
    families.record_totals(&snapshot(Vec::new()));
    families.record_totals(&snapshot(Vec::new()));
    families.record_table(42, 3);
    let text = families.encode();
    has(&text, "# TYPE flowmeter_interface_bytes counter");
    has(
        &text,
        r#"flowmeter_interface_bytes_total{device="eth0",direction="rx"} 18000"#,
    );
    has(
        &text,
        r#"flowmeter_interface_packets_total{device="eth0",direction="tx"} 20"#,
    );
    // Metered but idle: there, at 0.
    has(
        &text,
        r#"flowmeter_interface_bytes_total{device="wg0",direction="tx"} 0"#,
    );
    has(
        &text,
        r#"flowmeter_unattributed_packets_total{device="eth0",direction="rx",reason="non_ip"} 4"#,
    );
    has(
        &text,
        r#"flowmeter_unattributed_bytes_total{device="eth0",direction="tx",reason="table_full"} 360"#,
    );
    // No malformed traffic: no series for it.
    assert!(!text.contains("malformed"), "{text}");
    has(
        &text,
        r#"flowmeter_interface_speed_bits_per_second{device="eth0"} 1000000000"#,
    );
    assert!(!text.contains(r#"speed_bits_per_second{device="wg0"}"#));
    has(&text, "flowmeter_flows 42");
    has(&text, "flowmeter_flow_table_capacity_flows 65536");
    has(&text, "flowmeter_flow_table_evictions_total 3");
    has(&text, "flowmeter_flow_table_insert_failures_total 6");
    has(&text, r#"flowmeter_alerts_active{kind="flood"} 0"#);
    has(&text, r#"flowmeter_alerts_started_total{kind="foreign"} 0"#);
    assert!(!text.contains("# EOF"), "the endpoint closes the text");
}

#[test]
fn cycle_time_is_a_histogram_in_seconds() {
    let mut families = Families::new(&setup(10));
    families.record_cycle(Duration::from_millis(3));
    families.record_cycle(Duration::from_millis(40));
    let text = families.encode();
    has(&text, "# TYPE flowmeter_cycle_seconds histogram");
    has(&text, "flowmeter_cycle_seconds_count 2");
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("flowmeter_cycle_seconds_sum "))
        .unwrap();
    assert!((sum.parse::<f64>().unwrap() - 0.043).abs() < 1e-9, "{sum}");
    has(&text, r#"flowmeter_cycle_seconds_bucket{le="0.004"} 1"#);
    has(&text, r#"flowmeter_cycle_seconds_bucket{le="+Inf"} 2"#);
}

#[test]
fn traffic_by_country_verdict_and_the_top_processes_then_other() {
    let de = Location::Country(crate::enrich::geo::CountryCode::new("DE").unwrap());
    let mut families = Families::new(&setup(2));
    let flows = vec![
        flow("192.0.2.1", 443, 300, 30),
        flow("192.0.2.2", 443, 200, 20),
        flow("192.0.2.3", 443, 100, 10),
        flow("192.0.2.4", 53, 7, 1),
    ];
    let facts = [
        owned("curl", de),
        owned("sshd", de),
        owned("backup", Location::Local),
        business(Location::Unknown),
    ];
    let mut facts = facts.into_iter();
    families.record_traffic(&EnrichedSnapshot::from_fn(snapshot(flows), |_| {
        facts.next().unwrap()
    }));
    // Later the biggest talker of all: the two labels are taken, it goes to other.
    let mut later = flow("192.0.2.5", 443, 5_000, 0);
    later.id.remote_port = 8443;
    families.record_traffic(&EnrichedSnapshot::from_fn(snapshot(vec![later]), |_| {
        owned("rsync", de)
    }));
    let text = families.encode();
    has(
        &text,
        r#"flowmeter_process_bytes_total{process="curl",direction="rx"} 300"#,
    );
    has(
        &text,
        r#"flowmeter_process_bytes_total{process="sshd",direction="tx"} 20"#,
    );
    has(
        &text,
        &format!(r#"flowmeter_process_bytes_total{{process="{OTHER}",direction="rx"}} 5100"#),
    );
    has(
        &text,
        &format!(r#"flowmeter_process_bytes_total{{process="{UNOWNED}",direction="rx"}} 7"#),
    );
    assert!(
        !text.contains("rsync") && !text.contains("backup"),
        "{text}"
    );
    has(
        &text,
        r#"flowmeter_country_bytes_total{country="DE",direction="rx"} 5500"#,
    );
    has(
        &text,
        r#"flowmeter_country_bytes_total{country="local",direction="tx"} 10"#,
    );
    has(
        &text,
        r#"flowmeter_country_bytes_total{country="unknown",direction="rx"} 7"#,
    );
    has(
        &text,
        r#"flowmeter_verdict_bytes_total{verdict="business",direction="rx"} 5607"#,
    );
}

/// Thousands of remotes and a hundred process names make no more series than the
/// documented bound: processes are `--metrics-top` + 2, remotes none at all.
#[test]
fn series_stay_bounded_whatever_the_traffic() {
    let mut families = Families::new(&setup(10));
    let baseline = lines(&families.encode()).len();
    for round in 0..10u32 {
        let flows: Vec<FlowDelta> = (0..1_000u32)
            .map(|n| {
                let remote = format!("10.{}.{}.{}", round, n / 256, n % 256);
                flow(&remote, 443, 100, 100)
            })
            .collect();
        let interval = EnrichedSnapshot::from_fn(snapshot(flows), |f| {
            let n = u32::from(f.id.remote_ip.to_string().len() as u8) + round;
            owned(&format!("worker{}", n % 100 + round * 7), Location::Local)
        });
        families.record_totals(interval.snapshot());
        families.record_traffic(&interval);
    }
    let text = families.encode();
    let process_series = lines(&text)
        .iter()
        .filter(|l| l.starts_with("flowmeter_process_bytes_total"))
        .count();
    assert_eq!(
        process_series,
        2 * (10 + 1),
        "10 names and other, both directions"
    );
    // Interface reasons (2 seen here, 2 directions each way, bytes and packets), one
    // country and one verdict, both directions.
    let added = lines(&text).len() - baseline;
    assert_eq!(added, process_series + 4 + 2 + 2, "{text}");
}

/// A scrape over a real socket: the published families, then `process_*`, then `# EOF`.
#[test]
fn the_endpoint_serves_the_latest_text_and_process_metrics() {
    let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut metrics = Metrics::serve(address, &setup(10)).unwrap();
    metrics.record_snapshot(&snapshot(Vec::new()));
    metrics.publish();
    let (head, body) = get(metrics.address(), "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {CONTENT_TYPE}")),
        "{head}"
    );
    has(
        &body,
        r#"flowmeter_interface_bytes_total{device="eth0",direction="rx"} 9000"#,
    );
    assert!(body.contains("\nprocess_cpu_seconds_total "), "{body}");
    assert!(body.contains("\nprocess_resident_memory_bytes "), "{body}");
    assert!(body.contains("\nprocess_start_time_seconds "), "{body}");
    assert!(body.ends_with("\n# EOF\n"), "{body}");
    assert_eq!(body.matches("# EOF").count(), 1);
    let (head, _) = get(metrics.address(), "/");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let address = metrics.address();
    drop(metrics);
    // tiny_http's accepting thread closes the socket soon after, not at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(address).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_taken_port_is_one_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let error = Metrics::serve(address, &setup(10))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with(&format!("--metrics {address}: cannot listen")),
        "{error}"
    );
}

fn get(address: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// A rate alert of `phase`: the kind and phase are all the families read.
fn rate_alert(phase: crate::sinks::alerts::Phase) -> crate::sinks::alerts::Alert {
    use crate::sinks::alerts::{Alert, AlertKind};
    Alert {
        phase,
        duration: Duration::from_secs(1),
        iface: Some(Arc::from("eth0")),
        ..Alert::blank(
            AlertKind::Rate,
            SystemTime::UNIX_EPOCH,
            Duration::from_secs(1),
        )
    }
}

#[test]
fn alerts_are_active_from_start_to_end_and_starts_are_counted() {
    use crate::sinks::alerts::Phase;
    let mut families = Families::new(&setup(10));
    families.record_alerts(&[rate_alert(Phase::Start), rate_alert(Phase::Start)]);
    families.record_alerts(&[rate_alert(Phase::Reminder), rate_alert(Phase::End)]);
    let text = families.encode();
    has(&text, r#"flowmeter_alerts_active{kind="rate"} 1"#);
    has(&text, r#"flowmeter_alerts_started_total{kind="rate"} 2"#);
    // An end without its start (none is lost, but never below 0).
    families.record_alerts(&[rate_alert(Phase::End), rate_alert(Phase::End)]);
    has(
        &families.encode(),
        r#"flowmeter_alerts_active{kind="rate"} 0"#,
    );
}
