use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use flowmeter::{
    cli::{Cli, Command},
    commands,
    datapath::Error as DatapathError,
};

/// Exit statuses: each means one thing.
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// Lines of the verifier's log shown under `-v`.
const VERIFIER_LINES: usize = 30;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        None => {
            let _ = Cli::command().print_help();
            eprintln!(
                "\nflowmeter: name a command; the console (`flowmeter top`) is not built yet"
            );
            return ExitCode::from(EXIT_USAGE);
        }
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
