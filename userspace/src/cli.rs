//! Command-line definition: one place feeds parsing, `--help` and the man page
//! (`commands/man.rs`). Values are parsed here, in the grammar of `crate::units`; the
//! components they ask for are built in `commands/build.rs`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{
    Args, CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind, parser::ValueSource,
};

use crate::{
    audit::AllowEntry,
    datapath::HookChoice,
    enrich::{geo::HomeCountries, verdict::RulesConfig},
    sinks::{
        alerts::{self, RateLimit},
        output,
    },
    units,
};

#[derive(Debug, Parser)]
#[command(
    name = "flowmeter",
    version,
    about = "Who is using the bandwidth: per-flow traffic counted in the kernel (XDP/TC)",
    long_about = "flowmeter counts every packet in and out of the chosen interfaces, per flow, \
                  in the kernel (XDP or TC ingress, TC egress), and reads the counts once per \
                  interval. It needs root (or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN) and a \
                  kernel with BTF.\n\n\
                  Quantities: in byte counts K, M, G, T are powers of 1000 and Ki, Mi, Gi, Ti \
                  powers of 1024 (100M is 100,000,000 bytes, 100Mi 104,857,600); rates are \
                  bits per second, with the same prefixes; durations are seconds, decimals \
                  allowed.\n\n\
                  Exit status: 0 done, 1 runtime error (one line on stderr says what and what \
                  to do), 2 usage error.",
    after_help = "Examples:\n  flowmeter --iface eth0              the console on eth0\n  \
                  flowmeter log --iface eth0 --output /var/log/flowmeter.jsonl\n  \
                  flowmeter audit --watch 10\n\n\
                  Countries: IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0, embedded."
)]
pub struct Cli {
    /// With no command, flowmeter runs `top` with these options.
    #[command(flatten)]
    pub top: TopArgs,

    /// Read options from this TOML file (default /etc/flowmeter/flowmeter.toml, if it
    /// exists); options on the command line win over it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Say more: debug messages (one per new flow from the kernel programs), and the
    /// verifier's log if it rejects a program.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The enricher options of the command to run, if it has them.
    pub fn enrich_mut(&mut self) -> Option<&mut EnrichArgs> {
        match &mut self.command {
            None => Some(&mut self.top.enrich),
            Some(Command::Top(args)) => Some(&mut args.enrich),
            Some(Command::Log(args)) => Some(&mut args.enrich),
            Some(Command::Audit(args)) => Some(&mut args.enrich),
            Some(Command::Bench(_) | Command::Replay(_) | Command::Man) => None,
        }
    }

    /// Parses the command line (exits with status 2 on a usage error). Options of the
    /// console given before a command are refused rather than silently ignored.
    pub fn parse_checked(args: Vec<std::ffi::OsString>) -> Self {
        let matches = Self::command().get_matches_from(args);
        let cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let Some((name, _)) = matches.subcommand() {
            let misplaced = matches.ids().find(|id| {
                !["verbose", "config"].contains(&id.as_str())
                    && matches.value_source(id.as_str()) == Some(ValueSource::CommandLine)
            });
            if let Some(id) = misplaced {
                let mut command = Self::command();
                let flag = command
                    .get_arguments()
                    .find(|arg| arg.get_id() == id)
                    .and_then(|arg| arg.get_long())
                    .unwrap_or(id.as_str())
                    .to_owned();
                command
                    .error(
                        ErrorKind::ArgumentConflict,
                        format!("--{flag} goes after the command: flowmeter {name} --{flag} ..."),
                    )
                    .exit();
            }
        }
        cli
    }
}

// Parsed once per run: the variants' sizes cost nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The console (the default): remote hosts by bandwidth, with rates over 2/10/40 s,
    /// cumulative and peak, the local process and user, the country and a verdict.
    Top(TopArgs),
    /// Write per-interval JSON lines: one "flow" object per active flow, one "totals"
    /// object per interface.
    Log(LogArgs),
    /// Check this host (or a mounted disk) for signs of compromise and weak hardening:
    /// startup scripts, cron, preloaded libraries, huge pages, sshd, accounts, exposed
    /// database ports. Exit status 3 when anything of medium severity or worse is found.
    Audit(AuditArgs),
    /// Measure an interface while you run your own load: per-second packets/s and
    /// bits/s with p50/p95/p99/max, the exact totals, and what metering cost in CPU.
    Bench(BenchArgs),
    /// Show a flight recording of `log` (written under --record-dir when an alert
    /// started) on the console: the same screens and keys as `top`, a second at a time,
    /// with [ ] to step one second, { } one minute, and a to jump to the alert's start.
    Replay(ReplayArgs),
    /// Print the manual page (roff) on standard output: `flowmeter man | man -l -`.
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording: a file under `log`'s --record-dir (by default
    /// /var/lib/flowmeter/recordings/), named by the alert that started it.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Show bytes per second rather than bits per second (B switches).
    #[arg(short = 'B', long)]
    pub bytes: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub datapath: DatapathArgs,

    /// How long to measure, in seconds, decimals allowed (SIGINT stops it early, with the
    /// report).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = units::parse_seconds)]
    pub duration: Duration,

    /// Print one JSON object instead of the per-second lines and the table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub datapath: DatapathArgs,

    #[command(flatten)]
    pub enrich: EnrichArgs,

    /// Show bytes per second instead of bits per second (like iftop -B).
    #[arg(short = 'B', long = "bytes")]
    pub bytes: bool,

    /// Resolve remote addresses to host names (reverse DNS, in the background: the
    /// screen never waits for it).
    #[arg(long)]
    pub resolve: bool,

    /// Seconds between refreshes (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = units::parse_seconds)]
    pub interval: Duration,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Where a running `flowmeter log` serves its view (its --control-socket; `none`:
    /// never ask). If it answers, top attaches no programs of its own and shows the
    /// service's live view and the last --record-window (15 min) before it: step back
    /// with [ ] { }, and L returns to the newest second. With no service, top meters on
    /// its own.
    #[arg(long, value_name = "PATH", default_value = CONTROL_SOCKET,
          env = "FLOWMETER_CONTROL_SOCKET")]
    pub control_socket: PathBuf,

    /// Meter on its own, as if no `flowmeter log` ran (attaches a second set of programs
    /// beside the service's).
    #[arg(long)]
    pub standalone: bool,
}

/// Where `log` serves its view and `top` asks for it (`--control-socket`).
pub const CONTROL_SOCKET: &str = "/run/flowmeter/log.sock";

/// `--control-socket`'s path, or `None` for `none`.
pub fn control_socket(path: &Path) -> Option<&Path> {
    (path != Path::new("none")).then_some(path)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Read this filesystem tree instead of / (a mounted disk, or a test fixture);
    /// checks of the live system (processes, sockets) are skipped then.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,

    /// Meter traffic for this many seconds (decimals allowed) and put the findings whose
    /// process is talking to the network now at the top, with its remote hosts and
    /// countries.
    #[arg(long, value_name = "SECS", value_parser = units::parse_seconds)]
    pub watch: Option<Duration>,

    /// A process known to do by design what a process check flags (repeatable; in the
    /// configuration file `allow = [...]` under [audit]): exe:PATH (its executable),
    /// memfd:NAME (a program run from memory, e.g. memfd:runc_cloned*) or unit:UNIT (its
    /// systemd unit, e.g. unit:containerd.service); a trailing `*` matches any rest.
    /// Every process-* finding about it is reported as allowed, naming the entry, and
    /// counts toward no severity or exit status.
    #[arg(long = "allow", value_name = "KIND:VALUE")]
    pub allow: Vec<AllowEntry>,

    #[command(flatten)]
    pub datapath: DatapathArgs,

    #[command(flatten)]
    pub enrich: EnrichArgs,
}

/// Options every metering command shares.
#[derive(Debug, Args)]
pub struct DatapathArgs {
    /// Interface to meter (repeat for several); default: every up, non-loopback interface.
    #[arg(short, long = "iface", value_name = "IF")]
    pub ifaces: Vec<String>,

    /// Ingress hook: auto takes native XDP on physical NICs that run it well and TC
    /// everywhere else (veth, virtio); generic XDP only when asked for.
    #[arg(long, value_enum, default_value_t = HookChoice::Auto)]
    pub hook: HookChoice,

    /// Flows the kernel table holds, for IPv4 and for IPv6 each; traffic beyond it still
    /// counts in the totals, as "unattributed".
    #[arg(long, value_name = "N", default_value_t = flowmeter_common::DEFAULT_FLOW_CAPACITY,
          value_parser = clap::value_parser!(u32).range(16..=16_777_216))]
    pub flows: u32,

    /// New flows per second per CPU that received packets may create; beyond it (a
    /// flood) their traffic is counted per source prefix (/24, /64) and local port
    /// instead, still exactly in the totals, and the table keeps room for the host's own
    /// flows, which are always created. Default: --flows / 32 (2048 for 65536); 0 turns
    /// the budget off.
    #[arg(long, value_name = "N")]
    pub new_flow_budget: Option<u32>,
}

/// Options of the enrichers: where a remote is, and how flows are judged.
#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// A MaxMind GeoLite2/GeoIP2 Country or City database (or any .mmdb with
    /// `country_code`) instead of the embedded DB-IP Lite country database. Its records
    /// win for private ranges too: a site database that maps 10.0.0.0/8 to a country
    /// is used there, and "local" is only what it has no record for.
    #[arg(long, value_name = "PATH")]
    pub geoip: Option<PathBuf>,

    /// The host's own countries (ISO codes, e.g. DE or US,CA): traffic to or from any
    /// other country is marked foreign, a risk mark beside the verdict.
    #[arg(long, value_name = "CC[,CC...]")]
    pub home: Option<HomeCountries>,

    /// A TOML file whose [verdict] section extends the built-in rules: more cloud
    /// agents, mining-pool ports, known huge-page users.
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,

    /// The configuration file's [verdict] table, which extends the rules too (main.rs
    /// puts it here from `crate::config`).
    #[arg(skip)]
    pub config_rules: Option<RulesConfig>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub datapath: DatapathArgs,

    #[command(flatten)]
    pub enrich: EnrichArgs,

    /// Seconds between reads of the counters (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = units::parse_seconds)]
    pub interval: Duration,

    /// Stop after this many seconds, decimals allowed (default: run until SIGINT or
    /// SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = units::parse_seconds)]
    pub duration: Option<Duration>,

    /// Write to this file (appended to), or `-` for standard output. SIGHUP reopens
    /// the file (for logrotate's rename).
    #[arg(short, long, value_name = "PATH|-", default_value = "-")]
    pub output: String,

    /// Rotate the file when the next interval would take it past this many bytes (e.g.
    /// 100M, 1Gi; K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024):
    /// flowmeter.jsonl becomes flowmeter.jsonl.1, and so on.
    #[arg(long, value_name = "BYTES", value_parser = units::parse_positive_bytes)]
    pub rotate_size: Option<u64>,

    /// Rotated files to keep besides the live one.
    #[arg(long, value_name = "N", default_value_t = output::DEFAULT_KEEP)]
    pub rotate_keep: usize,

    /// Seconds between `summary` records (rate percentiles per interface, and
    /// flowmeter's own cycle time), decimals allowed; one more is written on stop.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = units::parse_seconds)]
    pub summary: Duration,

    /// Alert when one remote host outside the --home countries moves more than this
    /// many bytes in an interval (e.g. 1MiB, 500K; K, M, G, T are powers of 1000; Ki,
    /// Mi, Gi, Ti of 1024). Needs --home.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = units::parse_bytes)]
    pub alert_foreign: u64,

    /// Alert when an interface's receive or send rate goes over this: bits per second
    /// (e.g. 800M, 1G; K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024; bytes are
    /// not accepted), or a percentage of the link speed (e.g. 90%).
    #[arg(long, value_name = "BPS|PCT%")]
    pub alert_rate: Option<RateLimit>,

    /// While an alert's condition lasts, remind at most this often (seconds, decimals
    /// allowed).
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = units::parse_seconds)]
    pub alert_repeat: Duration,

    /// How long (seconds, decimals allowed) an alert's condition must be absent before
    /// its end alert: keeps a process that sends in bursts one episode.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = units::parse_seconds)]
    pub alert_clear: Duration,

    /// Run this shell command for every alert, with the alert as JSON on its standard
    /// input (at most 10 s each; metering never waits for it).
    #[arg(long, value_name = "CMD")]
    pub alert_exec: Option<String>,

    /// Alert on a flood when more than N new flows per second arrive: inbound flows
    /// of one or two packets, and packets that found the flow table full. 0 turns it
    /// off. While it lasts, the per-flow alerts of the flows it carries fold into it.
    #[arg(long, value_name = "N", default_value_t = alerts::DEFAULT_FLOOD_FLOWS_PER_S)]
    pub alert_flood: u64,

    /// At most N foreign and N suspicious alerts start in one interval, the largest
    /// first; the last of them says how many more were folded.
    #[arg(long, value_name = "N", default_value_t = alerts::DEFAULT_MAX_STARTS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub alert_max_starts: u32,

    /// How `flow` lines are written: `timeouts` (schema v2) writes one record per flow
    /// when it ends (idle, or a TCP FIN/RST) and at most every --active-timeout while it
    /// lasts, with the counts since its previous record, and a `top` record every
    /// interval; `interval` (schema v1) writes one line per flow per interval it moved
    /// in, as flowmeter 0.1 did (about 30 to 60 times more bytes on a busy host).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = FlowRecordMode::Timeouts)]
    pub flow_records: FlowRecordMode,

    /// With `--flow-records timeouts`: a flow that has not moved for this many seconds
    /// (decimals allowed) has ended, and gets its final record.
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = units::parse_seconds)]
    pub idle_timeout: Duration,

    /// With `--flow-records timeouts`: a flow that lasts gets a record about this often
    /// (seconds, decimals allowed; to the nearest interval), each with what it moved since
    /// the previous one.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = units::parse_seconds)]
    pub active_timeout: Duration,

    /// With `--flow-records timeouts`: every interval's `top` record names this many
    /// remote hosts and processes that moved the most bytes (0: no `top` records).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// `--ipfix` and its options (boxed: most runs have none).
    #[command(flatten)]
    pub ipfix: Box<IpfixArgs>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub record: RecordArgs,

    /// With the flight recorder on: serve the live view (each second as recorded, and
    /// the last --record-window) on this Unix socket for `flowmeter top` on the same
    /// host (`none`: serve nothing). Its directory is made 0700 if missing, the socket
    /// is 0600: only root reads it. A socket left by a killed log is replaced; if
    /// another log answers on it, this one warns and serves none.
    #[arg(long, value_name = "PATH", default_value = CONTROL_SOCKET,
          env = "FLOWMETER_CONTROL_SOCKET")]
    pub control_socket: PathBuf,
}

/// The flight recorder of `log` (`crate::recorder`).
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The flight recorder keeps this many seconds of the past in memory (decimals
    /// allowed; 0 turns it off): every interval, each interface's exact totals and the
    /// top remote hosts and processes with their verdicts. When an alert starts, they
    /// are written to a file under --record-dir, which the alert names (`recording`);
    /// `flowmeter replay FILE` shows it on the console.
    #[arg(long, value_name = "SECS", default_value = "900", value_parser = units::parse_seconds)]
    pub record_window: Duration,

    /// Seconds (decimals allowed) still written after the last alert started; an alert
    /// that starts meanwhile extends the same recording.
    #[arg(long, value_name = "SECS", default_value = "180", value_parser = units::parse_seconds)]
    pub record_after: Duration,

    /// Where recordings are written (made, mode 0700, with the first one if missing;
    /// files are 0600).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/flowmeter/recordings"
    )]
    pub record_dir: PathBuf,

    /// Recordings kept: the oldest is removed first.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub record_keep: u32,

    /// All recordings together take at most this many bytes (e.g. 200Mi; K, M, G, T are
    /// powers of 1000; Ki, Mi, Gi, Ti of 1024): the oldest are removed first, and a
    /// recording that would grow past it stops there.
    #[arg(long, value_name = "BYTES", default_value = "200Mi",
          value_parser = units::parse_positive_bytes)]
    pub record_max_size: u64,
}

/// The Prometheus endpoint of `log`, `top` and `bench` (`sinks::metrics`).
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9150, or
    /// [::]:9150 for every address): exact bytes and packets per interface, the flow
    /// table, alerts, traffic by country, verdict and process, flowmeter's own cycle
    /// time, CPU and memory. Off unless given; see docs/metrics.md.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// With --metrics: traffic by process carries this many process names (the first
    /// ones to move the most bytes), the rest as `other`, so the series stay bounded.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub metrics_top: usize,
}

/// `log --ipfix`: flow records to IPFIX collectors.
#[derive(Debug, Args)]
pub struct IpfixArgs {
    /// Also send every flow record as IPFIX (RFC 7011) over UDP to the flow collector
    /// at HOST:PORT (e.g. nfacctd; an IPv6 address in brackets); repeat for a second
    /// collector. Needs --flow-records timeouts.
    #[arg(long = "ipfix", value_name = "HOST:PORT", value_parser = parse_collector)]
    pub collectors: Vec<String>,

    /// With --ipfix: seconds between the templates sent again (decimals allowed; they are
    /// also sent at start), so a restarted collector decodes the records again.
    #[arg(long = "ipfix-template-refresh", value_name = "SECS", default_value = "30",
          value_parser = units::parse_seconds)]
    pub template_refresh: Duration,

    /// With --ipfix: the observation domain id in every message.
    #[arg(long = "ipfix-domain", value_name = "ID", default_value_t = 1)]
    pub domain: u32,
}

/// `--ipfix`: `HOST:PORT`, a port from 1 to 65535 (the host is resolved when `log`
/// starts).
fn parse_collector(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || (host.contains(':') && !text.starts_with('[')) {
        return Err(format!(
            "{text:?} is not HOST:PORT (write an IPv6 address in brackets: [::1]:4739)"
        ));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(text.to_owned()),
        _ => Err(format!("{port:?} is not a port (1 to 65535)")),
    }
}

/// `--flow-records`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowRecordMode {
    /// Schema v2: a record when a flow ends and at most every --active-timeout.
    Timeouts,
    /// Schema v1: one line per flow per interval it moved in.
    Interval,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn ipfix_collectors_are_host_and_port() {
        for good in ["127.0.0.1:4739", "collector.example:2055", "[::1]:4739"] {
            assert_eq!(parse_collector(good).as_deref(), Ok(good));
        }
        for bad in [
            "127.0.0.1",
            ":4739",
            "::1:4739",
            "host:0",
            "host:99999",
            "[::1]",
        ] {
            assert!(parse_collector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every option taking a quantity says in its help which grammar it is, and the
    /// description (the man page's too) says it once for all.
    #[test]
    fn every_quantity_says_its_grammar() {
        let cli = Cli::command();
        let about = cli.get_long_about().unwrap().to_string();
        assert!(about.contains("powers of 1000") && about.contains("powers of 1024"));
        let mut checked = 0;
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                if !arg.get_action().takes_values() {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let name = arg.get_id();
                let says = match arg.get_value_names().and_then(|names| names.first()) {
                    Some(value) if value == "SECS" => "decimals allowed",
                    Some(value) if value == "BYTES" => {
                        "K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024"
                    }
                    Some(value) if value.starts_with("BPS") => "bits per second",
                    _ => continue,
                };
                assert!(
                    help.contains(says),
                    "--{name}: {help:?} does not say {says:?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "{checked} quantities");
    }
}
