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
    /// Schema v2 only: how `flow` records are written.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub records: Option<StartRecords>,
}

/// Schema v2: `flow_records`, the timeouts and `top`.
#[derive(Serialize)]
pub struct StartRecords {
    /// `"timeouts"`.
    pub flow_records: &'static str,
    pub idle_timeout_s: f64,
    pub active_timeout_s: f64,
    /// `--top`: entries in each list of a `top` record (0: no `top` records).
    pub top: usize,
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
