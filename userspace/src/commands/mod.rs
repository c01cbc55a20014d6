//! One module per subcommand: each wires the stages together for its job.

pub mod audit;
pub mod bench;
pub mod log;
pub mod top;
