//! Tests of the alerts, one file per file of `sinks/alerts/`, and the snapshots and facts
//! they share.

mod alert;
mod config;
mod engine;
mod exec;
mod flood;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

pub use crate::sinks::{
    fixtures::{business, flow, miner},
    schema::SCHEMA_VERSION,
};

use super::{Alert, AlertConfig, AlertEngine, AlertKind, Phase, RateLimit};
use crate::{
    datapath::{DirectionTotals, FlowDelta, InterfaceTotals, Snapshot},
    enrich::{
        EnrichedSnapshot, Facts,
        geo::{CountryCode, Location},
        sockets::Owner,
        verdict::{Judgement, Reason, Verdict},
    },
};

pub const T0: u64 = 1_800_000_000;

/// `snapshot` with `facts[i]` for its flow `i`: one fact per flow.
pub fn enriched(snapshot: Snapshot, facts: &[Facts]) -> EnrichedSnapshot {
    EnrichedSnapshot::from_parts(snapshot, facts.to_vec())
}

pub const MIB: u64 = 1 << 20;

pub fn at(second: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + second)
}

pub fn cc(code: &str) -> CountryCode {
    CountryCode::new(code).unwrap()
}

pub fn home(codes: &str) -> AlertConfig {
    AlertConfig {
        home: codes.parse().unwrap(),
        clear: Duration::ZERO,
        ..AlertConfig::default()
    }
}

/// An engine with only a rate limit, ending conditions at once.
pub fn rate_engine(limit: RateLimit) -> AlertEngine {
    AlertEngine::new(AlertConfig {
        rate: Some(limit),
        clear: Duration::ZERO,
        ..AlertConfig::default()
    })
}

pub fn in_country(code: &str) -> Facts {
    business(Location::Country(cc(code)))
}

pub fn suspicious(owner: Owner, location: Location, reasons: Vec<Reason>) -> Facts {
    Facts {
        owner,
        location,
        judgement: Judgement {
            verdict: Verdict::Suspicious,
            reasons,
            foreign: false,
        },
    }
}

pub fn snapshot(second: u64, flows: Vec<FlowDelta>) -> Snapshot {
    Snapshot {
        at: at(second),
        interval: Duration::from_secs(1),
        flows,
        interfaces: vec![],
        overflow: Vec::new(),
    }
}

pub fn link(second: u64, interval: Duration, rx_bytes: u64, tx_bytes: u64) -> Snapshot {
    let direction = |bytes| DirectionTotals {
        packets: bytes / 1500,
        bytes,
        ..Default::default()
    };
    Snapshot {
        at: at(second),
        interval,
        flows: vec![],
        interfaces: vec![InterfaceTotals {
            iface: Arc::from("eth0"),
            rx: direction(rx_bytes),
            tx: direction(tx_bytes),
        }],
        overflow: Vec::new(),
    }
}

pub fn phases(alerts: &[Alert]) -> Vec<(AlertKind, Phase)> {
    alerts.iter().map(|a| (a.kind, a.phase)).collect()
}
