//! The configuration file: `/etc/flowmeter/flowmeter.toml`, or the file named by
//! `--config PATH`. It holds any option of any command; options given on the command
//! line win over it.
//!
//! ```toml
//! [log]                      # options of `flowmeter log`, named as their long flags
//! iface = ["eth0", "eth1"]   # repeatable options take arrays
//! interval = 1
//! output = "/var/log/flowmeter/flowmeter.jsonl"
//! rotate-size = "100M"
//! home = "DE"
//!
//! [top]                      # options of the console
//! bytes = true               # switches are true or false
//!
//! [metrics]                  # --metrics and --metrics-top of top, log and bench
//! listen = "127.0.0.1:9465"
//! top = 10
//!
//! [verdict]                  # extends the verdict rules, as a --rules file does
//! mining_ports = [3334]
//! ```
//!
//! The file is turned into command-line options of its command's table, placed before
//! the user's own, so there is one parser, one set of checks and one `--help` for both.
//! An unknown table or key is an error that names the file and the key.

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
};

use clap::{CommandFactory, parser::ValueSource};
use toml::{Table, Value};

use crate::{cli::Cli, enrich::verdict::RulesConfig};

/// Read when it exists and no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/flowmeter/flowmeter.toml";

/// Tables that name a command; `flowmeter` alone is `top`.
const COMMANDS: [&str; 4] = ["top", "log", "audit", "bench"];

/// The `[metrics]` table: its keys, and the option each one is of every command that
/// serves metrics. A command's own table wins over it (`metrics = ...` under `[log]`).
const METRICS_KEYS: [(&str, &str); 2] = [("listen", "metrics"), ("top", "metrics-top")];
const METRICS_COMMANDS: [&str; 3] = ["top", "log", "bench"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What the file adds to a run.
#[derive(Debug, Default)]
pub struct Applied {
    /// The command line with the file's options put in.
    pub args: Vec<OsString>,
    /// The file's [verdict] table, for the rules.
    pub rules: Option<RulesConfig>,
    /// The file, if one was read.
    pub path: Option<PathBuf>,
}

/// Puts the options of the configuration file into `args` (the process's own command
/// line, program name first): the file named by `--config`, else [`DEFAULT_PATH`] if
/// it exists.
pub fn apply(args: Vec<OsString>) -> Result<Applied, ConfigError> {
    apply_with_default(args, Path::new(DEFAULT_PATH))
}

/// [`apply`], with another default path (for tests).
pub fn apply_with_default(args: Vec<OsString>, default: &Path) -> Result<Applied, ConfigError> {
    let path = match config_flag(&args) {
        Some(path) => path,
        None if default.exists() => default.to_owned(),
        None => {
            return Ok(Applied {
                args,
                ..Applied::default()
            });
        }
    };
    let text = fs::read_to_string(&path).map_err(|error| ConfigError::Read {
        path: path.clone(),
        error,
    })?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.clone(),
        message,
    };
    let mut table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    let rules = table
        .remove("verdict")
        .map(|verdict| verdict.try_into::<RulesConfig>())
        .transpose()
        .map_err(|e| invalid(format!("[verdict]: {e}")))?;
    let metrics = match table.remove("metrics") {
        Some(Value::Table(metrics)) => metrics,
        Some(_) => return Err(invalid("[metrics] must be a table".to_owned())),
        None => Table::new(),
    };
    if let Some(unknown) = metrics
        .keys()
        .find(|key| !METRICS_KEYS.iter().any(|(name, _)| name == key))
    {
        return Err(invalid(format!(
            "unknown key `{unknown}` in [metrics]; its keys are `listen` and `top`"
        )));
    }
    if let Some(unknown) = table.keys().find(|key| !COMMANDS.contains(&key.as_str())) {
        return Err(invalid(format!(
            "unknown table [{unknown}]; the tables are [top], [log], [audit], [bench], \
             [metrics] and [verdict]"
        )));
    }
    let (command, position) = command_of(&args);
    if command.is_empty() {
        return Ok(Applied {
            args,
            rules,
            path: Some(path),
        });
    }
    let mut options = match table.remove(command) {
        Some(Value::Table(options)) => options,
        Some(_) => return Err(invalid(format!("[{command}] must be a table"))),
        None => Table::new(),
    };
    if METRICS_COMMANDS.contains(&command) {
        for (key, option) in METRICS_KEYS {
            if let Some(value) = metrics.get(key) {
                options.entry(option).or_insert_with(|| value.clone());
            }
        }
    }
    let injected = options_as_args(command, &options, &args).map_err(invalid)?;
    let mut args = args;
    args.splice(position..position, injected);
    Ok(Applied {
        args,
        rules,
        path: Some(path),
    })
}

/// The value of `--config PATH` or `--config=PATH`, wherever it is.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut words = args.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--config" {
            return words.next().map(|path| PathBuf::from(path.as_ref()));
        }
        if let Some(path) = word.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The command the arguments run, and where its own options begin.
fn command_of(args: &[OsString]) -> (&'static str, usize) {
    // Options of the console given before a command are refused later, so the first
    // word that is not an option (or the value of --config) is the command.
    let mut words = args.iter().enumerate().skip(1);
    while let Some((index, word)) = words.next() {
        let word = word.to_string_lossy();
        if word == "--config" {
            words.next();
        } else if !word.starts_with('-') {
            return match COMMANDS.iter().find(|command| **command == word) {
                Some(command) => (command, index + 1),
                // `man`, `help` or a typo: nothing of the file applies.
                None => ("", index),
            };
        }
    }
    ("top", 1)
}

/// `--key value` words for each option in `options` that the command line does not set.
fn options_as_args(
    command: &str,
    options: &Table,
    user_args: &[OsString],
) -> Result<Vec<OsString>, String> {
    let mut cli = Cli::command();
    let definition = match command {
        "top" => &mut cli,
        other => cli
            .find_subcommand_mut(other)
            .expect("every configurable command is a subcommand"),
    };
    let user = definition.clone().try_get_matches_from(
        std::iter::once(OsString::from(command)).chain(own_args(command, user_args)),
    );
    let mut words = Vec::new();
    for (key, value) in options {
        let arg = definition
            .get_arguments()
            .find(|arg| arg.get_long() == Some(key.as_str()) && !arg.is_hide_set())
            .ok_or_else(|| format!("unknown option `{key}` in [{command}]"))?;
        let given = user
            .as_ref()
            .ok()
            .and_then(|m| m.value_source(arg.get_id().as_str()))
            == Some(ValueSource::CommandLine);
        if given {
            continue;
        }
        let named = || format!("`{key}` in [{command}]");
        let takes_value = arg.get_action().takes_values();
        let flag = format!("--{key}");
        match value {
            Value::Boolean(_) if takes_value => {
                return Err(format!("{} takes a value, not true or false", named()));
            }
            Value::Boolean(true) => words.push(flag.into()),
            Value::Boolean(false) => {}
            _ if !takes_value => {
                return Err(format!("{} is a switch: true or false", named()));
            }
            Value::Array(items) => {
                for item in items {
                    let text = checked(arg, scalar(key, item)?)
                        .map_err(|e| format!("{}: {e}", named()))?;
                    push_option(&mut words, &flag, text);
                }
            }
            other => {
                let text =
                    checked(arg, scalar(key, other)?).map_err(|e| format!("{}: {e}", named()))?;
                push_option(&mut words, &flag, text);
            }
        }
    }
    Ok(words)
}

/// `text` if the option's own parser takes it, else the parser's complaint: so a bad
/// value in the file is told with the file and the key, not as a command-line error.
/// (clap keeps its parsers' entry point to itself: the option is parsed alone.)
fn checked(arg: &clap::Arg, text: String) -> Result<String, String> {
    let alone = clap::Command::new("flowmeter")
        .no_binary_name(true)
        .arg(arg.clone().required(false).global(false));
    let long = arg.get_long().unwrap_or_default();
    match alone.try_get_matches_from([format!("--{long}={text}")]) {
        Ok(_) => Ok(text),
        Err(error) => {
            let error = error.to_string();
            let first = error.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").to_owned())
        }
    }
}

/// `--flag value`, or `--flag=value` for a value that would read as an option (`-5`).
fn push_option(words: &mut Vec<OsString>, flag: &str, value: String) {
    if value.starts_with('-') && value != "-" {
        words.push(format!("{flag}={value}").into());
    } else {
        words.push(flag.into());
        words.push(value.into());
    }
}

/// The user's arguments that belong to `command` (for `top`: all but the program),
/// without `--config` and its value.
fn own_args(command: &str, args: &[OsString]) -> Vec<OsString> {
    let position = if command == "top" {
        1
    } else {
        command_of(args).1
    };
    let mut own = Vec::new();
    let mut words = args[position.min(args.len())..].iter();
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if text == "--config" {
            words.next();
        } else if !text.starts_with("--config=") {
            own.push(word.clone());
        }
    }
    own
}

fn scalar(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Integer(number) => Ok(number.to_string()),
        Value::Float(number) => Ok(number.to_string()),
        other => Err(format!(
            "`{key}` takes a string or a number, not {}",
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    /// Applies `text` as the default configuration file.
    fn apply_text(text: &str, words: &[&str]) -> Result<Applied, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowmeter.toml");
        fs::write(&path, text).unwrap();
        apply_with_default(args(words), &path)
    }

    fn words(applied: &Applied) -> Vec<String> {
        applied
            .args
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn options_go_after_their_command_and_before_the_users() {
        let text = "[log]\niface = [\"eth0\", \"eth1\"]\ninterval = 2\n[top]\nbytes = true\n";
        let applied = apply_text(text, &["flowmeter", "log", "--duration", "5"]).unwrap();
        assert_eq!(
            words(&applied),
            [
                "flowmeter",
                "log",
                "--iface",
                "eth0",
                "--iface",
                "eth1",
                "--interval",
                "2",
                "--duration",
                "5"
            ]
        );
        let applied = apply_text(text, &["flowmeter"]).unwrap();
        assert_eq!(words(&applied), ["flowmeter", "--bytes"]);
    }

    #[test]
    fn the_flight_recorder_takes_its_keys_from_the_log_table() {
        let text = "[log]\nrecord-window = 60\nrecord-after = 30.5\nrecord-dir = \"/srv/rec\"\n\
                    record-keep = 3\nrecord-max-size = \"1Gi\"\n";
        let applied = apply_text(text, &["flowmeter", "log"]).unwrap();
        let cli = Cli::parse_checked(applied.args);
        let Some(crate::cli::Command::Log(args)) = cli.command else {
            panic!("log")
        };
        let record = args.record;
        assert_eq!(record.record_window, std::time::Duration::from_secs(60));
        assert_eq!(
            record.record_after,
            std::time::Duration::from_secs_f64(30.5)
        );
        assert_eq!(record.record_dir, Path::new("/srv/rec"));
        assert_eq!((record.record_keep, record.record_max_size), (3, 1 << 30));
    }

    #[test]
    fn the_control_socket_has_a_key_in_the_log_and_top_tables() {
        let text = "[log]\ncontrol-socket = \"/srv/log.sock\"\n\
                    [top]\ncontrol-socket = \"/srv/top.sock\"\nstandalone = true\n";
        let applied = apply_text(text, &["flowmeter", "log"]).unwrap();
        let Some(crate::cli::Command::Log(args)) = Cli::parse_checked(applied.args).command else {
            panic!("log")
        };
        assert_eq!(args.control_socket, Path::new("/srv/log.sock"));
        let applied = apply_text(text, &["flowmeter"]).unwrap();
        let top = Cli::parse_checked(applied.args).top;
        assert_eq!(top.control_socket, Path::new("/srv/top.sock"));
        assert!(top.standalone);
        assert_eq!(crate::cli::control_socket(Path::new("none")), None);
    }

    #[test]
    fn the_command_line_wins() {
        let text = "[log]\niface = [\"eth0\"]\ninterval = 2\n";
        let applied = apply_text(text, &["flowmeter", "log", "-i", "wg0", "--interval=5"]).unwrap();
        assert_eq!(
            words(&applied),
            ["flowmeter", "log", "-i", "wg0", "--interval=5"]
        );
    }

    #[test]
    fn the_metrics_table_sets_the_metrics_options_of_top_log_and_bench() {
        let text = "[metrics]\nlisten = \"127.0.0.1:9465\"\ntop = 5\n";
        for command in ["log", "bench"] {
            let applied = apply_text(text, &["flowmeter", command]).unwrap();
            let words = words(&applied);
            assert!(
                words
                    .windows(2)
                    .any(|w| w == ["--metrics", "127.0.0.1:9465"])
                    && words.windows(2).any(|w| w == ["--metrics-top", "5"]),
                "{command}: {words:?}"
            );
        }
        let console = words(&apply_text(text, &["flowmeter"]).unwrap());
        assert!(console.contains(&"--metrics".to_owned()), "{console:?}");
        // audit serves no metrics: the table does not reach it.
        let audit = words(&apply_text(text, &["flowmeter", "audit"]).unwrap());
        assert!(
            !audit.iter().any(|w| w.starts_with("--metrics")),
            "{audit:?}"
        );
    }

    #[test]
    fn a_commands_own_metrics_key_and_the_command_line_win_over_the_metrics_table() {
        let text = "[metrics]\nlisten = \"127.0.0.1:9465\"\n[log]\nmetrics = \"127.0.0.1:9500\"\n";
        let own = words(&apply_text(text, &["flowmeter", "log"]).unwrap());
        assert!(
            own.windows(2).any(|w| w == ["--metrics", "127.0.0.1:9500"]),
            "{own:?}"
        );
        assert!(!own.contains(&"127.0.0.1:9465".to_owned()), "{own:?}");
        let text = "[metrics]\nlisten = \"127.0.0.1:9465\"\n";
        let user =
            words(&apply_text(text, &["flowmeter", "log", "--metrics", "127.0.0.1:9600"]).unwrap());
        assert_eq!(
            user.iter().filter(|w| w.as_str() == "--metrics").count(),
            1,
            "{user:?}"
        );
    }

    #[test]
    fn an_unknown_or_bad_metrics_key_is_named() {
        let error = apply_text("[metrics]\nport = 9465\n", &["flowmeter", "log"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`port` in [metrics]"), "{error}");
        let error = apply_text("[metrics]\nlisten = \"nowhere\"\n", &["flowmeter", "log"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("metrics") && error.contains("nowhere"),
            "{error}"
        );
    }

    #[test]
    fn unknown_tables_and_keys_are_named() {
        let error = apply_text("[lgo]\n", &["flowmeter"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("[lgo]"), "{error}");
        let error = apply_text("[log]\nintervall = 1\n", &["flowmeter", "log"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("intervall") && error.contains("[log]"),
            "{error}"
        );
        let error = apply_text("[log]\niface = [{a = 1}]\n", &["flowmeter", "log"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("iface"), "{error}");
        let error = apply_text("[verdict]\nminig_ports = [1]\n", &["flowmeter"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("minig_ports"), "{error}");
    }

    #[test]
    fn bad_values_are_told_with_the_file_and_the_key() {
        let error = |text: &str| {
            apply_text(text, &["flowmeter", "log"])
                .unwrap_err()
                .to_string()
        };
        let negative = error("[log]\nflows = -5\n");
        assert!(
            negative.starts_with("invalid configuration ")
                && negative.contains("flowmeter.toml: `flows` in [log]: invalid value '-5'"),
            "{negative}"
        );
        let unit = error("[log]\nrotate-size = \"100 parsecs\"\n");
        assert!(
            unit.contains("`rotate-size` in [log]: invalid value"),
            "{unit}"
        );
        let switch = error("[log]\ninterval = true\n");
        assert!(
            switch.contains("`interval` in [log] takes a value, not true or false"),
            "{switch}"
        );
        let not_a_switch = apply_text("[top]\nbytes = 3\n", &["flowmeter"])
            .unwrap_err()
            .to_string();
        assert!(not_a_switch.contains("is a switch"), "{not_a_switch}");
    }

    #[test]
    fn a_value_that_reads_as_an_option_stays_a_value() {
        let applied = apply_text(
            "[log]\nalert-exec = \"-x\"\noutput = \"-\"\n",
            &["flowmeter", "log"],
        )
        .unwrap();
        let words = words(&applied);
        assert!(words.contains(&"--alert-exec=-x".to_owned()), "{words:?}");
        assert!(
            words.windows(2).any(|w| w == ["--output", "-"]),
            "{words:?}"
        );
    }

    #[test]
    fn the_verdict_table_extends_the_rules() {
        let applied = apply_text("[verdict]\nmining_ports = [3334]\n", &["flowmeter"]).unwrap();
        assert_eq!(applied.rules.unwrap().mining_ports, vec![3334]);
    }

    #[test]
    fn commands_without_options_get_none() {
        let text = "[top]\nbytes = true\n";
        for words in [["flowmeter", "man"], ["flowmeter", "help"]] {
            let applied = apply_text(text, &words).unwrap();
            assert_eq!(self::words(&applied), words);
        }
    }

    #[test]
    fn no_file_changes_nothing() {
        let missing = Path::new("/nonexistent/flowmeter.toml");
        let applied = apply_with_default(args(&["flowmeter", "log"]), missing).unwrap();
        assert_eq!(words(&applied), ["flowmeter", "log"]);
        assert!(applied.path.is_none());
    }

    #[test]
    fn an_explicit_file_must_exist_and_wins_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = dir.path().join("mine.toml");
        fs::write(
            &explicit,
            "[log]
interval = 3
",
        )
        .unwrap();
        let default = dir.path().join("default.toml");
        fs::write(
            &default,
            "[log]
interval = 9
",
        )
        .unwrap();
        let config = explicit.to_string_lossy().into_owned();
        let applied =
            apply_with_default(args(&["flowmeter", "log", "--config", &config]), &default).unwrap();
        assert_eq!(
            words(&applied),
            ["flowmeter", "log", "--interval", "3", "--config", &config]
        );
        let missing = dir
            .path()
            .join("missing.toml")
            .to_string_lossy()
            .into_owned();
        let error = apply_with_default(args(&["flowmeter", "--config", &missing]), &default);
        assert!(matches!(error, Err(ConfigError::Read { .. })));
    }
}
