//! Values the sinks' tests share.

use std::sync::Arc;

use crate::enrich::sockets::ProcessInfo;

/// A cryptominer run by root from a hidden directory under /tmp.
pub fn miner() -> Arc<ProcessInfo> {
    Arc::new(ProcessInfo {
        pid: 4242,
        comm: "xmrig".into(),
        exe: Some("/tmp/.x/xmrig".into()),
        exe_deleted: false,
        uid: 0,
        user: "root".into(),
        cmdline: "/tmp/.x/xmrig -o pool:3333".into(),
    })
}
