//! `type: "interface"`: a metered interface deleted, or created again, while flowmeter
//! runs (`datapath::presence` finds it); written before the interval's other lines.

use serde::Serialize;

use crate::datapath::presence::{Happened, InterfaceEvent};

/// `type: "interface"`: `event` is `gone` (deleted: the interval's `totals` are its
/// last) or `back` (created again under the same name); `metered` says whether
/// flowmeter counts it from here on, and if not, `reason` says why.
#[derive(Serialize)]
pub struct InterfaceRecord<'a> {
    pub iface: &'a str,
    pub event: &'static str,
    /// The ifindex that went, or the one it came back under.
    pub ifindex: u32,
    pub metered: bool,
    /// `back` and metered: as in `start`'s interfaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<&'static str>,
    /// `back` and not metered: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> InterfaceRecord<'a> {
    pub fn new(event: &'a InterfaceEvent) -> Self {
        let record = Self {
            iface: &event.iface,
            event: "back",
            ifindex: event.ifindex,
            metered: false,
            ingress: None,
            ingress_reason: None,
            egress: None,
            reason: None,
        };
        match &event.happened {
            Happened::Gone => Self {
                event: "gone",
                ..record
            },
            Happened::Back(attachment) => Self {
                metered: true,
                ingress: Some(attachment.ingress.name()),
                ingress_reason: Some(&attachment.reason),
                egress: Some("tc"),
                ..record
            },
            Happened::NotMetered(reason) => Self {
                reason: Some(reason),
                ..record
            },
        }
    }
}
