//! The JSON-lines log: one object per line, each interval written whole and flushed.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::schema::{self, Line, SCHEMA_VERSION};
use crate::{
    datapath::{Attachment, Snapshot},
    enrich::Facts,
};

/// Where the log goes.
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    /// `-` is standard output; anything else a file path.
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

pub struct LogSink {
    out: Box<dyn Write + Send>,
    /// One interval's lines, written with a single write and flush.
    buffer: Vec<u8>,
}

impl LogSink {
    /// Opens the output; a file is created if needed and appended to.
    pub fn open(output: &Output) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match output {
            Output::Stdout => Box::new(io::stdout()),
            Output::File(path) => Box::new(BufWriter::new(open_append(path)?)),
        };
        Ok(Self::new(out))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            buffer: Vec::with_capacity(64 * 1024),
        }
    }

    /// The `start` record: what is attached where, and how the log will be written.
    pub fn write_start(
        &mut self,
        at: SystemTime,
        attachments: &[Attachment],
        interval: Duration,
        flow_capacity: u32,
        geoip: &str,
    ) -> io::Result<()> {
        let ts = schema::timestamp(at);
        let start = schema::Start {
            version: env!("CARGO_PKG_VERSION"),
            interval_s: interval.as_secs_f64(),
            flow_capacity,
            geoip,
            interfaces: attachments
                .iter()
                .map(schema::StartInterface::from_attachment)
                .collect(),
        };
        self.push("start", &ts, start)?;
        self.flush_lines()
    }

    /// One `flow` line per flow that moved (with what the enrichers know of it, in
    /// `facts`, one per flow), then one `totals` line per interface.
    pub fn write_snapshot(&mut self, snapshot: &Snapshot, facts: &[Facts]) -> io::Result<()> {
        let ts = schema::timestamp(snapshot.at);
        for (flow, facts) in snapshot.flows.iter().zip(facts) {
            self.push(
                "flow",
                &ts,
                schema::Flow::new(flow, facts, snapshot.interval),
            )?;
        }
        for totals in &snapshot.interfaces {
            self.push(
                "totals",
                &ts,
                schema::Totals::new(totals, snapshot.interval),
            )?;
        }
        self.flush_lines()
    }

    fn push<T: Serialize>(&mut self, kind: &'static str, ts: &str, record: T) -> io::Result<()> {
        let line = Line {
            v: SCHEMA_VERSION,
            kind,
            ts,
            record,
        };
        serde_json::to_writer(&mut self.buffer, &line)?;
        self.buffer.push(b'\n');
        Ok(())
    }

    fn flush_lines(&mut self) -> io::Result<()> {
        let result = self
            .out
            .write_all(&self.buffer)
            .and_then(|()| self.out.flush());
        self.buffer.clear();
        result
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{DirectionTotals, FlowDelta, FlowId, InterfaceTotals, Protocol};
    use crate::enrich::{
        geo::{CountryCode, Location},
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Reason, Verdict},
    };
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn flow(proto: u8, remote: &str) -> FlowDelta {
        FlowDelta {
            id: FlowId {
                iface: Arc::from("eth0"),
                proto: Protocol(proto),
                local_ip: "10.0.0.1".parse().unwrap(),
                local_port: 443,
                remote_ip: remote.parse().unwrap(),
                remote_port: 51000,
            },
            rx_packets: 3,
            rx_bytes: 300,
            tx_packets: 2,
            tx_bytes: 2900,
            tcp_flags: 0x12,
        }
    }

    #[test]
    fn every_line_is_a_versioned_object_with_typed_fields() {
        let out = Shared::default();
        let mut sink = LogSink::new(Box::new(out.clone()));
        let snapshot = Snapshot {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            interval: Duration::from_millis(1000),
            flows: vec![flow(6, "2001:db8::7"), flow(47, "192.0.2.1")],
            interfaces: vec![InterfaceTotals {
                iface: Arc::from("eth0"),
                rx: DirectionTotals {
                    packets: 10,
                    bytes: 1000,
                    unattributed_packets: 7,
                    ..Default::default()
                },
                tx: DirectionTotals::default(),
            }],
        };
        let miner = ProcessInfo {
            pid: 4242,
            comm: "xmrig".into(),
            exe: Some("/tmp/.x/xmrig".into()),
            exe_deleted: false,
            uid: 0,
            user: "root".into(),
            cmdline: "/tmp/.x/xmrig -o pool:3333".into(),
        };
        let facts = [
            Facts {
                owner: Owner::Process(Arc::new(miner)),
                location: Location::Country(CountryCode::new("CN").unwrap()),
                judgement: Judgement {
                    verdict: Verdict::Suspicious,
                    reasons: vec![Reason::MiningPort { port: 3333 }],
                    foreign: true,
                },
            },
            Facts {
                owner: Owner::NoLocalSocket,
                location: Location::Local,
                judgement: Judgement {
                    verdict: Verdict::Business,
                    reasons: vec![],
                    foreign: false,
                },
            },
        ];
        sink.write_snapshot(&snapshot, &facts).unwrap();

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        for line in &lines {
            assert_eq!(line["v"], 1);
            assert_eq!(line["ts"], "2027-01-15T08:00:00.000Z");
        }
        let tcp = &lines[0];
        assert_eq!(tcp["type"], "flow");
        assert_eq!(tcp["proto"], "tcp");
        assert_eq!(tcp["remote_ip"], "2001:db8::7");
        assert_eq!(tcp["local_port"], 443);
        assert_eq!(tcp["rx_bytes"], 300);
        assert_eq!(tcp["tcp_flags"], 0x12);
        assert_eq!(tcp["country"], "CN");
        assert_eq!(tcp["foreign"], true);
        assert_eq!(tcp["owner"], "process");
        assert_eq!(tcp["pid"], 4242);
        assert_eq!(tcp["comm"], "xmrig");
        assert_eq!(tcp["exe"], "/tmp/.x/xmrig");
        assert_eq!(tcp["user"], "root");
        assert_eq!(tcp["verdict"], "suspicious");
        assert_eq!(
            tcp["reasons"][0],
            Reason::MiningPort { port: 3333 }.to_string()
        );
        let gre = &lines[1];
        assert_eq!(gre["proto"], 47);
        assert!(gre.get("tcp_flags").is_none());
        assert_eq!(gre["owner"], "none");
        assert_eq!(gre["remote_local"], true);
        assert_eq!(gre["verdict"], "business");
        for absent in [
            "country", "foreign", "pid", "comm", "exe", "user", "reasons",
        ] {
            assert!(gre.get(absent).is_none(), "{absent} in {gre}");
        }
        let totals = &lines[2];
        assert_eq!(totals["type"], "totals");
        assert_eq!(totals["iface"], "eth0");
        assert_eq!(totals["rx_packets"], 10);
        assert_eq!(totals["rx_unattributed_packets"], 7);
    }
}
