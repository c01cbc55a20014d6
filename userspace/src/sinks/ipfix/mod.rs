//! `log --ipfix HOST:PORT`: the flow records the log writes, also sent as IPFIX (RFC
//! 7011) over UDP to one or two flow collectors (nfacctd, for one). The log hands every
//! record over as it writes it ([`RecordTap`]); `record.rs` makes it one data record per
//! direction, `encoder.rs` packs them into messages under the path MTU, and each
//! finished message goes to every collector (`collector.rs`). The templates
//! (`template.rs`) go out at start and again every `--ipfix-template-refresh`, so a
//! collector that restarts decodes again within that time. `docs/ipfix.md` has the
//! layout.

mod collector;
mod encoder;
mod record;
mod template;

use std::{
    ffi::CString,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Result;
use rustc_hash::FxHashMap;

pub use encoder::MAX_MESSAGE;
pub use template::ENTERPRISE;

use self::{collector::Collectors, encoder::Encoder};
use super::records::{FlowRecord, RecordTap};

/// `--ipfix`, `--ipfix-template-refresh`, `--ipfix-domain`.
#[derive(Clone, Debug)]
pub struct IpfixOptions {
    /// `HOST:PORT` of each collector.
    pub collectors: Vec<String>,
    pub template_refresh: Duration,
    pub observation_domain: u32,
}

/// The exporter: one encoder (one observation domain, one sequence of records) whose
/// messages go to every collector alike.
pub struct IpfixExporter {
    encoder: Encoder,
    collectors: Collectors,
    template_refresh: Duration,
    templates_sent: Instant,
    /// Interface indexes by name, looked up again every interval (an interface created
    /// anew has another).
    ifindexes: FxHashMap<Arc<str>, u32>,
}

impl IpfixExporter {
    /// Opens a socket per collector and sends them the templates.
    pub fn open(options: &IpfixOptions) -> Result<Self> {
        let mut exporter = Self {
            encoder: Encoder::new(options.observation_domain, MAX_MESSAGE),
            collectors: Collectors::open(&options.collectors)?,
            template_refresh: options.template_refresh,
            templates_sent: Instant::now(),
            ifindexes: FxHashMap::default(),
        };
        exporter.send_templates();
        Ok(exporter)
    }

    fn send_templates(&mut self) {
        let collectors = &mut self.collectors;
        let mut send = |message: &[u8]| collectors.send(message);
        self.encoder.templates(&mut send);
        self.encoder.finish(&mut send);
        self.templates_sent = Instant::now();
    }

    fn ifindex(&mut self, iface: &Arc<str>) -> u32 {
        if let Some(&index) = self.ifindexes.get(iface) {
            return index;
        }
        // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
        let index = CString::new(iface.as_bytes())
            .map_or(0, |name| unsafe { libc::if_nametoindex(name.as_ptr()) });
        self.ifindexes.insert(iface.clone(), index);
        index
    }
}

impl RecordTap for IpfixExporter {
    fn record(&mut self, record: &FlowRecord) {
        let ifindex = self.ifindex(&record.id.iface);
        let collectors = &mut self.collectors;
        for directed in record::directions(record, ifindex) {
            self.encoder
                .record(&directed, &mut |message| collectors.send(message));
        }
    }

    fn flush(&mut self) -> Vec<String> {
        let collectors = &mut self.collectors;
        self.encoder.finish(&mut |message| collectors.send(message));
        if self.templates_sent.elapsed() >= self.template_refresh {
            self.send_templates();
        }
        self.ifindexes.clear();
        self.collectors.take_notices()
    }
}

#[cfg(test)]
mod tests;
