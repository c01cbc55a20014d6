//! Values the sinks' tests share.

use std::sync::Arc;

use crate::{
    datapath::{FlowDelta, FlowId, Protocol},
    enrich::{
        Facts,
        geo::Location,
        sockets::{Owner, ProcessInfo},
        verdict::{Judgement, Verdict},
    },
};

/// A cryptominer run by root from a hidden directory under /tmp.
pub fn miner() -> Arc<ProcessInfo> {
    Arc::new(ProcessInfo {
        pid: 4242,
        comm: "xmrig".into(),
        exe: Some("/tmp/.x/xmrig".into()),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: "root".into(),
        cmdline: "/tmp/.x/xmrig -o pool:3333".into(),
    })
}

/// A business upload run by root, to the runbook's remote 198.51.100.20.
pub fn iperf3(pid: u32) -> Arc<ProcessInfo> {
    Arc::new(ProcessInfo {
        pid,
        comm: "iperf3".into(),
        exe: Some("/usr/bin/iperf3".into()),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: "root".into(),
        cmdline: "iperf3 -c 198.51.100.20".into(),
    })
}

/// A TCP flow from 10.0.0.1:40000 on eth0 that moved one packet each way.
pub fn flow(remote: &str, remote_port: u16, rx_bytes: u64, tx_bytes: u64) -> FlowDelta {
    FlowDelta {
        id: FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(flowmeter_common::PROTO_TCP),
            local_ip: "10.0.0.1".parse().unwrap(),
            local_port: 40000,
            remote_ip: remote.parse().unwrap(),
            remote_port,
        },
        rx_packets: 1,
        rx_bytes,
        tx_packets: 1,
        tx_bytes,
        tcp_flags: 0x18,
    }
}

/// Facts of an unremarkable flow with no local socket.
pub fn business(location: Location) -> Facts {
    Facts {
        owner: Owner::NoLocalSocket,
        location,
        judgement: Judgement {
            verdict: Verdict::Business,
            reasons: vec![],
            foreign: false,
        },
    }
}
