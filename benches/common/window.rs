//! The flight recorder of the benches: a 15-minute window at `--interval 1`, no alert.

use std::time::Duration;

use flowmeter::recorder::{Options, Recorder};

pub const WINDOW: Duration = Duration::from_secs(900);

pub fn recorder(dir: &std::path::Path) -> Recorder {
    Recorder::new(Options {
        window: WINDOW,
        after: Duration::from_secs(180),
        dir: dir.to_path_buf(),
        keep: 10,
        max_size: 200 << 20,
        interval: Duration::from_secs(1),
        interfaces: vec!["eth0".into()],
        top: 10,
    })
    .expect("the writer thread")
    .expect("a window")
}
