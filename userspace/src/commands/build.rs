//! From validated command-line options (`crate::cli`) to the components they ask for:
//! the datapath options, the verdict rules, the enricher, the log's destination and the
//! alert configuration. Every command builds through here, so a component is put
//! together one way wherever it is used; the commands then wire the components up.

use std::path::Path;

use anyhow::{Result, anyhow};

use crate::{
    cli::{DatapathArgs, EnrichArgs, LogArgs, MetricsArgs},
    datapath::{Interface, Options, default_new_flow_budget, interfaces},
    enrich::{
        Enricher,
        geo::{GeoDb, HomeCountries},
        verdict::Rules,
    },
    sinks::{
        alerts::AlertConfig,
        ipfix::IpfixOptions,
        metrics::{self, Metrics},
        output::{Destination, Rotation},
    },
};

/// The datapath options; `verbose` also lets the kernel programs log.
pub fn datapath_options(args: &DatapathArgs, verbose: bool) -> Options {
    Options {
        hook: args.hook,
        flow_capacity: args.flows,
        new_flow_budget: args
            .new_flow_budget
            .unwrap_or(default_new_flow_budget(args.flows)),
        kernel_log: verbose,
        ..Options::default()
    }
}

/// The verdict rules: the built-in set, extended by the `--rules` file and then by the
/// configuration file's `[verdict]` table. Fails on an unreadable or invalid file.
pub fn rules(args: &EnrichArgs) -> Result<Rules> {
    let mut rules = match &args.rules {
        Some(path) => Rules::load(path)?,
        None => Rules::default(),
    };
    if let Some(config) = &args.config_rules {
        rules
            .extend(config.clone())
            .map_err(|e| anyhow!("invalid [verdict] in the configuration: {e}"))?;
    }
    Ok(rules)
}

/// The enrichers the options ask for; fails on an unreadable database or rules file.
pub fn enricher(args: &EnrichArgs) -> Result<Enricher> {
    let geo = GeoDb::load(args.geoip.as_deref())?;
    Ok(Enricher::new(geo, home(args), rules(args)?))
}

/// Where `log` writes, and when it rotates the file.
pub fn log_destination(args: &LogArgs) -> Destination {
    let rotate = args.rotate_size.map(|max_bytes| Rotation {
        max_bytes,
        keep: args.rotate_keep,
    });
    Destination::parse(&args.output, rotate)
}

/// When `log` raises an alert, and how often it repeats and ends one.
pub fn alert_config(args: &LogArgs) -> AlertConfig {
    AlertConfig {
        home: home(&args.enrich),
        foreign_bytes: args.alert_foreign,
        rate: args.alert_rate,
        repeat: args.alert_repeat,
        clear: args.alert_clear,
        max_starts: args.alert_max_starts as usize,
        flood_flows_per_s: args.alert_flood,
    }
}

/// The Prometheus endpoint of `--metrics`, listening already (so a taken port fails
/// before anything is attached); `None` without the option. `alerts`: the command
/// raises alerts, whose series then start at 0.
pub fn metrics(
    args: &MetricsArgs,
    metered: &[Interface],
    flow_capacity: u32,
    alerts: bool,
) -> Result<Option<Metrics>> {
    let Some(address) = args.metrics else {
        return Ok(None);
    };
    let sysfs = Path::new(interfaces::SYSFS_ROOT);
    let setup = metrics::Setup {
        top_processes: args.metrics_top,
        flow_capacity,
        interfaces: metered
            .iter()
            .map(|i| (i.name.clone(), interfaces::link_speed_bps(sysfs, &i.name)))
            .collect(),
        alerts,
    };
    Metrics::serve(address, &setup).map(Some)
}

/// Where and how `log --ipfix` exports flow records; `None` without `--ipfix`.
pub fn ipfix_options(args: &LogArgs) -> Option<IpfixOptions> {
    let ipfix = &args.ipfix;
    (!ipfix.collectors.is_empty()).then(|| IpfixOptions {
        collectors: ipfix.collectors.clone(),
        template_refresh: ipfix.template_refresh,
        observation_domain: ipfix.domain,
    })
}

/// `--home`; none declared means nothing is foreign.
fn home(args: &EnrichArgs) -> HomeCountries {
    args.home.clone().unwrap_or_default()
}
