//! Listening sockets (live system only): databases and similar core services that accept
//! connections from any network. The runbook: never open mysql, redis and the like to the
//! public network; open only the ports the service needs.

use std::net::IpAddr;

use flowmeter_common::{PROTO_TCP, PROTO_UDP};

use crate::enrich::{geo, sockets::Listener};

use super::{
    advice,
    finding::{Finding, Findings, Severity},
};

/// Services that must not face the public network: port, name, and whether its UDP
/// socket counts too (memcached's is an amplifier).
const DATABASES: &[(u16, &str, bool)] = &[
    (1433, "Microsoft SQL Server", false),
    (1521, "Oracle", false),
    (2181, "ZooKeeper", false),
    (2375, "Docker API (unencrypted)", false),
    (2379, "etcd", false),
    (3306, "MySQL/MariaDB", false),
    (5432, "PostgreSQL", false),
    (5672, "RabbitMQ", false),
    (5984, "CouchDB", false),
    (6379, "Redis", false),
    (8086, "InfluxDB", false),
    (8123, "ClickHouse", false),
    (9042, "Cassandra", false),
    (9092, "Kafka", false),
    (9200, "Elasticsearch", false),
    (9300, "Elasticsearch (transport)", false),
    (11211, "memcached", true),
    (27017, "MongoDB", false),
    (27018, "MongoDB", false),
];

/// Other TCP ports listed in the summary finding, at most.
const LISTED_PORTS: usize = 20;

pub fn check(listeners: &[Listener], out: &mut Findings) {
    let mut others: Vec<String> = Vec::new();
    for listener in listeners.iter().filter(|l| reachable(l.local.ip())) {
        let tcp = listener.proto.0 == PROTO_TCP;
        let udp = listener.proto.0 == PROTO_UDP;
        let port = listener.local.port();
        let database = DATABASES
            .iter()
            .find(|(known, _, with_udp)| *known == port && (tcp || (udp && *with_udp)));
        let holder = match &listener.owner {
            Some(process) => format!("held by {} (pid {})", process.comm, process.pid),
            None => "no process found holding it".to_owned(),
        };
        let proto = if tcp { "tcp" } else { "udp" };
        let Some((_, name, _)) = database else {
            if tcp {
                others.push(format!("{port}/tcp ({holder})"));
            }
            continue;
        };
        let reach = if listener.local.ip().is_unspecified() {
            "all addresses".to_owned()
        } else {
            format!("the public address {}", listener.local.ip())
        };
        let mut finding = Finding::new(
            "socket-database-exposed",
            Severity::High,
            format!("{name} ({port}/{proto}) listens on {reach}: reachable from any network"),
            format!("{proto} {} listening, {holder}", listener.local),
            advice::EXPOSED_DATABASE,
        );
        if let Some(process) = &listener.owner {
            finding = finding.about(process);
        }
        out.add(finding);
    }
    others.dedup();
    if !others.is_empty() {
        let count = others.len();
        let mut evidence = others
            .iter()
            .take(LISTED_PORTS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if count > LISTED_PORTS {
            evidence.push_str(&format!(", and {} more", count - LISTED_PORTS));
        }
        out.add(Finding::new(
            "listening-all-addresses",
            Severity::Info,
            if count == 1 {
                "1 other TCP socket accepts connections from any network".to_owned()
            } else {
                format!("{count} other TCP sockets accept connections from any network")
            },
            evidence,
            advice::OPEN_PORTS,
        ));
    }
}

/// Bound to all addresses, or to one that is not private, loopback or link-local.
fn reachable(ip: IpAddr) -> bool {
    ip.is_unspecified() || !geo::is_local(ip)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{datapath::Protocol, proc::ProcessInfo};

    use super::*;

    fn listener(proto: u8, local: &str, pid: Option<u32>) -> Listener {
        Listener {
            proto: Protocol(proto),
            local: local.parse().unwrap(),
            owner: pid.map(|pid| {
                Arc::new(ProcessInfo {
                    pid,
                    comm: "redis-server".into(),
                    exe: Some("/usr/bin/redis-server".into()),
                    exe_deleted: false,
                    cgroup: Default::default(),
                    uid: 999,
                    user: "redis".into(),
                    cmdline: String::new(),
                })
            }),
        }
    }

    #[test]
    fn databases_on_all_or_public_addresses_are_high() {
        let mut out = Findings::default();
        check(
            &[
                listener(PROTO_TCP, "0.0.0.0:22", Some(1)),
                listener(PROTO_TCP, "0.0.0.0:6379", Some(812)),
                listener(PROTO_TCP, "[::]:5432", None),
                listener(PROTO_TCP, "203.0.113.4:3306", Some(9)),
                listener(PROTO_TCP, "127.0.0.1:27017", Some(10)),
                listener(PROTO_TCP, "10.0.0.5:9200", Some(11)),
                listener(PROTO_UDP, "0.0.0.0:11211", Some(12)),
                listener(PROTO_UDP, "0.0.0.0:6379", Some(13)),
            ],
            &mut out,
        );
        let found: Vec<(&str, &str, Option<u32>)> = out
            .found
            .iter()
            .map(|f| {
                (
                    f.id.as_str(),
                    f.evidence.as_str(),
                    f.process.as_ref().map(|p| p.pid),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "socket-database-exposed",
                    "tcp 0.0.0.0:6379 listening, held by redis-server (pid 812)",
                    Some(812)
                ),
                (
                    "socket-database-exposed",
                    "tcp [::]:5432 listening, no process found holding it",
                    None
                ),
                (
                    "socket-database-exposed",
                    "tcp 203.0.113.4:3306 listening, held by redis-server (pid 9)",
                    Some(9)
                ),
                (
                    "socket-database-exposed",
                    "udp 0.0.0.0:11211 listening, held by redis-server (pid 12)",
                    Some(12)
                ),
                (
                    "listening-all-addresses",
                    "22/tcp (held by redis-server (pid 1))",
                    None
                ),
            ]
        );
        assert_eq!(
            out.found[0].title,
            "Redis (6379/tcp) listens on all addresses: reachable from any network"
        );
        assert!(
            out.found[2]
                .title
                .contains("the public address 203.0.113.4")
        );
    }
}
