//! One `--ipfix HOST:PORT` collector: a UDP socket of its own that messages are sent
//! to. Unconnected, so a collector that is down (or restarting) costs only the messages
//! sent meanwhile, never an error held over for the next one; a failing send is told once
//! and its recovery once, as lines for stderr.

use std::{
    io,
    net::{SocketAddr, ToSocketAddrs, UdpSocket},
};

use anyhow::{Context as _, Result};

/// Every collector, and the lines for stderr their sends gave since they were taken.
pub struct Collectors {
    collectors: Vec<Collector>,
    notices: Vec<String>,
}

impl Collectors {
    /// Opens each `HOST:PORT`; fails on the first that cannot be resolved.
    pub fn open(targets: &[String]) -> Result<Self> {
        let collectors = targets
            .iter()
            .map(|target| {
                Collector::open(target)
                    .with_context(|| format!("cannot send IPFIX to {target}; check --ipfix"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            collectors,
            notices: Vec::new(),
        })
    }

    /// Sends one message to each.
    pub fn send(&mut self, message: &[u8]) {
        for collector in &mut self.collectors {
            collector.send(message, &mut self.notices);
        }
    }

    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }
}

struct Collector {
    /// As given on the command line.
    name: String,
    address: SocketAddr,
    socket: UdpSocket,
    /// Messages that could not be sent since the last one that could.
    lost: u64,
}

impl Collector {
    /// Resolves `HOST:PORT` (its first address) and opens a socket of its family.
    fn open(target: &str) -> io::Result<Self> {
        let address = target
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))?;
        let local: SocketAddr = if address.is_ipv6() {
            "[::]:0".parse().expect("an address")
        } else {
            "0.0.0.0:0".parse().expect("an address")
        };
        Ok(Self {
            name: target.to_owned(),
            address,
            socket: UdpSocket::bind(local)?,
            lost: 0,
        })
    }

    /// Sends one message; the first failure of an outage and its end add a line to
    /// `notices`.
    fn send(&mut self, message: &[u8], notices: &mut Vec<String>) {
        match self.socket.send_to(message, self.address) {
            Ok(_) if self.lost > 0 => {
                notices.push(format!(
                    "IPFIX to {} is sent again; {} messages were lost",
                    self.name, self.lost
                ));
                self.lost = 0;
            }
            Ok(_) => {}
            Err(error) => {
                if self.lost == 0 {
                    notices.push(format!(
                        "cannot send IPFIX to {} ({error}); metering goes on and its records \
                         are lost until it can be reached",
                        self.name
                    ));
                }
                self.lost += 1;
            }
        }
    }
}
