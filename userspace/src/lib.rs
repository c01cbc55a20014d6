//! flowmeter: who is using the bandwidth, counted per flow in the kernel.
//!
//! Data flows one way: `datapath` (load, attach, read maps) → `sinks` (log), wired
//! together per subcommand in `commands`.

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod datapath;
pub mod enrich;
pub mod flow;
pub mod proc;
pub mod sinks;
pub mod units;
