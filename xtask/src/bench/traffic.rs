//! The load: 64-byte UDP frames from trafgen (from one flow up to a flood of new flows),
//! TCP from iperf3, both from the sender's namespace to the receiver's.

use std::{fs, path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};

use super::{
    json,
    lab::{Lab, RECEIVER_IP, RECEIVER_MAC, SENDER_IP, SENDER_MAC},
    procs::{self, SIGINT, Spawned},
};

/// The UDP payload that makes the frame 64 bytes as the interface counts them:
/// Ethernet 14 + IPv4 20 + UDP 8 + 22.
pub const UDP_PAYLOAD: u64 = 22;
pub const ETHERNET_HEADER: u64 = 14;
const IPERF_PORT: u16 = 5201;

/// How many different flows trafgen's frames make. Counters that change together with
/// `dinc()` make as many flows as the product of their ranges when those are coprime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flows {
    One,
    /// 1,000 source ports.
    Thousand,
    /// 10,000 source ports.
    TenThousand,
    /// 10,001 source ports and 10 source addresses: 100,010 flows.
    HundredThousand,
    /// 10,001 source ports and 100 source addresses: 1,000,100 flows.
    Million,
    /// A random source address and port in every frame: every packet a new flow.
    Flood,
}

impl Flows {
    /// The source address's options after `sa=...`, and the source port.
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Flows::One => ("", "4000"),
            Flows::Thousand => ("", "dinc(1024, 2023)"),
            Flows::TenThousand => ("", "dinc(1024, 11023)"),
            Flows::HundredThousand => (", sa[3]=dinc(1, 10)", "dinc(1024, 11024)"),
            Flows::Million => (", sa[3]=dinc(1, 100)", "dinc(1024, 11024)"),
            Flows::Flood => ("", "drnd()"),
        }
    }
}

/// A load of the throughput table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Udp,
    Tcp,
    Flood,
}

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::Udp => "udp",
            Kind::Tcp => "tcp",
            Kind::Flood => "flood",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Kind::Udp | Kind::Flood => "kpps",
            Kind::Tcp => "Gbit/s",
        }
    }

    pub fn traffic(self) -> &'static str {
        match self {
            Kind::Udp => "UDP 64 B frames, 1 flow",
            Kind::Tcp => "TCP, 1 connection",
            Kind::Flood => "UDP 64 B frames, every packet a new flow",
        }
    }
}

/// trafgen sending 64-byte UDP frames to the receiver at full speed (one worker per CPU),
/// at most `max_secs` worth of packets at 2 Mpps; stopped when dropped.
pub fn start_trafgen(
    lab: &Lab,
    flows: Flows,
    max_secs: f64,
    dir: &Path,
    name: &str,
) -> Result<Spawned> {
    let config = dir.join(format!("{name}.trafgen"));
    // The payload makes the frame 64 bytes; the UDP checksum is computed per frame.
    fs::write(&config, shown_config(flows) + "\n")
        .with_context(|| format!("writing {}", config.display()))?;
    let limit = (2_000_000.0 * max_secs) as u64;
    let mut cmd = lab.sender.command("trafgen");
    cmd.args(["--dev", &lab.sender_if, "--conf"])
        .arg(&config)
        .args([
            "--num",
            &limit.to_string(),
            "--no-cpu-stats",
            "--notouch-irq",
        ]);
    Spawned::start(&mut cmd, dir, name)
}

/// Ends trafgen (its workers with it).
pub fn stop_trafgen(mut trafgen: Spawned) {
    trafgen.stop(SIGINT, Duration::from_secs(3));
}

/// What one iperf3 run measured.
pub struct TcpRun {
    pub gbit_per_s: f64,
    /// Payload bytes the server received.
    pub bytes: f64,
}

/// The iperf3 server in the receiver's namespace, ready for one test.
pub fn start_iperf_server(lab: &Lab, dir: &Path, name: &str) -> Result<Spawned> {
    let mut cmd = lab.receiver.command("iperf3");
    cmd.args(["--server", "--one-off", "--bind", RECEIVER_IP])
        .args(["--port", &IPERF_PORT.to_string()]);
    let mut server = Spawned::start(&mut cmd, dir, name)?;
    for _ in 0..150 {
        if lab.listening(IPERF_PORT)? {
            return Ok(server);
        }
        if let Some(status) = server.exited()? {
            bail!("`{}` exited ({status}): {}", server.line(), server.stderr());
        }
        procs::sleep(Duration::from_millis(20))?;
    }
    bail!("`{}` is not listening after 3 s", server.line())
}

/// The iperf3 client in the sender's namespace: `secs` seconds of TCP, its JSON report
/// read. Nothing is left out (`--omit`), so that its byte count covers the whole run.
pub fn run_iperf_client(lab: &Lab, secs: u32, dir: &Path, name: &str) -> Result<TcpRun> {
    let mut cmd = lab.sender.command("iperf3");
    cmd.args(["--client", RECEIVER_IP, "--port", &IPERF_PORT.to_string()])
        .args(["--time", &secs.to_string(), "--json"]);
    let mut client = Spawned::start(&mut cmd, dir, name)?;
    let timeout = Duration::from_secs(u64::from(secs) + 15);
    match client.wait(timeout)? {
        Some(status) if status.success() => {}
        Some(status) => bail!("`{}` failed ({status}): {}", client.line(), client.stdout()),
        None => bail!("`{}` did not finish within {timeout:?}", client.line()),
    }
    let report = json::parse(&client.stdout())
        .with_context(|| format!("`{}` printed no JSON report", client.line()))?;
    let received = |field| {
        report
            .at(&["end", "sum_received", field])
            .and_then(json::Value::as_f64)
            .with_context(|| format!("no end.sum_received.{field} in iperf3's report"))
    };
    Ok(TcpRun {
        gbit_per_s: received("bits_per_second")? / 1e9,
        bytes: received("bytes")?,
    })
}

/// The load's commands, as the tables and records show them.
pub fn shown_load(kind: Kind, udp_secs: f64, tcp_secs: u32) -> String {
    let udp = |flows| {
        format!(
            "trafgen --dev IF --conf '{}' --num N (one worker per CPU) in the sender's \
             namespace; the receiver's rx packets/s over {udp_secs} s",
            shown_config(flows)
        )
    };
    match kind {
        Kind::Udp => udp(Flows::One),
        Kind::Flood => udp(Flows::Flood),
        Kind::Tcp => format!(
            "iperf3 --client {RECEIVER_IP} --time {tcp_secs} --json in the sender's \
             namespace, iperf3 --server --one-off in the receiver's"
        ),
    }
}

/// The trafgen configuration for `flows`, with the lab's addresses.
pub fn shown_config(flows: Flows) -> String {
    let (extra_sa, sport) = flows.fields();
    let sa = if flows == Flows::Flood {
        "drnd()"
    } else {
        SENDER_IP
    };
    format!(
        "{{ eth(da={RECEIVER_MAC}, sa={SENDER_MAC}), ipv4(sa={sa}{extra_sa}, \
         da={RECEIVER_IP}), udp(sp={sport}, dp=9), fill(0, {UDP_PAYLOAD}) }}"
    )
}
