//! The JSON-lines log: one object per line. Records are gathered into a batch (one
//! interval's lines) and written by [`LogOutput`], which also rotates, reopens on SIGHUP
//! and survives a full disk. A batch that grows past [`CHUNK_BYTES`] is written in
//! whole-line chunks as it grows, so memory does not follow an interval's line count
//! (a million stop records are written 4 MiB at a time, not gathered whole).
//!
//! How `flow` lines are written is [`FlowLines`]: flow records at timeouts
//! (`sinks::records`) with a `top` record per interval (`sinks::top`), schema v2; or
//! one line per flow per interval, schema v1. A [`RecordTap`] (`--ipfix`) gets every
//! flow record as it is written.

use std::{
    io,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{
    output::{BatchOutcome, Destination, LogOutput},
    records::{FlowRecord, FlowRecords, RecordTap, Timeouts},
    schema::{self, Line, SCHEMA_V2, SCHEMA_VERSION},
    summary::SummaryRecord,
    top::{Top, TopTalkers},
};
use crate::{
    datapath::{Attachment, FlowId, presence::InterfaceEvent},
    enrich::{EnrichedSnapshot, coverage::ByInterface},
};

/// `--flow-records`: what a `flow` line is, and so the schema version of every line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowLines {
    /// Schema v2: a record per flow when it ends and at most every active timeout, and a
    /// `top` record of the `top` largest remotes and processes per interval (none if 0).
    Records { timeouts: Timeouts, top: usize },
    /// Schema v1: one line per flow per interval it moved in.
    EveryInterval,
}

/// Schema v2's state between intervals.
struct Recorder {
    table: FlowRecords,
    talkers: TopTalkers,
    /// The records an interval ended, kept for its buffer.
    ended: Vec<FlowRecord>,
}

/// Room the batch starts with: a quiet interval's lines.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Once the batch being gathered holds this much, its lines so far are written.
pub const CHUNK_BYTES: usize = 4 << 20;

pub struct LogSink {
    output: LogOutput,
    /// The batch being gathered: whole lines, written with one write and flush at the
    /// commit, or each time it passes `chunk_bytes`.
    buffer: Vec<u8>,
    /// [`CHUNK_BYTES`]; smaller in tests.
    chunk_bytes: usize,
    /// Lines for stderr from the writes since the last commit (an outage, a recovery).
    notices: Vec<String>,
    /// `v` of every line.
    version: u32,
    /// Schema v2 only.
    recorder: Option<Recorder>,
    /// Bytes of the batches handed to the output, written or not.
    committed_bytes: u64,
    /// Takes every flow record written (v2), e.g. the IPFIX exporter.
    tap: Option<Box<dyn RecordTap>>,
}

impl LogSink {
    /// Opens the destination; a file is created if needed and appended to.
    pub fn open(destination: &Destination, lines: FlowLines) -> io::Result<Self> {
        let (version, recorder) = match lines {
            FlowLines::Records { timeouts, top } => (
                SCHEMA_V2,
                Some(Recorder {
                    table: FlowRecords::new(timeouts),
                    talkers: TopTalkers::new(top),
                    ended: Vec::new(),
                }),
            ),
            FlowLines::EveryInterval => (SCHEMA_VERSION, None),
        };
        Ok(Self {
            output: LogOutput::open(destination)?,
            buffer: Vec::with_capacity(INITIAL_BUFFER),
            chunk_bytes: CHUNK_BYTES,
            notices: Vec::new(),
            version,
            recorder,
            committed_bytes: 0,
            tap: None,
        })
    }

    /// Hands every flow record written from now on to `tap` too, and flushes it with
    /// every batch.
    pub fn tap_records(&mut self, tap: Box<dyn RecordTap>) {
        self.tap = Some(tap);
    }

    /// Writes the batch once it passes `bytes` instead of [`CHUNK_BYTES`].
    #[cfg(test)]
    fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// The schema version of every line this sink writes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The `start` record: what is attached where, and how the log will be written.
    pub fn push_start(
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
            records: self.recorder.as_ref().map(|recorder| {
                let timeouts = recorder.table.timeouts();
                schema::StartRecords {
                    flow_records: "timeouts",
                    idle_timeout_s: timeouts.idle.as_secs_f64(),
                    active_timeout_s: timeouts.active.as_secs_f64(),
                    top: recorder.talkers.n(),
                }
            }),
        };
        self.push("start", &ts, start)
    }

    /// The interval's `flow` lines: the records it ended or cut (v2), or one line per
    /// flow that moved, with what the enrichers know of it (v1).
    pub fn push_flows(&mut self, interval: &EnrichedSnapshot) -> io::Result<()> {
        let snapshot = interval.snapshot();
        let ts = schema::timestamp(snapshot.at);
        let Some(mut recorder) = self.recorder.take() else {
            for (flow, facts) in interval.flows() {
                self.push(
                    "flow",
                    &ts,
                    schema::Flow::new(flow, facts, snapshot.interval),
                )?;
            }
            return Ok(());
        };
        recorder.table.observe(interval, &mut recorder.ended);
        let written = self.push_records(&ts, &mut recorder.ended);
        self.recorder = Some(recorder);
        written
    }

    /// v2: the records of flows the kernel let go since the previous read (the reader's
    /// `gone`), `end_reason: "evicted"`. `at` is the interval's end.
    pub fn push_evicted(
        &mut self,
        at: SystemTime,
        gone: impl IntoIterator<Item = FlowId>,
    ) -> io::Result<()> {
        let Some(mut recorder) = self.recorder.take() else {
            return Ok(());
        };
        recorder.table.end_evicted(gone, &mut recorder.ended);
        let written = self.push_records(&schema::timestamp(at), &mut recorder.ended);
        self.recorder = Some(recorder);
        written
    }

    /// v2, on stop after the last read: every open flow's record, `end_reason: "stop"`,
    /// so nothing counted is left unwritten. `at` is the last interval's end. Written as
    /// they are drained: memory does not follow the open flows.
    pub fn push_open_flows(&mut self, at: SystemTime) -> io::Result<()> {
        let Some(mut recorder) = self.recorder.take() else {
            return Ok(());
        };
        let ts = schema::timestamp(at);
        let written = recorder.table.drain_open().try_for_each(|record| {
            if let Some(tap) = &mut self.tap {
                tap.record(&record);
            }
            self.push("flow", &ts, record.wire())
        });
        self.recorder = Some(recorder);
        written
    }

    /// v2: the interval's `top` record (unless `--top 0`).
    pub fn push_top(&mut self, interval: &EnrichedSnapshot) -> io::Result<()> {
        let Some(recorder) = self.recorder.as_mut().filter(|r| r.talkers.n() > 0) else {
            return Ok(());
        };
        let top = recorder.talkers.of(interval);
        let ts = schema::timestamp(interval.snapshot().at);
        self.push("top", &ts, top.record())
    }

    /// v2: the `top` record of the first `--top` remotes and processes of `top`, which
    /// the caller selected already (at least as many: `log`'s flight recorder selects
    /// once for both), the same record as [`push_top`](Self::push_top) writes.
    pub fn push_top_of(&mut self, at: SystemTime, top: &Top) -> io::Result<()> {
        let Some(n) = self
            .recorder
            .as_ref()
            .map(|r| r.talkers.n())
            .filter(|&n| n > 0)
        else {
            return Ok(());
        };
        let first = Top {
            remotes: top.remotes.iter().take(n).cloned().collect(),
            processes: top.processes.iter().take(n).cloned().collect(),
            ..*top
        };
        self.push("top", &schema::timestamp(at), first.record())
    }

    /// Flows with an open record (v2), for the bench and the curious.
    pub fn open_flows(&self) -> usize {
        self.recorder.as_ref().map_or(0, |r| r.table.len())
    }

    /// Bytes of every batch committed so far (written or lost).
    pub fn committed_bytes(&self) -> u64 {
        self.committed_bytes
    }

    fn push_records(&mut self, ts: &str, records: &mut Vec<FlowRecord>) -> io::Result<()> {
        let written = records.iter().try_for_each(|record| {
            if let Some(tap) = &mut self.tap {
                tap.record(record);
            }
            self.push("flow", ts, record.wire())
        });
        records.clear();
        written
    }

    /// One `interface` line per interface gone or back at the interval's read, first in
    /// its lines; `at` is the interval's end.
    pub fn push_interfaces(&mut self, at: SystemTime, events: &[InterfaceEvent]) -> io::Result<()> {
        let ts = schema::timestamp(at);
        for event in events {
            self.push("interface", &ts, schema::InterfaceRecord::new(event))?;
        }
        Ok(())
    }

    /// One `totals` line per interface, with the share of its flows' bytes that have a
    /// process: it closes the interval's lines.
    pub fn push_totals(&mut self, interval: &EnrichedSnapshot) -> io::Result<()> {
        let snapshot = interval.snapshot();
        let ts = schema::timestamp(snapshot.at);
        let coverage = ByInterface::of(interval);
        for totals in &snapshot.interfaces {
            let record = schema::Totals::new(totals, snapshot.interval, self.version)
                .with_coverage(coverage.get(&totals.iface), self.version);
            self.push("totals", &ts, record)?;
        }
        Ok(())
    }

    /// One `summary` line per record.
    pub fn push_summaries(&mut self, at: SystemTime, records: &[SummaryRecord]) -> io::Result<()> {
        let ts = schema::timestamp(at);
        for record in records {
            self.push("summary", &ts, record.wire())?;
        }
        Ok(())
    }

    /// Any record of the schema (alerts, for one).
    pub fn push_record<T: Serialize>(
        &mut self,
        kind: &'static str,
        at: SystemTime,
        record: T,
    ) -> io::Result<()> {
        self.push(kind, &schema::timestamp(at), record)
    }

    /// Writes what is left of the batch. Returns the lines for stderr its writes gave
    /// (chunks included): the first failure of an outage (metering goes on, lines are
    /// counted as lost), or the recovery, whose `gap` record (what was lost) is written
    /// into the log too. An error means the output is gone for good (standard output
    /// closed).
    pub fn commit(&mut self) -> io::Result<Vec<String>> {
        self.write_buffer()?;
        if !self.buffer.is_empty() {
            // The gap line of a recovery goes out now; if that fails, this says so.
            self.write_buffer()?;
        }
        // A batch that outgrew a chunk (a flood's records) leaves its room behind.
        if self.buffer.capacity() > self.chunk_bytes.max(INITIAL_BUFFER) {
            self.buffer = Vec::with_capacity(INITIAL_BUFFER);
        }
        if let Some(tap) = &mut self.tap {
            self.notices.extend(tap.flush());
        }
        Ok(std::mem::take(&mut self.notices))
    }

    /// Hands the buffer's whole lines to the output and empties it.
    fn write_buffer(&mut self) -> io::Result<()> {
        self.committed_bytes += self.buffer.len() as u64;
        let outcome = self.output.write_batch(&self.buffer);
        self.buffer.clear();
        match outcome {
            BatchOutcome::Written | BatchOutcome::StillFailing => {}
            BatchOutcome::Failed(error) => self.notices.push(format!(
                "cannot write the log ({error}); metering goes on and lost lines are counted"
            )),
            BatchOutcome::Recovered(gap) => {
                // First in the buffer: the next write starts with it.
                self.append_line("gap", &schema::timestamp(gap.until), gap.record())?;
                self.notices.push(format!(
                    "the log is written again; {} lines ({} bytes) were lost since {}",
                    gap.lost_lines,
                    gap.lost_bytes,
                    schema::timestamp(gap.since)
                ));
            }
            BatchOutcome::Closed(error) => return Err(error),
        }
        Ok(())
    }

    /// Closes and opens the file again (SIGHUP, after logrotate renamed it).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.output.reopen()
    }

    /// What is lost so far, if the output is failing now (for a last word at exit).
    pub fn outage(&self) -> Option<String> {
        self.output.outage().map(|gap| {
            format!(
                "the log could not be written since {}: {} lines ({} bytes) lost",
                schema::timestamp(gap.since),
                gap.lost_lines,
                gap.lost_bytes
            )
        })
    }

    /// Appends one line, and writes the batch so far once it passes the chunk size.
    fn push<T: Serialize>(&mut self, kind: &'static str, ts: &str, record: T) -> io::Result<()> {
        self.append_line(kind, ts, record)?;
        if self.buffer.len() >= self.chunk_bytes {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn append_line<T: Serialize>(
        &mut self,
        kind: &'static str,
        ts: &str,
        record: T,
    ) -> io::Result<()> {
        let line = Line {
            v: self.version,
            kind,
            ts,
            record,
        };
        serde_json::to_writer(&mut self.buffer, &line)?;
        self.buffer.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{DirectionTotals, FlowDelta, InterfaceTotals, Protocol, Snapshot};
    use crate::enrich::{
        Facts,
        geo::{CountryCode, Location},
        sockets::Owner,
        verdict::{Judgement, Reason, Verdict},
    };
    use crate::sinks::{fixtures::miner, output::Rotation};
    use serde_json::Value;
    use std::sync::Arc;

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

    /// A TCP flow of a suspicious process in CN, a GRE flow to a local address, and
    /// eth0's totals.
    fn sample() -> (Snapshot, [Facts; 2]) {
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
            overflow: Vec::new(),
        };
        let facts = [
            Facts {
                owner: Owner::Process(miner()),
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
        (snapshot, facts)
    }

    /// What a file log holds after the sample's flows and totals, committed.
    fn written_sample() -> String {
        written_sample_as(FlowLines::EveryInterval, |_, _| Ok(()))
    }

    /// The sample's interval through a sink writing `lines`, then `more` (before the
    /// totals), committed.
    fn written_sample_as(
        lines: FlowLines,
        more: impl FnOnce(&mut LogSink, &EnrichedSnapshot) -> io::Result<()>,
    ) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowmeter.jsonl");
        let mut sink = LogSink::open(
            &Destination::File {
                path: path.clone(),
                rotate: None,
            },
            lines,
        )
        .unwrap();
        let (snapshot, facts) = sample();
        let interval = EnrichedSnapshot::from_parts(snapshot, facts.to_vec());
        sink.push_flows(&interval).unwrap();
        more(&mut sink, &interval).unwrap();
        sink.push_totals(&interval).unwrap();
        assert!(sink.commit().unwrap().is_empty());
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn every_line_is_a_versioned_object_with_typed_fields() {
        let text = written_sample();
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

    #[test]
    fn flow_and_totals_lines_are_pinned_byte_for_byte() {
        let text = written_sample();
        let expected = [
            r#"{"v":1,"type":"flow","ts":"2027-01-15T08:00:00.000Z","iface":"eth0","interval_s":1.0,"proto":"tcp","local_ip":"10.0.0.1","local_port":443,"remote_ip":"2001:db8::7","remote_port":51000,"rx_packets":3,"rx_bytes":300,"tx_packets":2,"tx_bytes":2900,"tcp_flags":18,"country":"CN","foreign":true,"owner":"process","pid":4242,"comm":"xmrig","exe":"/tmp/.x/xmrig","user":"root","verdict":"suspicious","reasons":["remote port 3333 is a common mining-pool port"]}"#,
            r#"{"v":1,"type":"flow","ts":"2027-01-15T08:00:00.000Z","iface":"eth0","interval_s":1.0,"proto":47,"local_ip":"10.0.0.1","local_port":443,"remote_ip":"192.0.2.1","remote_port":51000,"rx_packets":3,"rx_bytes":300,"tx_packets":2,"tx_bytes":2900,"remote_local":true,"owner":"none","verdict":"business"}"#,
            r#"{"v":1,"type":"totals","ts":"2027-01-15T08:00:00.000Z","iface":"eth0","interval_s":1.0,"rx_packets":10,"rx_bytes":1000,"tx_packets":0,"tx_bytes":0,"rx_unattributed_packets":7,"rx_unattributed_bytes":0,"tx_unattributed_packets":0,"tx_unattributed_bytes":0,"rx_non_ip_packets":0,"tx_non_ip_packets":0,"rx_malformed_packets":0,"tx_malformed_packets":0,"rx_table_full_packets":0,"tx_table_full_packets":0}"#,
        ];
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_top_selected_once_for_more_writes_the_same_record() {
        let lines = FlowLines::Records {
            timeouts: Timeouts::default(),
            top: 1,
        };
        let own = written_sample_as(lines, |sink, interval| sink.push_top(interval));
        let shared = written_sample_as(lines, |sink, interval| {
            let top = TopTalkers::new(30).of(interval);
            assert!(top.remotes.len() > 1, "more than --top to cut");
            sink.push_top_of(interval.snapshot().at, &top)
        });
        assert_eq!(own, shared);
    }

    #[test]
    fn records_mode_writes_v2_with_top_and_every_open_flow_on_stop() {
        let lines = FlowLines::Records {
            timeouts: Timeouts::default(),
            top: 1,
        };
        let text = written_sample_as(lines, |sink, interval| {
            sink.push_top(interval)?;
            assert_eq!(sink.open_flows(), 2);
            sink.push_open_flows(interval.snapshot().at)
        });
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["top", "flow", "flow", "totals"]);
        assert!(lines.iter().all(|line| line["v"] == 2), "{text}");
        let top = &lines[0];
        assert_eq!(top["flows"], 2);
        assert_eq!(top["remotes"].as_array().unwrap().len(), 1, "--top 1");
        assert_eq!(top["processes"][0]["comm"], "xmrig");
        for flow in &lines[1..3] {
            assert_eq!(flow["end_reason"], "stop");
            assert_eq!(flow["start"], "2027-01-15T07:59:59.000Z");
            assert_eq!(flow["end"], "2027-01-15T08:00:00.000Z");
            assert_eq!(flow["rx_bytes"], 300);
            assert!(flow.get("interval_s").is_none());
        }
        // The GRE flow has no socket: told in the flow, and counted in the totals.
        let (gre, tcp) = match lines[1]["proto"] == 47 {
            true => (&lines[1], &lines[2]),
            false => (&lines[2], &lines[1]),
        };
        assert_eq!(gre["owner"], "none");
        assert_eq!(gre["no_process"], "kernel_answered");
        assert!(tcp.get("no_process").is_none(), "{tcp}");
        let totals = &lines[3];
        assert_eq!(totals["process_bytes"], 3200);
        assert_eq!(totals["process_share"], 0.5);
        assert_eq!(totals["no_process_bytes"]["kernel_answered"], 3200);
        assert_eq!(totals["no_process_bytes"]["socket_gone"], 0);
    }

    /// Keeps what it is handed, as the `flow` line's fields, and counts its flushes.
    #[derive(Clone, Default)]
    struct KeptRecords(Arc<std::sync::Mutex<(Vec<Value>, usize)>>);

    impl RecordTap for KeptRecords {
        fn record(&mut self, record: &FlowRecord) {
            let wire = serde_json::to_value(record.wire()).unwrap();
            self.0.lock().unwrap().0.push(wire);
        }

        fn flush(&mut self) -> Vec<String> {
            self.0.lock().unwrap().1 += 1;
            Vec::new()
        }
    }

    /// What `--ipfix` exports is exactly the `flow` lines written, flushed with the batch.
    #[test]
    fn a_tap_gets_every_flow_record_written_and_is_flushed_at_the_commit() {
        let kept = KeptRecords::default();
        let tap = kept.clone();
        let lines = FlowLines::Records {
            timeouts: Timeouts::default(),
            top: 0,
        };
        let text = written_sample_as(lines, move |sink, interval| {
            sink.tap_records(Box::new(tap));
            sink.push_open_flows(interval.snapshot().at)
        });
        let written: Vec<Value> = json_lines(&text)
            .into_iter()
            .filter(|line| line["type"] == "flow")
            .map(|mut line| {
                let fields = line.as_object_mut().unwrap();
                for envelope in ["v", "type", "ts"] {
                    fields.remove(envelope);
                }
                line
            })
            .collect();
        let (tapped, flushes) = kept.0.lock().unwrap().clone();
        assert_eq!(written.len(), 2);
        assert_eq!(tapped, written);
        assert_eq!(flushes, 1, "flushed once, at the commit");
    }

    #[test]
    fn interface_records_are_pinned_byte_for_byte() {
        use crate::datapath::{
            IngressHook, Interface, LinkLayer,
            presence::{Happened, InterfaceEvent},
        };
        let event = |ifindex, happened| InterfaceEvent {
            iface: "veth7".into(),
            ifindex,
            happened,
        };
        let attachment = Attachment {
            interface: Interface {
                name: "veth7".into(),
                ifindex: 12,
                link: LinkLayer::Ethernet,
            },
            ingress: IngressHook::Tc,
            reason: "veth: TC ingress".into(),
        };
        let events = [
            event(5, Happened::Gone),
            event(12, Happened::Back(attachment)),
            event(60000, Happened::NotMetered("too far".into())),
        ];
        let lines = FlowLines::Records {
            timeouts: Timeouts::default(),
            top: 0,
        };
        let text = written_sample_as(lines, |sink, interval| {
            sink.push_interfaces(interval.snapshot().at, &events)
        });
        let expected = [
            r#"{"v":2,"type":"interface","ts":"2027-01-15T08:00:00.000Z","iface":"veth7","event":"gone","ifindex":5,"metered":false}"#,
            r#"{"v":2,"type":"interface","ts":"2027-01-15T08:00:00.000Z","iface":"veth7","event":"back","ifindex":12,"metered":true,"ingress":"tc","ingress_reason":"veth: TC ingress","egress":"tc"}"#,
            r#"{"v":2,"type":"interface","ts":"2027-01-15T08:00:00.000Z","iface":"veth7","event":"back","ifindex":60000,"metered":false,"reason":"too far"}"#,
        ];
        let interface_lines: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(r#""type":"interface""#))
            .collect();
        assert_eq!(interface_lines, expected);
    }

    /// A sink writing to `path` in chunks of about `chunk` bytes.
    fn chunked_sink(path: &std::path::Path, rotate: Option<Rotation>, chunk: usize) -> LogSink {
        let destination = Destination::File {
            path: path.to_owned(),
            rotate,
        };
        LogSink::open(&destination, FlowLines::EveryInterval)
            .unwrap()
            .with_chunk_bytes(chunk)
    }

    fn push_numbered(sink: &mut LogSink, n: u64) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        sink.push_record("test", at, serde_json::json!({ "n": n }))
            .unwrap();
    }

    /// Every line of `text` as JSON (panics on a torn or invalid line).
    fn json_lines(text: &str) -> Vec<Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn a_large_batch_goes_out_in_chunks_and_rotates_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rotate = Rotation {
            max_bytes: 2000,
            keep: 20,
        };
        let mut sink = chunked_sink(&path, Some(rotate), 500);
        for n in 0..200 {
            push_numbered(&mut sink, n);
            // Never more than a chunk and a line is held.
            assert!(
                sink.buffer.len() < 500 + 100,
                "{} bytes held",
                sink.buffer.len()
            );
        }
        assert!(sink.commit().unwrap().is_empty());
        // Oldest first: log.N ... log.1, log.
        let mut files: Vec<std::path::PathBuf> = (1..=20)
            .rev()
            .map(|n| dir.path().join(format!("log.{n}")))
            .filter(|p| p.exists())
            .collect();
        files.push(path);
        assert!(files.len() > 2, "one batch rotated across files: {files:?}");
        let mut numbers = Vec::new();
        let mut bytes = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                text.len() as u64 <= rotate.max_bytes,
                "{file:?}: {}",
                text.len()
            );
            bytes += text.len() as u64;
            numbers.extend(json_lines(&text).iter().map(|l| l["n"].as_u64().unwrap()));
        }
        assert_eq!(numbers, (0..200).collect::<Vec<u64>>());
        assert_eq!(sink.committed_bytes(), bytes);
    }

    #[test]
    fn a_full_disk_in_the_middle_of_a_batch_is_told_once_and_its_gap_counted() {
        // The path is a symlink to /dev/full, then to a regular file: the chunks written
        // before the switch are lost, the first one after it recovers.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let real = dir.path().join("real");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut sink = chunked_sink(&path, None, 500);
        let mut n = 0;
        // Two chunks fail: the outage is said once.
        while sink.committed_bytes() < 1000 {
            push_numbered(&mut sink, n);
            n += 1;
        }
        let lost = n;
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        for _ in 0..50 {
            push_numbered(&mut sink, n);
            n += 1;
        }
        let notices = sink.commit().unwrap();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(
            notices[0].starts_with("cannot write the log"),
            "{}",
            notices[0]
        );
        assert!(
            notices[1].starts_with(&format!("the log is written again; {lost} lines")),
            "{}",
            notices[1]
        );
        let lines = json_lines(&std::fs::read_to_string(&real).unwrap());
        // The gap line follows the chunk that recovered, as it follows a whole batch.
        let gaps: Vec<&Value> = lines.iter().filter(|l| l["type"] == "gap").collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0]["lost_lines"], lost);
        let written: Vec<u64> = lines.iter().filter_map(|l| l["n"].as_u64()).collect();
        assert_eq!(
            written,
            (lost..n).collect::<Vec<u64>>(),
            "nothing else lost"
        );
        assert!(sink.outage().is_none());
    }
}
