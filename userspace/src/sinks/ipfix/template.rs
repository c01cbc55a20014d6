//! The one record layout flowmeter exports, as two IPFIX templates (RFC 7011 §3.4.1):
//! 256 for IPv4 flows and 257 for IPv6, the same elements in the same order but for the
//! addresses' width. [`LAYOUT`] is the order; the template set ([`write_template_set`])
//! and every data record (`encoder`) are written from it, so the two cannot disagree.
//! The list is in `docs/ipfix.md`.

/// flowmeter's enterprise number in its own elements: 32473 is the one RFC 5612 sets
/// aside for documentation, a placeholder until flowmeter has a registered one.
pub const ENTERPRISE: u32 = 32473;

/// The template of IPv4 flows, and of IPv6 flows (data set ids, ≥ 256).
pub const TEMPLATE_V4: u16 = 256;
pub const TEMPLATE_V6: u16 = 257;

/// The template set's id (RFC 7011 §3.3.2).
pub const TEMPLATE_SET: u16 = 2;

/// A field length that says "variable" (RFC 7011 §7): the value carries its length.
pub const VARIABLE: u16 = 65535;

/// One field of a record, in the order of [`LAYOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    SourceAddress,
    DestinationAddress,
    SourcePort,
    DestinationPort,
    Protocol,
    TcpFlags,
    Octets,
    Packets,
    FlowStart,
    FlowEnd,
    Ingress,
    Egress,
    EndReason,
    ProcessName,
    ProcessId,
    UserName,
    Country,
    Verdict,
}

/// Every record's fields, in order.
pub const LAYOUT: [Element; 18] = [
    Element::SourceAddress,
    Element::DestinationAddress,
    Element::SourcePort,
    Element::DestinationPort,
    Element::Protocol,
    Element::TcpFlags,
    Element::Octets,
    Element::Packets,
    Element::FlowStart,
    Element::FlowEnd,
    Element::Ingress,
    Element::Egress,
    Element::EndReason,
    Element::ProcessName,
    Element::ProcessId,
    Element::UserName,
    Element::Country,
    Element::Verdict,
];

/// A field specifier: the element's id, its length, and its enterprise if not IANA's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Specifier {
    pub id: u16,
    pub length: u16,
    pub enterprise: Option<u32>,
}

impl Element {
    /// The element as the template of `v6` (or IPv4) flows names it.
    pub fn specifier(self, v6: bool) -> Specifier {
        let iana = |id, length| Specifier {
            id,
            length,
            enterprise: None,
        };
        let ours = |id, length| Specifier {
            id,
            length,
            enterprise: Some(ENTERPRISE),
        };
        match self {
            // sourceIPv4Address 8 / sourceIPv6Address 27, and the destinations.
            Self::SourceAddress if v6 => iana(27, 16),
            Self::SourceAddress => iana(8, 4),
            Self::DestinationAddress if v6 => iana(28, 16),
            Self::DestinationAddress => iana(12, 4),
            Self::SourcePort => iana(7, 2),
            Self::DestinationPort => iana(11, 2),
            Self::Protocol => iana(4, 1),
            // tcpControlBits is 16 bits since RFC 7125.
            Self::TcpFlags => iana(6, 2),
            Self::Octets => iana(1, 8),
            Self::Packets => iana(2, 8),
            Self::FlowStart => iana(152, 8),
            Self::FlowEnd => iana(153, 8),
            Self::Ingress => iana(10, 4),
            Self::Egress => iana(14, 4),
            Self::EndReason => iana(136, 1),
            Self::ProcessName => ours(1, VARIABLE),
            Self::ProcessId => ours(2, 4),
            Self::UserName => ours(3, VARIABLE),
            Self::Country => ours(4, VARIABLE),
            Self::Verdict => ours(5, VARIABLE),
        }
    }
}

/// Appends the template set that defines both templates.
pub fn write_template_set(out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&TEMPLATE_SET.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // the set's length, below
    for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(LAYOUT.len() as u16).to_be_bytes());
        for element in LAYOUT {
            let field = element.specifier(v6);
            let enterprise_bit = if field.enterprise.is_some() {
                0x8000
            } else {
                0
            };
            out.extend_from_slice(&(field.id | enterprise_bit).to_be_bytes());
            out.extend_from_slice(&field.length.to_be_bytes());
            if let Some(number) = field.enterprise {
                out.extend_from_slice(&number.to_be_bytes());
            }
        }
    }
    let length = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
}
