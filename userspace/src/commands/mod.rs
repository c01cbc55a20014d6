//! One module per subcommand: each wires the stages together for its job. What they
//! share: `build` turns the command-line options into components, and `session` runs
//! the datapath (attach, read on a clock, detach, read once more).

pub mod audit;
pub mod bench;
pub mod build;
pub mod log;
pub mod man;
pub mod replay;
pub mod session;
pub mod top;
