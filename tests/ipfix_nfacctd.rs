//! `flowmeter log --ipfix` received by a real collector: pmacct's nfacctd (Debian
//! `pmacct`), started by the test in flowmeter's namespace on a free loopback port and
//! stopped on every path, writes what it decoded as JSON lines (print plugin), summed
//! per 5-tuple. Known UDP and TCP traffic over IPv4 and IPv6 on a test veth pair: its
//! records carry the right addresses, ports and protocol, and their packets and bytes
//! add up exactly to the frames sent (UDP) and to the log's own records (TCP). A second
//! test restarts nfacctd midway: what follows is still decoded, as the templates are
//! sent again. And `[log]` in the configuration file takes the options.
//!
//! Needs root (namespaces, BPF) and nfacctd (`cargo xtask setup` installs pmacct).

mod common;

use std::{
    collections::HashMap,
    ffi::OsString,
    fs,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use clap::Parser;
use common::{
    Flowmeter, Log,
    netns::{ETHERNET_HEADER, Family, Netns, VethPair},
    traffic::{IO_TIMEOUT, send_datagrams},
};
use flowmeter::cli::{Cli, Command as Subcommand};
use serde_json::Value;

const NFACCTD: &str = "nfacctd";
/// Longest wait for nfacctd to listen, and for its output to hold what was exported.
const COLLECTOR_TIMEOUT: Duration = Duration::from_secs(10);
const UDP_HEADER: u64 = 8;
/// The IPv4 addresses added to the IPv6 pair, so one flowmeter sees both families.
const A_V4: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);

/// What nfacctd decoded for one 5-tuple, summed over its lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counted {
    packets: u64,
    bytes: u64,
}

/// (source, destination, protocol name as nfacctd prints it)
type Tuple = (SocketAddr, SocketAddr, String);

/// nfacctd on 127.0.0.1:`port` in a namespace; killed and reaped when dropped.
struct Nfacctd {
    child: Child,
    output: PathBuf,
    log: PathBuf,
}

impl Nfacctd {
    /// Starts it with a configuration of its own in `dir` (files named by `name`) and
    /// waits until it listens.
    fn start(netns: &Netns, port: u16, dir: &Path, name: &str) -> Self {
        let output = dir.join(format!("{name}.jsonl"));
        let log = dir.join(format!("{name}.log"));
        let config = dir.join(format!("{name}.conf"));
        fs::write(
            &config,
            format!(
                "daemonize: false\n\
                 logfile: {log}\n\
                 nfacctd_ip: 127.0.0.1\n\
                 nfacctd_port: {port}\n\
                 plugins: print\n\
                 aggregate: src_host, dst_host, src_port, dst_port, proto\n\
                 print_output: json\n\
                 print_output_file: {output}\n\
                 print_output_file_append: true\n\
                 print_refresh_time: 1\n",
                log = log.display(),
                output = output.display(),
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name(), NFACCTD, "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {NFACCTD} (cargo xtask setup installs it): {e}"));
        let mut nfacctd = Self { child, output, log };
        nfacctd.wait_listening(netns, port);
        nfacctd
    }

    fn wait_listening(&mut self, netns: &Netns, port: u16) {
        let deadline = Instant::now() + COLLECTOR_TIMEOUT;
        loop {
            let sockets = netns.exec("ss", &["-Hlun", &format!("sport = :{port}")]);
            if !String::from_utf8_lossy(&sockets.stdout).trim().is_empty() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{NFACCTD} exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{NFACCTD} does not listen on {port}: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything it has written so far, summed per 5-tuple.
    fn counted(&self) -> HashMap<Tuple, Counted> {
        let text = fs::read_to_string(&self.output).unwrap_or_default();
        let mut sums: HashMap<Tuple, Counted> = HashMap::new();
        // The last line may be half written.
        for line in text.lines().filter(|line| line.ends_with('}')) {
            let record: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{NFACCTD} wrote a line that is not JSON ({e}): {line}")
            });
            let address = |ip: &str, port: &str| {
                let ip: IpAddr = record[ip].as_str().unwrap().parse().unwrap();
                SocketAddr::new(ip, record[port].as_u64().unwrap() as u16)
            };
            let tuple = (
                address("ip_src", "port_src"),
                address("ip_dst", "port_dst"),
                record["ip_proto"].as_str().unwrap().to_owned(),
            );
            let sum = sums.entry(tuple).or_default();
            sum.packets += record["packets"].as_u64().unwrap();
            sum.bytes += record["bytes"].as_u64().unwrap();
        }
        sums
    }

    /// Waits until what it wrote for every tuple of `expected` is that, and returns all
    /// it wrote; panics with what it has if that does not come.
    fn wait_for(&self, expected: &HashMap<Tuple, Counted>) -> HashMap<Tuple, Counted> {
        let deadline = Instant::now() + COLLECTOR_TIMEOUT;
        loop {
            let counted = self.counted();
            let done = expected
                .iter()
                .all(|(tuple, sum)| counted.get(tuple) == Some(sum));
            if done || Instant::now() > deadline {
                for (tuple, sum) in expected {
                    assert_eq!(
                        counted.get(tuple),
                        Some(sum),
                        "{NFACCTD}'s sum for {tuple:?}; it wrote {counted:#?}\nits log: {}",
                        self.log_text()
                    );
                }
                return counted;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Nfacctd {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nfacctd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An IPv6 veth pair with IPv4 addresses too, nfacctd on a free port of a's loopback,
/// and flowmeter metering a's end and exporting there (templates every `refresh_s`).
struct Scene {
    pair: VethPair,
    dir: tempfile::TempDir,
    port: u16,
    nfacctd: Nfacctd,
    flowmeter: Flowmeter,
}

impl Scene {
    fn new(refresh_s: f64) -> Self {
        let pair = VethPair::new(Family::V6);
        for (netns, iface, ip, peer) in [
            (&pair.a, &pair.a_if, A_V4, B_V4),
            (&pair.b, &pair.b_if, B_V4, A_V4),
        ] {
            netns.ip(&format!("addr add {ip} peer {peer} dev {iface}"));
        }
        let port = pair
            .a
            .run(|| UdpSocket::bind("127.0.0.1:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let nfacctd = Nfacctd::start(&pair.a, port, dir.path(), "first");
        let flowmeter = Flowmeter::start_log(
            &pair.a,
            &format!(
                "--iface {} --interval 0.2 --idle-timeout 1 --ipfix 127.0.0.1:{port} \
                 --ipfix-template-refresh {refresh_s}",
                pair.a_if
            ),
        );
        Self {
            pair,
            dir,
            port,
            nfacctd,
            flowmeter,
        }
    }

    /// `count` datagrams of `payload` bytes from a to b and `replies` back, between
    /// fresh ports; returns the tuples as nfacctd keys them and their exact frames.
    fn udp(&self, family: Family, count: u64, replies: u64, payload: u64) -> Vec<(Tuple, Counted)> {
        let (a_ip, b_ip) = self.ips(family);
        let a = self.pair.a.run(|| UdpSocket::bind((a_ip, 0))).unwrap();
        let b = self.pair.b.run(|| UdpSocket::bind((b_ip, 0))).unwrap();
        send_datagrams(&a, &b, count as usize, payload as usize);
        send_datagrams(&b, &a, replies as usize, payload as usize);
        let frame = ETHERNET_HEADER + family.ip_header() + UDP_HEADER + payload;
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let udp = |from, to, packets| {
            let sum = Counted {
                packets,
                bytes: packets * frame,
            };
            ((from, to, "udp".to_owned()), sum)
        };
        vec![udp(a, b, count), udp(b, a, replies)]
    }

    /// `size` bytes over TCP from a client in a to a server in b; closes cleanly.
    fn tcp(&self, family: Family, size: usize) -> (SocketAddr, SocketAddr) {
        let (_, b_ip) = self.ips(family);
        let listener = self.pair.b.run(|| TcpListener::bind((b_ip, 0))).unwrap();
        let server = listener.local_addr().unwrap();
        let receiver = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).unwrap();
            received.len()
        });
        let mut client = self
            .pair
            .a
            .run(|| TcpStream::connect_timeout(&server, IO_TIMEOUT))
            .unwrap();
        client.write_all(&vec![0x5a; size]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(receiver.join().unwrap(), size, "the server got it all");
        (client.local_addr().unwrap(), server)
    }

    /// Stops nfacctd and starts a new one on the same port: it knows no template.
    fn restart_collector(&mut self) {
        self.nfacctd.kill();
        self.nfacctd = Nfacctd::start(&self.pair.a, self.port, self.dir.path(), "restarted");
    }

    fn ips(&self, family: Family) -> (IpAddr, IpAddr) {
        match family {
            Family::V4 => (A_V4.into(), B_V4.into()),
            Family::V6 => (self.pair.a_ip, self.pair.b_ip),
        }
    }
}

/// The log's own counts of a TCP flow on `iface` (its records summed), as nfacctd keys
/// its two directions.
fn logged_tcp(
    log: &Log,
    iface: &str,
    client: SocketAddr,
    server: SocketAddr,
) -> [(Tuple, Counted); 2] {
    let flow = log
        .flow(iface, "tcp", client, server)
        .unwrap_or_else(|| panic!("no record of {client} -> {server} in the log"));
    [
        (
            (client, server, "tcp".to_owned()),
            Counted {
                packets: flow.tx_packets,
                bytes: flow.tx_bytes,
            },
        ),
        (
            (server, client, "tcp".to_owned()),
            Counted {
                packets: flow.rx_packets,
                bytes: flow.rx_bytes,
            },
        ),
    ]
}

#[test]
fn nfacctd_decodes_every_flow_with_exact_packets_and_bytes_over_ipv4_and_ipv6() {
    const TRANSFER: usize = 200_000;
    let scene = Scene::new(30.0);
    let mut expected: HashMap<Tuple, Counted> = HashMap::new();
    let mut connections = Vec::new();
    for family in [Family::V4, Family::V6] {
        expected.extend(scene.udp(family, 7, 3, 300));
        connections.push((family, scene.tcp(family, TRANSFER)));
    }
    let Scene {
        pair,
        nfacctd,
        flowmeter,
        ..
    } = scene;
    pair.wait_quiet();
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter: {}", finished.stderr);
    assert!(
        !finished.stderr.contains("IPFIX"),
        "no failure to send: {}",
        finished.stderr
    );
    let log = finished.log();
    for (family, (client, server)) in connections {
        let [sent, received] = logged_tcp(&log, &pair.a_if, client, server);
        let headers = ETHERNET_HEADER + family.ip_header() + 20;
        assert!(
            sent.1.bytes >= TRANSFER as u64 + sent.1.packets * headers,
            "the log has the whole transfer: {sent:?}"
        );
        assert!(received.1.packets > 0, "and its ACKs: {received:?}");
        expected.extend([sent, received]);
    }
    let counted = nfacctd.wait_for(&expected);
    eprintln!("{NFACCTD} decoded {} 5-tuples", counted.len());
}

#[test]
fn after_nfacctd_restarts_the_records_are_decoded_again() {
    let mut scene = Scene::new(1.0);
    let before = scene.udp(Family::V6, 5, 0, 100);
    scene
        .nfacctd
        .wait_for(&before[..1].iter().cloned().collect());
    scene.restart_collector();
    let mut after: HashMap<Tuple, Counted> = HashMap::new();
    after.extend(scene.udp(Family::V4, 4, 2, 200));
    after.extend(scene.udp(Family::V6, 3, 1, 50));
    let counted = scene.nfacctd.wait_for(&after);
    for (tuple, _) in &before {
        assert!(
            !counted.contains_key(tuple),
            "the new {NFACCTD} has only what came after it: {tuple:?}"
        );
    }
    let finished = scene.flowmeter.stop();
    assert!(finished.status.success(), "flowmeter: {}", finished.stderr);
}

/// `[log]` takes `ipfix` (an array, for two collectors) and its options by name.
#[test]
fn the_configuration_file_takes_the_ipfix_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowmeter.toml");
    fs::write(
        &path,
        "[log]\nipfix = [\"127.0.0.1:4739\", \"[::1]:2055\"]\n\
         ipfix-template-refresh = 5\nipfix-domain = 42\n",
    )
    .unwrap();
    let args: Vec<OsString> = ["flowmeter", "log", "--config", path.to_str().unwrap()]
        .iter()
        .map(OsString::from)
        .collect();
    let applied = flowmeter::config::apply_with_default(args, &path).expect("a valid file");
    let cli = Cli::try_parse_from(applied.args).unwrap();
    let Some(Subcommand::Log(log)) = cli.command else {
        panic!("log: {cli:?}");
    };
    assert_eq!(log.ipfix.collectors, ["127.0.0.1:4739", "[::1]:2055"]);
    assert_eq!(log.ipfix.template_refresh, Duration::from_secs(5));
    assert_eq!(log.ipfix.domain, 42);
}
