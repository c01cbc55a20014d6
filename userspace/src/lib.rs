//! flowmeter: who is using the bandwidth, counted per flow in the kernel.
//!
//! Data flows one way, each interval:
//!
//! ```text
//! datapath ──> enrich ──┬──────────────> sinks     log: JSON lines, alerts, summaries
//! snapshots    facts    └──> flow ─────> console   top: rates per line, the screen
//!                            aggregator
//! ```
//!
//! `datapath` loads and attaches the eBPF programs and reads their maps into snapshots;
//! `enrich` adds each flow's process, country and verdict; `flow` aggregates flows into
//! iftop's rates per line; `sinks` write what `log` records, `console` is `top`'s user
//! interface. `commands` wires the stages together, one file per subcommand; `cli`,
//! `config` and `units` turn what the user typed into options. `audit` reads the host.
//! `shrink` gives the room of tables a flood grew back to the system.

pub mod audit;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod datapath;
pub mod enrich;
pub mod flow;
pub mod proc;
pub mod recorder;
pub mod shrink;
pub mod sinks;
pub mod units;
