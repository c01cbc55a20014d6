//! `type: "start"`: what is attached where, written once before the first interval.

use serde::Serialize;

use crate::datapath::Attachment;

/// `type: "start"`: written once, after the programs are attached.
#[derive(Serialize)]
pub struct Start<'a> {
    pub version: &'static str,
    pub interval_s: f64,
    pub flow_capacity: u32,
    /// The GeoIP database in use.
    pub geoip: &'a str,
    pub interfaces: Vec<StartInterface<'a>>,
}

#[derive(Serialize)]
pub struct StartInterface<'a> {
    pub name: &'a str,
    pub ifindex: u32,
    /// `"xdp"`, `"xdp-generic"` or `"tc"`.
    pub ingress: &'static str,
    pub ingress_reason: &'a str,
    pub egress: &'static str,
}

impl<'a> StartInterface<'a> {
    pub fn from_attachment(attachment: &'a Attachment) -> Self {
        Self {
            name: &attachment.interface.name,
            ifindex: attachment.interface.ifindex,
            ingress: attachment.ingress.name(),
            ingress_reason: &attachment.reason,
            egress: "tc",
        }
    }
}
