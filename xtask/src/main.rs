//! `cargo xtask`: flowmeter's developer tasks (see `cargo xtask --help`).

mod bench;
mod cache;
mod cmd;
mod deb;
mod fuzz;
mod install;
mod setup;

use std::{
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::cache::Cache;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "flowmeter's developer tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: Debian packages, cargo-deb, nightly rust-src, bpf-linker
    ///
    /// bpf-linker is built against nightly's own libLLVM into $FLOWMETER_CACHE, else
    /// ${XDG_CACHE_HOME:-$HOME/.cache}/flowmeter, and rebuilt when nightly's libLLVM changes.
    Setup,
    /// Build the flowmeter binary (release unless --debug)
    Build {
        /// Build the debug profile instead of release
        #[arg(long)]
        debug: bool,
    },
    /// Build in release mode and run target/release/flowmeter with ARGS
    Run {
        /// Arguments for flowmeter, after `--`
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Full setup, then `cargo test --workspace [ARGS]` (the datapath tests need root)
    Test {
        /// Extra arguments for `cargo test`, after `--` (e.g. `-- --test datapath -- --nocapture`)
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Full setup, then every bench: criterion (reader, aggregate, enrich, flow_table_read,
    /// log_cycle, console), kernel, throughput, accuracy and CPU on a veth pair next to iftop,
    /// nethogs and bandwhich, a spoofed-source flood, and the whole program's cycle, CPU
    /// and memory from 1 to 1,000,000 flows
    ///
    /// Writes target/bench/results.json and the generated tables in docs/benchmarks.md
    /// (needs root: network namespaces of its own, eBPF). Takes 30-40 minutes once built.
    Bench {
        /// A short version of each part, in about 10 minutes once built: one run, shorter windows,
        /// criterion's --quick
        #[arg(long)]
        quick: bool,
        /// Only these parts, comma-separated: criterion (every criterion bench) or one of
        /// them by name (reader, aggregate, enrich, flow_table_read, log_cycle, console), kernel,
        /// throughput, flood, cycle. results.json then holds only these; the doc's other
        /// tables are left as they are
        #[arg(long, value_name = "PARTS", value_delimiter = ',')]
        only: Vec<bench::Part>,
    },
    /// Run the parser fuzzer in a release build: random and mutated frames through the three
    /// programs (BPF_PROG_TEST_RUN), each counted as a userspace parser says (needs root)
    ///
    /// A frame that disagrees is kept in tests/fixtures/frames/, which `cargo test` then runs.
    Fuzz(fuzz::FuzzArgs),
    /// Build in release mode, then install the binary, man page, default config, systemd
    /// unit and logrotate file (see docs/service.md)
    Install(install::InstallArgs),
    /// Build in release mode, then the Debian package (cargo-deb) holding what `install
    /// --prefix /usr` installs; `apt install ./flowmeter_*.deb` on each host (README)
    Deb(deb::DebArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The cause chain on one line, without anyhow's backtrace (RUST_BACKTRACE is often set).
    match Project::new().and_then(|project| project.dispatch(cli.task)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Project {
    root: PathBuf,
    cache: Cache,
    /// PATH with the cache's `bin/` (bpf-linker) in front.
    path: OsString,
}

impl Project {
    fn new() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask/ has no parent directory")?
            .to_owned();
        let cache = Cache::locate()?;
        let path = cache.path_env()?;
        Ok(Self { root, cache, path })
    }

    fn dispatch(&self, task: Task) -> Result<()> {
        match task {
            Task::Setup => self.setup(true),
            Task::Build { debug } => self.build(!debug),
            Task::Run { args } => {
                self.build(true)?;
                let bin = self.target_dir()?.join("release/flowmeter");
                let mut flowmeter = Command::new(&bin);
                flowmeter.args(&args);
                // Only returns if flowmeter could not be started; otherwise its exit status is ours.
                let err = flowmeter.exec();
                Err(err).with_context(|| format!("could not start `{}`", cmd::display(&flowmeter)))
            }
            Task::Test { args } => {
                self.setup(true)?;
                if !setup::is_root()? {
                    eprintln!(
                        "warning: not running as root: the datapath tests need root \
                         (BPF, network namespaces) and will fail"
                    );
                }
                cmd::run(self.cargo(["test", "--workspace"]).args(&args))
            }
            Task::Bench { quick, only } => bench::run(self, quick, &only),
            Task::Fuzz(args) => fuzz::run(self, &args),
            Task::Install(args) => install::run(self, &args),
            Task::Deb(args) => deb::run(self, &args),
        }
    }

    /// Everything, or (`debian == false`) only what building needs.
    fn setup(&self, debian: bool) -> Result<()> {
        if debian {
            setup::debian_packages()?;
            setup::cargo_deb(&self.cache)?;
        }
        setup::toolchain(&self.cache)
    }

    fn build(&self, release: bool) -> Result<()> {
        self.setup(false)?;
        let profile: &[&str] = if release { &["--release"] } else { &[] };
        cmd::run(
            self.cargo(["build"])
                .args(profile)
                .args(["--bin", "flowmeter"]),
        )
    }

    /// `cargo ARGS` in the workspace root, with bpf-linker's directory first on PATH.
    fn cargo<const N: usize>(&self, args: [&str; N]) -> Command {
        let mut cargo = Command::new("cargo");
        cargo
            .current_dir(&self.root)
            .env("PATH", &self.path)
            .args(args);
        cargo
    }

    /// Cargo's target directory, as `cargo metadata` reports it.
    fn target_dir(&self) -> Result<PathBuf> {
        let meta =
            cmd::output(&mut self.cargo(["metadata", "--format-version", "1", "--no-deps"]))?;
        json_string_field(&meta, "target_directory")
            .map(PathBuf::from)
            .context("`cargo metadata` reports no target_directory")
    }
}

/// The first string value of `"key":` in `json` (enough for cargo metadata's flat fields).
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let rest = &json[json.find(&format!("\"{key}\":\""))? + key.len() + 4..];
    let mut value = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => value.push(c), // \" \\ \/
            },
            c => value.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_string_field;

    #[test]
    fn reads_cargo_metadata_string_fields() {
        let json = r#"{"packages":[],"target_directory":"/a \"b\"\\c\u00e9","version":1}"#;
        let dir = json_string_field(json, "target_directory");
        assert_eq!(dir.as_deref(), Some("/a \"b\"\\cé"));
        assert_eq!(json_string_field(json, "workspace_root"), None);
    }
}
