//! The configuration file, as the real binary reads it: its options apply, the command
//! line wins over them, and an unknown key or a bad value is a clear error naming it.
//! Every case fails before touching the kernel (unknown interfaces), so no root needed.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

const FLOWMETER: &str = env!("CARGO_BIN_EXE_flowmeter");

fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(format!("{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn flowmeter(args: &[&str]) -> Output {
    Command::new(FLOWMETER)
        .args(args)
        .output()
        .expect("run flowmeter")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_files_options_apply_and_the_command_line_wins() {
    let path = config_file(
        "precedence",
        "[log]\niface = [\"fmnocfg1\"]\nduration = 1\n",
    );
    let path = path.to_str().unwrap();

    let from_file = flowmeter(&["log", "--config", path]);
    assert_eq!(from_file.status.code(), Some(1), "{}", stderr(&from_file));
    assert!(
        stderr(&from_file).contains("fmnocfg1"),
        "{}",
        stderr(&from_file)
    );

    let from_flag = flowmeter(&["log", "--config", path, "--iface", "fmnocfg2"]);
    assert_eq!(from_flag.status.code(), Some(1), "{}", stderr(&from_flag));
    let text = stderr(&from_flag);
    assert!(
        text.contains("fmnocfg2") && !text.contains("fmnocfg1"),
        "{text}"
    );
}

#[test]
fn an_unknown_key_is_a_usage_error_naming_its_table_and_file() {
    let path = config_file("unknown", "[log]\nintervall = 2\n");
    let output = flowmeter(&["log", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("intervall") && text.contains("[log]"),
        "{text}"
    );
    assert!(text.contains(path.to_str().unwrap()), "{text}");
}

#[test]
fn a_bad_value_is_a_usage_error_naming_the_option() {
    let path = config_file(
        "bad-value",
        "[log]\ninterval = \"soon\"\niface = [\"fmnocfg3\"]\n",
    );
    let output = flowmeter(&["log", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("--interval") && text.contains("soon"),
        "{text}"
    );
    // Told as the file's, with its key: one line.
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("`interval` in [log]"), "{text}");
}

/// A negative number once read as an option of its own ("unexpected argument '-5'").
#[test]
fn a_negative_number_is_a_bad_value_of_its_key_not_an_argument() {
    let path = config_file("negative", "[log]\nflows = -5\niface = [\"fmnocfg4\"]\n");
    let output = flowmeter(&["log", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!(
            "flowmeter: invalid configuration {}: `flows` in [log]: invalid value '-5'",
            path.display()
        )),
        "{text}"
    );
    assert!(!text.contains("unexpected argument"), "{text}");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let output = flowmeter(&["log", "--config", "/nonexistent/flowmeter.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("/nonexistent/flowmeter.toml"), "{text}");
}

/// An allow-list entry of `audit` that is none of exe:, memfd: or unit: is told with the
/// file and its key, in one line, before anything is audited; so is one on the command
/// line.
#[test]
fn a_bad_allow_entry_is_a_usage_error_naming_the_file_and_key() {
    let path = config_file(
        "bad-allow",
        "[audit]\nallow = [\"memfd:runc\", \"path:/usr/bin/runc\"]\n",
    );
    let output = flowmeter(&["audit", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "no report: {output:?}");
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!(
            "flowmeter: invalid configuration {}: `allow` in [audit]: invalid value \
             'path:/usr/bin/runc'",
            path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("expected exe:PATH, memfd:NAME or unit:UNIT"),
        "{text}"
    );

    let output = flowmeter(&["audit", "--allow", "exe:runc"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("exe takes an absolute path"),
        "says what is expected: {text}"
    );
}
