//! NAT mapped back: a flow this host NATed (a container's, masqueraded to the host's
//! address; or a port forwarded inward) carries on the metered interface the tuple after
//! translation; conntrack, of the namespace that translated it, knows the tuple its
//! socket has inside. One dump of the table per lookup (the `conntrack` crate, over
//! netlink), only when some flow found no owner otherwise.

use std::{collections::HashMap, net::SocketAddr};

use conntrack::{Conntrack, model::IpTuple};

use crate::datapath::FlowId;

/// A flow's ends as its socket sees them: (protocol, local, remote).
pub type Ends = (u8, SocketAddr, SocketAddr);

/// The translated flows of one dump: the ends on the outside → the ends inside.
#[derive(Debug, Default)]
pub struct Translations {
    inside: HashMap<Ends, Ends>,
}

impl Translations {
    /// Dumps the conntrack table of the calling thread's network namespace.
    pub fn dump() -> Result<Self, String> {
        let table = Conntrack::connect().map_err(|e| format!("conntrack: {e}"))?;
        let entries = table.dump().map_err(|e| format!("conntrack dump: {e}"))?;
        let mut translations = Self::default();
        for entry in entries {
            if let (Some(origin), Some(reply)) = (entry.origin, entry.reply) {
                translations.add(&origin, &reply);
            }
        }
        Ok(translations)
    }

    /// One connection: its original direction (as its initiator sent it) and its reply
    /// direction (as the answer comes back, after translation).
    fn add(&mut self, origin: &IpTuple, reply: &IpTuple) {
        let (Some(origin), Some(reply)) = (ends(origin), ends(reply)) else {
            return;
        };
        let (proto, origin_src, origin_dst) = origin;
        let (_, reply_src, reply_dst) = reply;
        if (reply_src, reply_dst) == (origin_dst, origin_src) {
            return; // not translated
        }
        // Source NAT: outside, this host's end is where replies go; inside, the
        // initiator's own address.
        self.inside.insert(
            (proto, reply_dst, reply_src),
            (proto, origin_src, origin_dst),
        );
        // Destination NAT: outside, this host's end is where the initiator sent to;
        // inside, the address that answers.
        self.inside.insert(
            (proto, origin_dst, origin_src),
            (proto, reply_src, reply_dst),
        );
    }

    /// The inside ends of `flow`, if this host translated it.
    pub fn inside(&self, flow: &FlowId) -> Option<Ends> {
        let outside = (
            flow.proto.0,
            SocketAddr::new(flow.local_ip, flow.local_port),
            SocketAddr::new(flow.remote_ip, flow.remote_port),
        );
        self.inside.get(&outside).copied()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.inside.is_empty()
    }
}

fn ends(tuple: &IpTuple) -> Option<Ends> {
    let proto = tuple.proto.as_ref()?;
    let number = u8::from(proto.number?);
    let src = SocketAddr::new(tuple.src?, proto.src_port.unwrap_or(0));
    let dst = SocketAddr::new(tuple.dst?, proto.dst_port.unwrap_or(0));
    Some((number, src, dst))
}

/// `flow` with the ends `inside`.
pub fn with_ends(flow: &FlowId, (_, local, remote): Ends) -> FlowId {
    FlowId {
        local_ip: local.ip(),
        local_port: local.port(),
        remote_ip: remote.ip(),
        remote_port: remote.port(),
        ..flow.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, sync::Arc};

    use conntrack::model::{IpProto, ProtoTuple};

    use super::*;
    use crate::datapath::Protocol;

    fn tuple(src: &str, dst: &str) -> IpTuple {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        IpTuple {
            src: Some(src.ip()),
            dst: Some(dst.ip()),
            proto: Some(ProtoTuple {
                number: Some(IpProto::Tcp),
                src_port: Some(src.port()),
                dst_port: Some(dst.port()),
                ..ProtoTuple::default()
            }),
            ..IpTuple::default()
        }
    }

    fn flow(local: &str, remote: &str) -> FlowId {
        let (local, remote): (SocketAddr, SocketAddr) =
            (local.parse().unwrap(), remote.parse().unwrap());
        FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(6),
            local_ip: local.ip(),
            local_port: local.port(),
            remote_ip: remote.ip(),
            remote_port: remote.port(),
        }
    }

    #[test]
    fn a_masqueraded_flow_maps_to_the_containers_own_ends() {
        let mut translations = Translations::default();
        // 172.17.0.2:40000 -> 203.0.113.2:443, masqueraded to 198.51.100.1:61000.
        translations.add(
            &tuple("172.17.0.2:40000", "203.0.113.2:443"),
            &tuple("203.0.113.2:443", "198.51.100.1:61000"),
        );
        let (_, local, remote) = translations
            .inside(&flow("198.51.100.1:61000", "203.0.113.2:443"))
            .expect("translated");
        assert_eq!(local, "172.17.0.2:40000".parse().unwrap());
        assert_eq!(remote, "203.0.113.2:443".parse().unwrap());
    }

    #[test]
    fn a_forwarded_port_maps_to_the_server_inside() {
        let mut translations = Translations::default();
        // 203.0.113.9:50000 -> 198.51.100.1:80, forwarded to 172.17.0.3:8080.
        translations.add(
            &tuple("203.0.113.9:50000", "198.51.100.1:80"),
            &tuple("172.17.0.3:8080", "203.0.113.9:50000"),
        );
        let (_, local, remote) = translations
            .inside(&flow("198.51.100.1:80", "203.0.113.9:50000"))
            .expect("translated");
        assert_eq!(local, "172.17.0.3:8080".parse().unwrap());
        assert_eq!(remote.ip(), "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn untranslated_connections_are_left_out() {
        let mut translations = Translations::default();
        translations.add(
            &tuple("198.51.100.1:40000", "203.0.113.2:443"),
            &tuple("203.0.113.2:443", "198.51.100.1:40000"),
        );
        assert!(translations.is_empty());
    }
}
