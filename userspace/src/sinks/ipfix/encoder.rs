//! IPFIX messages (RFC 7011 §3): a 16-byte header, then sets; records go into the data
//! set of their template, and a message that would outgrow the size limit is sent and a
//! new one begun, so no message is fragmented on its way. Each header carries the
//! export time, the observation domain and the sequence number: the data records sent
//! in this domain before the message (modulo 2^32), so a collector can count what it
//! missed. Finished messages go to the `send` callback (the collectors).

use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use super::{
    record::Directed,
    template::{Element, LAYOUT, TEMPLATE_V4, TEMPLATE_V6, write_template_set},
};

/// IPFIX's version number in every header.
const VERSION: u16 = 10;
const HEADER_LEN: usize = 16;
const SET_HEADER_LEN: usize = 4;

/// Stays under a 1,500-byte path MTU with an IPv6 and a UDP header (48 bytes) to spare.
pub const MAX_MESSAGE: usize = 1400;

/// Messages being built for one observation domain.
pub struct Encoder {
    domain: u32,
    max_message: usize,
    /// Data records in messages finished so far (the next header's sequence number).
    sequence: u32,
    /// The message being built: empty, or a header (filled in at the end) and sets.
    message: Vec<u8>,
    records_in_message: u32,
    /// The data set being filled: its template and the offset of its header.
    open_set: Option<(u16, usize)>,
    /// One record, encoded before it is known to fit.
    scratch: Vec<u8>,
}

impl Encoder {
    pub fn new(domain: u32, max_message: usize) -> Self {
        Self {
            domain,
            max_message,
            sequence: 0,
            message: Vec::with_capacity(max_message),
            records_in_message: 0,
            open_set: None,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Adds the template set (both templates), in a message of its own if it does not fit
    /// in the current one. Records after it in the same message can be decoded by a
    /// collector that has just (re)started.
    pub fn templates(&mut self, send: &mut dyn FnMut(&[u8])) {
        self.close_set();
        self.scratch.clear();
        write_template_set(&mut self.scratch);
        self.make_room(self.scratch.len(), send);
        self.message.extend_from_slice(&self.scratch);
    }

    /// Adds one data record.
    pub fn record(&mut self, record: &Directed, send: &mut dyn FnMut(&[u8])) {
        self.scratch.clear();
        for element in LAYOUT {
            write_field(&mut self.scratch, element, record);
        }
        let template = if record.is_v6() {
            TEMPLATE_V6
        } else {
            TEMPLATE_V4
        };
        let same_set = matches!(self.open_set, Some((open, _)) if open == template);
        let needed = self.scratch.len() + if same_set { 0 } else { SET_HEADER_LEN };
        if self.make_room(needed, send) || !same_set {
            self.close_set();
            self.open_set = Some((template, self.message.len()));
            self.message.extend_from_slice(&template.to_be_bytes());
            self.message.extend_from_slice(&[0, 0]); // the set's length, when closed
        }
        self.message.extend_from_slice(&self.scratch);
        self.records_in_message += 1;
    }

    /// Sends the message being built, if it holds anything.
    pub fn finish(&mut self, send: &mut dyn FnMut(&[u8])) {
        if self.message.is_empty() {
            return;
        }
        self.close_set();
        let export_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as u32);
        let length = self.message.len() as u16;
        let header = &mut self.message[..HEADER_LEN];
        header[0..2].copy_from_slice(&VERSION.to_be_bytes());
        header[2..4].copy_from_slice(&length.to_be_bytes());
        header[4..8].copy_from_slice(&export_time.to_be_bytes());
        header[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        header[12..16].copy_from_slice(&self.domain.to_be_bytes());
        send(&self.message);
        self.sequence = self.sequence.wrapping_add(self.records_in_message);
        self.records_in_message = 0;
        self.message.clear();
    }

    /// Makes sure `bytes` more fit: sends the current message first if they would not.
    /// Begins a message if none is open. True if a new message was begun.
    fn make_room(&mut self, bytes: usize, send: &mut dyn FnMut(&[u8])) -> bool {
        if !self.message.is_empty() && self.message.len() + bytes > self.max_message {
            self.finish(send);
        }
        if self.message.is_empty() {
            self.message.resize(HEADER_LEN, 0);
            self.open_set = None;
            return true;
        }
        false
    }

    /// Writes the open data set's length.
    fn close_set(&mut self) {
        if let Some((_, start)) = self.open_set.take() {
            let length = (self.message.len() - start) as u16;
            self.message[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
}

/// One field's value, as the template's specifier for it says.
fn write_field(out: &mut Vec<u8>, element: Element, record: &Directed) {
    match element {
        Element::SourceAddress => write_address(out, record.source),
        Element::DestinationAddress => write_address(out, record.destination),
        Element::SourcePort => out.extend_from_slice(&record.source_port.to_be_bytes()),
        Element::DestinationPort => out.extend_from_slice(&record.destination_port.to_be_bytes()),
        Element::Protocol => out.push(record.protocol),
        Element::TcpFlags => out.extend_from_slice(&record.tcp_flags.to_be_bytes()),
        Element::Octets => out.extend_from_slice(&record.octets.to_be_bytes()),
        Element::Packets => out.extend_from_slice(&record.packets.to_be_bytes()),
        Element::FlowStart => out.extend_from_slice(&record.start_ms.to_be_bytes()),
        Element::FlowEnd => out.extend_from_slice(&record.end_ms.to_be_bytes()),
        Element::Ingress => out.extend_from_slice(&record.ingress.to_be_bytes()),
        Element::Egress => out.extend_from_slice(&record.egress.to_be_bytes()),
        Element::EndReason => out.push(record.end_reason),
        Element::ProcessName => write_string(out, record.process_name),
        Element::ProcessId => out.extend_from_slice(&record.process_id.to_be_bytes()),
        Element::UserName => write_string(out, record.user_name),
        Element::Country => write_string(out, record.country),
        Element::Verdict => write_string(out, record.verdict),
    }
}

fn write_address(out: &mut Vec<u8>, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// A variable-length string (RFC 7011 §7): one length byte, or 255 and two.
fn write_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if bytes.len() < 255 {
        out.push(bytes.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(bytes.len().min(u16::MAX as usize) as u16).to_be_bytes());
    }
    out.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
}
