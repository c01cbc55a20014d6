//! Command-line definition: one place feeds parsing, `--help` and (later) the man page.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use std::path::PathBuf;

use crate::{
    datapath::{HookChoice, Options},
    enrich::{
        Enricher,
        geo::{GeoDb, HomeCountries},
        verdict::Rules,
    },
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
                  Exit status: 0 done, 1 runtime error (one line on stderr says what and what \
                  to do), 2 usage error.",
    after_help = "Example: flowmeter log --iface eth0 --interval 1 --output /var/log/flowmeter.jsonl"
)]
pub struct Cli {
    /// Say more: debug messages (one per new flow from the kernel programs), and the
    /// verifier's log if it rejects a program.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write per-interval JSON lines: one "flow" object per active flow, one "totals"
    /// object per interface.
    Log(LogArgs),
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

    /// Flows the kernel table holds; traffic beyond it still counts in the totals,
    /// as "unattributed".
    #[arg(long, value_name = "N", default_value_t = flowmeter_common::DEFAULT_FLOW_CAPACITY,
          value_parser = clap::value_parser!(u32).range(16..=16_777_216))]
    pub flows: u32,
}

impl DatapathArgs {
    /// The datapath options; `verbose` also lets the kernel programs log.
    pub fn options(&self, verbose: bool) -> Options {
        Options {
            hook: self.hook,
            flow_capacity: self.flows,
            kernel_log: verbose,
        }
    }
}

/// Options of the enrichers: where a remote is, and how flows are judged.
#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// A MaxMind GeoLite2/GeoIP2 Country or City database (or any .mmdb with
    /// `country_code`) instead of the embedded DB-IP Lite country database.
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
}

impl EnrichArgs {
    /// The enrichers these options ask for; fails on an unreadable database or rules file.
    pub fn enricher(&self) -> anyhow::Result<Enricher> {
        let geo = GeoDb::load(self.geoip.as_deref())?;
        let rules = match &self.rules {
            Some(path) => Rules::load(path)?,
            None => Rules::default(),
        };
        Ok(Enricher::new(
            geo,
            self.home.clone().unwrap_or_default(),
            rules,
        ))
    }
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub datapath: DatapathArgs,

    #[command(flatten)]
    pub enrich: EnrichArgs,

    /// Seconds between reads of the counters (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_seconds)]
    pub interval: Duration,

    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Write to this file (appended to), or `-` for standard output.
    #[arg(short, long, value_name = "PATH|-", default_value = "-")]
    pub output: String,
}

/// A positive number of seconds, at least a millisecond.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.001 {
        return Err(format!("'{text}': must be at least 0.001 seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_accept_decimals_and_refuse_nonsense() {
        assert_eq!(parse_seconds("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }
}
