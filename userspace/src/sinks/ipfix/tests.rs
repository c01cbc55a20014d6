//! The exporter's messages, decoded by `netflow_parser` (a parser this crate did not
//! write): templates, IPv4 and IPv6 records with every element, sequence numbers,
//! messages split under the size limit, and the templates sent again.

use std::{
    net::{IpAddr, UdpSocket},
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use netflow_parser::{
    FieldValue, IpfixField, NetflowPacket, NetflowParser, variable_versions::ipfix::FlowSetBody,
};

use super::{
    encoder::Encoder,
    record,
    template::{ENTERPRISE, TEMPLATE_V4, TEMPLATE_V6},
    *,
};
use crate::{
    datapath::{FlowId, Protocol},
    enrich::{
        Facts,
        geo::{CountryCode, Location},
        sockets::Owner,
        verdict::{Judgement, Verdict},
    },
    sinks::{
        fixtures::miner,
        records::{Counts, EndReason},
    },
};

/// One decoded message: its header's sequence number and domain, and its data records
/// as (element id, enterprise) → value.
struct Decoded {
    sequence: u32,
    domain: u32,
    length: usize,
    templates: Vec<u16>,
    records: Vec<Vec<(IpfixField, FieldValue)>>,
}

fn decode(parser: &mut NetflowParser, message: &[u8]) -> Decoded {
    let result = parser.parse_bytes(message);
    assert!(result.error.is_none(), "{:?}", result.error);
    let [NetflowPacket::IPFix(ipfix)] = result.packets.as_slice() else {
        panic!("one IPFIX message: {:?}", result.packets);
    };
    let mut decoded = Decoded {
        sequence: ipfix.header.sequence_number,
        domain: ipfix.header.observation_domain_id,
        length: ipfix.header.length as usize,
        templates: Vec::new(),
        records: Vec::new(),
    };
    for set in &ipfix.flowsets {
        match &set.body {
            FlowSetBody::Templates(templates) => decoded
                .templates
                .extend(templates.iter().map(|t| t.template_id)),
            FlowSetBody::Template(template) => decoded.templates.push(template.template_id),
            FlowSetBody::Data(data) => decoded.records.extend(data.fields.iter().cloned()),
            other => panic!("an unexpected set: {other:?}"),
        }
    }
    decoded
}

fn field(record: &[(IpfixField, FieldValue)], id: u16, pen: Option<u32>) -> &FieldValue {
    let wanted = IpfixField::new(id, pen);
    &record
        .iter()
        .find(|(field, _)| *field == wanted)
        .unwrap_or_else(|| panic!("no field {id} ({pen:?}) in {record:?}"))
        .1
}

fn flow_record(local: &str, remote: &str, proto: u8) -> FlowRecord {
    let end = UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
    FlowRecord {
        id: FlowId {
            iface: Arc::from("lo"),
            proto: Protocol(proto),
            local_ip: local.parse().unwrap(),
            local_port: 443,
            remote_ip: remote.parse().unwrap(),
            remote_port: 51000,
        },
        start: end - Duration::from_millis(1500),
        end,
        counts: Counts {
            rx_packets: 3,
            rx_bytes: 300,
            tx_packets: 2,
            tx_bytes: 2900,
        },
        tcp_flags: 0x1b,
        end_reason: EndReason::Fin,
        facts: Facts {
            owner: Owner::Process(miner()),
            location: Location::Country(CountryCode::new("CN").unwrap()),
            judgement: Judgement {
                verdict: Verdict::Suspicious,
                reasons: vec![],
                foreign: true,
            },
        },
    }
}

/// A number, whatever type the parser gave it.
fn number(value: &FieldValue) -> u64 {
    match value {
        FieldValue::ProtocolType(proto) => u64::from(u8::from(*proto)),
        FieldValue::TcpControlBits(bits, _) => u64::from(u16::from(*bits)),
        FieldValue::FlowEndReason(reason) => u64::from(u8::from(*reason)),
        FieldValue::Vec(bytes) if bytes.len() <= 8 => {
            bytes.iter().fold(0, |n, byte| n << 8 | u64::from(*byte))
        }
        other => other
            .as_u64()
            .unwrap_or_else(|| panic!("not a number: {other:?}")),
    }
}

fn address(value: &FieldValue) -> IpAddr {
    IpAddr::try_from(value).unwrap_or_else(|_| panic!("not an address: {value:?}"))
}

/// One of flowmeter's string elements.
fn text(record: &[(IpfixField, FieldValue)], id: u16) -> String {
    match field(record, id, Some(ENTERPRISE)) {
        FieldValue::Vec(bytes) => String::from_utf8(bytes.clone()).unwrap(),
        FieldValue::String(string) => string.value.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// Every message an encoder of domain 7 sends for `records` after the templates.
fn encode(records: &[FlowRecord], max_message: usize) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut encoder = Encoder::new(7, max_message);
    let mut send = |message: &[u8]| messages.push(message.to_vec());
    encoder.templates(&mut send);
    for record in records {
        for directed in record::directions(record, 9) {
            encoder.record(&directed, &mut send);
        }
    }
    encoder.finish(&mut send);
    messages
}

/// The flow's two directions, each with every element as sent.
fn check_both_directions(local: &str, remote: &str) {
    let record = flow_record(local, remote, 6);
    let messages = encode(std::slice::from_ref(&record), MAX_MESSAGE);
    assert_eq!(messages.len(), 1, "templates and two records fit in one");
    let mut parser = NetflowParser::default();
    let decoded = decode(&mut parser, &messages[0]);
    assert_eq!(decoded.templates, [TEMPLATE_V4, TEMPLATE_V6]);
    assert_eq!((decoded.sequence, decoded.domain), (0, 7));
    assert_eq!(decoded.length, messages[0].len());
    let [received, sent] = decoded.records.as_slice() else {
        panic!("two records: {:?}", decoded.records);
    };
    let (local, remote): (IpAddr, IpAddr) = (local.parse().unwrap(), remote.parse().unwrap());
    let (src, dst) = if local.is_ipv4() { (8, 12) } else { (27, 28) };
    for (record, from, to, ports, counts, interfaces) in [
        (received, remote, local, (51000, 443), (300, 3), (9, 0)),
        (sent, local, remote, (443, 51000), (2900, 2), (0, 9)),
    ] {
        assert_eq!(address(field(record, src, None)), from);
        assert_eq!(address(field(record, dst, None)), to);
        assert_eq!(number(field(record, 7, None)), ports.0);
        assert_eq!(number(field(record, 11, None)), ports.1);
        assert_eq!(number(field(record, 4, None)), 6, "protocolIdentifier");
        assert_eq!(number(field(record, 6, None)), 0x1b, "tcpControlBits");
        assert_eq!(number(field(record, 1, None)), counts.0, "octetDeltaCount");
        assert_eq!(number(field(record, 2, None)), counts.1, "packetDeltaCount");
        assert_eq!(number(field(record, 152, None)), 1_799_999_998_750);
        assert_eq!(number(field(record, 153, None)), 1_800_000_000_250);
        assert_eq!(
            number(field(record, 10, None)),
            interfaces.0,
            "ingressInterface"
        );
        assert_eq!(
            number(field(record, 14, None)),
            interfaces.1,
            "egressInterface"
        );
        assert_eq!(
            number(field(record, 136, None)),
            3,
            "flowEndReason: end detected"
        );
        assert_eq!(text(record, 1), "xmrig");
        assert_eq!(number(field(record, 2, Some(ENTERPRISE))), 4242, "pid");
        assert_eq!(text(record, 3), "root");
        assert_eq!(text(record, 4), "CN");
        assert_eq!(text(record, 5), "suspicious");
    }
}

#[test]
fn an_ipv4_flow_is_two_records_with_every_element() {
    check_both_directions("10.0.0.1", "192.0.2.1");
}

#[test]
fn an_ipv6_flow_is_two_records_with_every_element() {
    check_both_directions("2001:db8::1", "2001:db8:ff::7");
}

#[test]
fn a_direction_that_moved_nothing_has_no_record_and_udp_has_no_tcp_flags() {
    let mut record = flow_record("10.0.0.1", "192.0.2.1", 17);
    record.counts.tx_packets = 0;
    record.counts.tx_bytes = 0;
    record.end_reason = EndReason::Idle;
    record.facts.owner = Owner::NoLocalSocket;
    record.facts.location = Location::Local;
    let messages = encode(&[record], MAX_MESSAGE);
    let decoded = decode(&mut NetflowParser::default(), &messages[0]);
    let [received] = decoded.records.as_slice() else {
        panic!("one record: {:?}", decoded.records);
    };
    assert_eq!(number(field(received, 4, None)), 17);
    assert_eq!(number(field(received, 6, None)), 0, "no flags on UDP");
    assert_eq!(number(field(received, 136, None)), 1, "idle timeout");
    assert_eq!(number(field(received, 2, Some(ENTERPRISE))), 0, "no pid");
    assert_eq!(text(received, 1), "-", "no process");
    assert_eq!(text(received, 3), "-", "no user");
    assert_eq!(text(received, 4), "local");
    assert_eq!(text(received, 5), "suspicious");
}

/// 500 flows of both families: split over messages that each stay under the limit and
/// that one parser decodes in order, each numbered by the data records before it.
#[test]
fn many_records_split_over_messages_numbered_by_the_records_before_them() {
    let records: Vec<FlowRecord> = (0..500)
        .map(|n| {
            let mut record = if n % 3 == 0 {
                flow_record("2001:db8::1", &format!("2001:db8:ff::{n:x}"), 6)
            } else {
                flow_record("10.0.0.1", &format!("192.0.{}.{}", n / 250, n % 250), 17)
            };
            record.counts.rx_packets = n + 1;
            record
        })
        .collect();
    let messages = encode(&records, MAX_MESSAGE);
    assert!(messages.len() > 20, "{} messages", messages.len());
    let mut parser = NetflowParser::default();
    let mut before = 0;
    let mut received_packets = Vec::new();
    for message in &messages {
        assert!(message.len() <= MAX_MESSAGE, "{} bytes", message.len());
        let decoded = decode(&mut parser, message);
        assert_eq!(decoded.sequence, before, "the data records sent before it");
        before += decoded.records.len() as u32;
        for record in &decoded.records {
            if number(field(record, 10, None)) == 9 {
                received_packets.push(number(field(record, 2, None)));
            }
        }
    }
    assert_eq!(before, 1000, "two records per flow");
    let expected: Vec<u64> = (1..=500).collect();
    assert_eq!(received_packets, expected, "every record, in order");
}

/// Through real sockets: the templates at start, the records at the flush, and, once the
/// refresh is due, the templates again, which a collector that starts afresh then uses
/// to decode what follows.
#[test]
fn the_exporter_sends_templates_at_start_and_again_so_a_new_collector_decodes() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let options = IpfixOptions {
        collectors: vec![collector.local_addr().unwrap().to_string()],
        template_refresh: Duration::ZERO,
        observation_domain: 3,
    };
    let mut exporter = IpfixExporter::open(&options).unwrap();
    let mut buffer = [0; 65536];
    let mut receive = || {
        let length = collector.recv(&mut buffer).unwrap();
        buffer[..length].to_vec()
    };
    let mut first = NetflowParser::default();
    let start = decode(&mut first, &receive());
    assert_eq!((start.templates.len(), start.records.len()), (2, 0));
    assert_eq!(start.domain, 3);

    exporter.record(&flow_record("10.0.0.1", "192.0.2.1", 6));
    assert!(exporter.flush().is_empty(), "no failure to tell");
    let data = decode(&mut first, &receive());
    assert_eq!((data.sequence, data.records.len()), (0, 2));
    let again = receive();

    // A collector (re)started now has none of the templates until they come again.
    let mut restarted = NetflowParser::default();
    let templates = decode(&mut restarted, &again);
    assert_eq!(templates.templates, [TEMPLATE_V4, TEMPLATE_V6]);
    assert_eq!(templates.sequence, 2, "two data records were sent before");
    exporter.record(&flow_record("2001:db8::1", "2001:db8::2", 17));
    exporter.flush();
    let data = decode(&mut restarted, &receive());
    assert_eq!((data.sequence, data.records.len()), (2, 2));
    let ingress = field(&data.records[0], 10, None);
    assert_ne!(number(ingress), 0, "lo's ifindex");
}

#[test]
fn a_collector_that_cannot_be_resolved_is_refused_at_open() {
    let options = IpfixOptions {
        collectors: vec!["no-such-host.invalid:4739".into()],
        template_refresh: Duration::from_secs(30),
        observation_domain: 1,
    };
    let error = IpfixExporter::open(&options).err().expect("refused");
    assert!(format!("{error:#}").contains("--ipfix"), "{error:#}");
}

/// A message exactly at the limit is not split; one byte smaller is.
#[test]
fn the_limit_is_the_message_length() {
    let record = flow_record("10.0.0.1", "192.0.2.1", 6);
    let whole = encode(std::slice::from_ref(&record), MAX_MESSAGE);
    assert_eq!(whole.len(), 1);
    assert_eq!(
        encode(std::slice::from_ref(&record), whole[0].len()).len(),
        1
    );
    let split = encode(std::slice::from_ref(&record), whole[0].len() - 1);
    assert_eq!(split.len(), 2);
}
