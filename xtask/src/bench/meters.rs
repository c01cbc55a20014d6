//! The meters compared: none, flowmeter on each ingress hook, iftop, nethogs and
//! bandwhich, each run in the receiver's namespace on the receiver's interface, and what
//! each reports having received, set against the interface's own counters.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    lab::{Counters, Lab, RECEIVER_IP},
    procs::{self, SIGINT, SIGTERM, Spawned, Usage},
    reports::{self, Reported},
    traffic::{ETHERNET_HEADER, UDP_PAYLOAD},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meter {
    None,
    Flowmeter(Hook),
    Iftop,
    Nethogs,
    Bandwhich,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    Tc,
    XdpGeneric,
    Xdp,
}

impl Hook {
    pub fn arg(self) -> &'static str {
        match self {
            Hook::Tc => "tc",
            Hook::XdpGeneric => "xdp-generic",
            Hook::Xdp => "xdp",
        }
    }
}

/// Where the tools are.
pub struct Tools {
    pub flowmeter: PathBuf,
    /// Where bandwhich is, or why it is not there.
    pub bandwhich: Result<PathBuf, String>,
}

/// A meter's count as a percentage of the truth, for packets and bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accuracy {
    pub packets_pct: Option<f64>,
    pub bytes_pct: Option<f64>,
}

impl Meter {
    /// A short stable name, for records and file names.
    pub fn id(self) -> String {
        match self {
            Meter::None => "none".into(),
            Meter::Flowmeter(hook) => format!("flowmeter-{}", hook.arg()),
            Meter::Iftop => "iftop".into(),
            Meter::Nethogs => "nethogs".into(),
            Meter::Bandwhich => "bandwhich".into(),
        }
    }

    pub fn tool(self) -> &'static str {
        match self {
            Meter::None => "none",
            Meter::Flowmeter(_) => "flowmeter",
            Meter::Iftop => "iftop",
            Meter::Nethogs => "nethogs",
            Meter::Bandwhich => "bandwhich",
        }
    }

    pub fn hook(self) -> Option<&'static str> {
        match self {
            Meter::Flowmeter(hook) => Some(hook.arg()),
            _ => None,
        }
    }

    /// What the tool counts, and what it is compared with.
    pub fn counts(self) -> &'static str {
        match self {
            Meter::None => "",
            Meter::Flowmeter(Hook::Xdp) => {
                "rx packets and frame bytes from its `totals` lines vs the interface's rx \
                 counters; veth's native-XDP path counts bytes without the 14-byte Ethernet \
                 header, so bytes are compared with rx_bytes + 14 × rx_packets"
            }
            Meter::Flowmeter(_) => {
                "rx packets and frame bytes from its `totals` lines vs the interface's rx counters"
            }
            Meter::Iftop => {
                "the cumulative received bytes it prints (IP bytes, 3 significant digits) vs \
                 rx_bytes − 14 × rx_packets"
            }
            Meter::Nethogs => {
                "the received bytes it prints with `-v 2` (frame bytes, 3 significant digits), \
                 summed over its rows, vs rx_bytes"
            }
            Meter::Bandwhich => {
                "the received bytes it prints with `--total-utilization` (transport payload), \
                 summed over its connections, vs 22 B × rx_packets for UDP and iperf3's \
                 received bytes for TCP"
            }
        }
    }

    /// The command line that runs it, as the tables show it.
    pub fn shown_command(self) -> String {
        let iface = "IF";
        match self {
            Meter::None => "(nothing)".into(),
            Meter::Flowmeter(hook) => format!(
                "flowmeter log --iface {iface} --hook {} --interval 1 --output FILE",
                hook.arg()
            ),
            Meter::Iftop => format!("iftop -t -n -N -P -B -i {iface} -s SECS"),
            Meter::Nethogs => format!("nethogs -t -C -v 2 -d 1 -c SECS {iface}"),
            Meter::Bandwhich => {
                format!("bandwhich --raw --no-resolve --total-utilization -i {iface}")
            }
        }
    }

    /// The command, in the receiver's namespace, for a run of at most `secs` seconds.
    fn command(self, lab: &Lab, tools: &Tools, secs: u32, log: &Path) -> Result<Command> {
        let iface = lab.receiver_if.as_str();
        let ns = &lab.receiver;
        let secs = secs.to_string();
        let mut cmd;
        match self {
            Meter::None => bail!("no meter to start"),
            Meter::Flowmeter(hook) => {
                cmd = ns.command(&tools.flowmeter.to_string_lossy());
                cmd.args(["log", "--iface", iface, "--hook", hook.arg()])
                    .args(["--interval", "1", "--output"])
                    .arg(log)
                    .arg("--record-dir")
                    .arg(log.with_file_name("recordings"));
            }
            Meter::Iftop => {
                cmd = ns.command("iftop");
                cmd.args(["-t", "-n", "-N", "-P", "-B", "-i", iface, "-s", &secs]);
            }
            Meter::Nethogs => {
                cmd = ns.command("nethogs");
                cmd.args(["-t", "-C", "-v", "2", "-d", "1", "-c", &secs, iface]);
            }
            Meter::Bandwhich => {
                let bin = tools
                    .bandwhich
                    .as_ref()
                    .map_err(|why| anyhow::anyhow!("{why}"))?;
                cmd = ns.command(&bin.to_string_lossy());
                cmd.args(["--raw", "--no-resolve", "--total-utilization", "-i", iface]);
            }
        }
        Ok(cmd)
    }

    /// How much of the truth it reported. `iface` is what the interface counted over the
    /// meter's run; `tcp_bytes` the payload iperf3 received, for a TCP run.
    pub fn accuracy(self, reported: Reported, iface: Counters, tcp_bytes: Option<f64>) -> Accuracy {
        let pct = |part: Option<f64>, whole: f64| part.map(|p| 100.0 * p / whole);
        let packets = iface.rx_packets as f64;
        let bytes = iface.rx_bytes as f64;
        let header = (ETHERNET_HEADER * iface.rx_packets) as f64;
        match self {
            Meter::None => Accuracy::default(),
            Meter::Flowmeter(hook) => Accuracy {
                packets_pct: pct(reported.packets, packets),
                bytes_pct: pct(
                    reported.bytes,
                    if hook == Hook::Xdp {
                        bytes + header
                    } else {
                        bytes
                    },
                ),
            },
            Meter::Iftop => Accuracy {
                packets_pct: None,
                bytes_pct: pct(reported.bytes, bytes - header),
            },
            Meter::Nethogs => Accuracy {
                packets_pct: None,
                bytes_pct: pct(reported.bytes, bytes),
            },
            Meter::Bandwhich => Accuracy {
                packets_pct: None,
                bytes_pct: pct(
                    reported.bytes,
                    tcp_bytes.unwrap_or((UDP_PAYLOAD * iface.rx_packets) as f64),
                ),
            },
        }
    }

    /// What it prints once it is capturing.
    fn ready_marker(self) -> &'static str {
        match self {
            Meter::None => "",
            Meter::Flowmeter(_) => ": ingress ",
            // stderr; "Listening on" goes to its buffered stdout.
            Meter::Iftop => "interface: ",
            Meter::Nethogs => "Ethernet link detected",
            Meter::Bandwhich => "Refreshing:",
        }
    }
}

/// How long iftop may take to print its totals after its `-s` time.
const IFTOP_GRACE: Duration = Duration::from_secs(30);

/// A meter that runs during one measurement.
pub struct Running {
    meter: Meter,
    process: Option<Spawned>,
    log: PathBuf,
    started: Instant,
    secs: u32,
}

impl Running {
    /// Starts `meter` for a run of at most `secs` seconds and waits until it counts.
    pub fn start(
        meter: Meter,
        lab: &Lab,
        tools: &Tools,
        secs: u32,
        dir: &Path,
        name: &str,
    ) -> Result<Self> {
        let log = dir.join(format!("{name}.jsonl"));
        let mut running = Self {
            meter,
            process: None,
            log,
            started: Instant::now(),
            secs,
        };
        if meter == Meter::None {
            return Ok(running);
        }
        let _ = fs::remove_file(&running.log);
        let mut cmd = meter.command(lab, tools, secs, &running.log)?;
        let mut process = Spawned::start(&mut cmd, dir, name)?;
        process.wait_for_output(meter.ready_marker(), Duration::from_secs(15))?;
        // The others print before they open their capture: let them settle.
        if !matches!(meter, Meter::Flowmeter(_)) {
            procs::sleep(Duration::from_secs(1))?;
        }
        running.process = Some(process);
        Ok(running)
    }

    /// Fails if the meter has already exited: it would have missed part of the load.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(process) = &mut self.process
            && let Some(status) = process.exited()?
        {
            bail!(
                "`{}` exited ({status}) before the load ended: {}",
                process.line(),
                process.stderr().trim()
            );
        }
        Ok(())
    }

    pub fn usage(&self) -> Option<Result<Usage>> {
        self.process.as_ref().map(Spawned::usage)
    }

    /// Ends the meter after the load has stopped and reads what it reported. iftop prints
    /// its totals only when a packet arrives after its `-s` time, so it gets a ping every
    /// 200 ms until it has.
    pub fn finish(mut self, lab: &Lab, dir: &Path) -> Result<Reported> {
        let Some(mut process) = self.process.take() else {
            return Ok(Reported::default());
        };
        let line = process.line().to_owned();
        match self.meter {
            Meter::None => {}
            Meter::Flowmeter(_) => {
                if !process.stop(SIGINT, Duration::from_secs(10)) {
                    bail!("`{line}` did not stop within 10 s of SIGINT");
                }
            }
            Meter::Nethogs => {
                let left =
                    Duration::from_secs(self.secs.into()).saturating_sub(self.started.elapsed());
                if process.wait(left + Duration::from_secs(5))?.is_none() {
                    bail!("`{line}` did not exit after its -c count");
                }
            }
            Meter::Iftop => {
                let left =
                    Duration::from_secs(self.secs.into()).saturating_sub(self.started.elapsed());
                procs::sleep(left)?;
                // Under a flood it sorts every flow it has seen before it prints.
                let deadline = Instant::now() + IFTOP_GRACE;
                while process.exited()?.is_none() {
                    if Instant::now() > deadline {
                        bail!(
                            "`{line}` did not print its totals within {IFTOP_GRACE:?} of its \
                             -s time"
                        );
                    }
                    ping(lab, dir)?;
                    procs::sleep(Duration::from_millis(200))?;
                }
            }
            Meter::Bandwhich => {
                // One more refresh (every second) after the load, then it ignores SIGINT.
                procs::sleep(Duration::from_millis(1500))?;
                process.stop(SIGTERM, Duration::from_secs(3));
            }
        }
        let out = process.stdout();
        match self.meter {
            Meter::None => Ok(Reported::default()),
            Meter::Flowmeter(_) => reports::flowmeter_totals(&self.log),
            Meter::Iftop => reports::iftop_received(&out)
                .with_context(|| format!("parsing iftop's output:\n{out}")),
            Meter::Nethogs => reports::nethogs_received(&out)
                .with_context(|| format!("parsing nethogs' output:\n{out}")),
            Meter::Bandwhich => reports::bandwhich_received(&out).with_context(|| {
                format!("parsing bandwhich's output (last lines):\n{}", tail(&out))
            }),
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// One ping from the sender to the receiver (its reply may be lost: it does not matter).
fn ping(lab: &Lab, dir: &Path) -> Result<()> {
    let mut cmd = lab.sender.command("ping");
    cmd.args(["-c", "1", "-W", "1", "-q", RECEIVER_IP]);
    let mut ping = Spawned::start(&mut cmd, dir, "ping")?;
    ping.wait(Duration::from_secs(2))?;
    Ok(())
}
