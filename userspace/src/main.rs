use std::process::ExitCode;

use flowmeter::{
    cli::{Cli, Command},
    commands, config,
    datapath::Error as DatapathError,
};

/// Exit statuses: each means one thing.
const EXIT_FAILURE: u8 = 1;
/// Usage errors: clap's, and an unreadable or invalid configuration file.
const EXIT_USAGE: u8 = 2;
/// Lines of the verifier's log shown under `-v`.
const VERIFIER_LINES: usize = 30;

fn main() -> ExitCode {
    flowmeter::shrink::one_heap();
    let applied = match config::apply(std::env::args_os().collect()) {
        Ok(applied) => applied,
        Err(error) => {
            // Like a usage error: running again will not help (and systemd stops trying).
            eprintln!("flowmeter: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut cli = Cli::parse_checked(applied.args);
    if let Some(enrich) = cli.enrich_mut() {
        enrich.config_rules = applied.rules;
    }
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Warn)
        .filter_module(
            "flowmeter",
            if cli.verbose {
                log::LevelFilter::Debug
            } else {
                log::LevelFilter::Warn
            },
        )
        .parse_env("FLOWMETER_LOG")
        .init();

    let result = match &cli.command {
        Some(Command::Log(args)) => commands::log::run(args, cli.verbose),
        Some(Command::Audit(args)) => match commands::audit::run(args, cli.verbose) {
            Ok(status) => return ExitCode::from(status),
            Err(error) => Err(error),
        },
        Some(Command::Top(args)) => commands::top::run(args, cli.verbose),
        Some(Command::Bench(args)) => commands::bench::run(args, cli.verbose),
        Some(Command::Replay(args)) => commands::replay::run(args),
        Some(Command::Man) => commands::man::run(),
        None => commands::top::run(&cli.top, cli.verbose),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if cli.verbose
                && let Some(DatapathError::VerifierRejected { log, .. }) = error.downcast_ref()
            {
                let lines: Vec<&str> = log.lines().collect();
                for line in &lines[lines.len().saturating_sub(VERIFIER_LINES)..] {
                    eprintln!("verifier: {line}");
                }
            }
            eprintln!("flowmeter: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
