//! The service's view read back (`top` beside a running `flowmeter log`): [`connect`]
//! reads the header and the ring's seconds the service sends at once ([`super::serve`]),
//! and a thread of its own passes on each new second as it arrives.

use std::{
    io::{BufRead, BufReader, ErrorKind},
    os::unix::net::UnixStream,
    path::Path,
    thread,
    time::Duration,
};

use crossbeam_channel::{Receiver, bounded};

use super::{
    file::{self, Entry, Recording},
    second::Second,
};

/// How long the header and the ring may take: they are sent at once, on this host.
const FIRST_LINES: Duration = Duration::from_secs(5);
/// New seconds waiting for the screen.
const SLACK: usize = 64;

/// The service's seconds: those it held when asked, then the new ones.
pub struct Live {
    /// The header (with the service's pid) and the ring's seconds; never empty.
    pub recording: Recording,
    pub pid: u32,
    /// Each new second; disconnected when the service stops serving.
    pub seconds: Receiver<Second>,
}

/// `None` when nothing listens on `path` (no service runs: `top` meters on its own);
/// an error (one line) when something does but gives no view.
pub fn connect(path: &Path) -> Result<Option<Live>, String> {
    let stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) => {
            return Err(format!(
                "cannot read the service's view on {} ({e}); --standalone meters on its own",
                path.display()
            ));
        }
    };
    let failed = |e: String| format!("the service's view on {}: {e}", path.display());
    let mut reader = BufReader::new(stream);
    reader
        .get_ref()
        .set_read_timeout(Some(FIRST_LINES))
        .map_err(|e| failed(e.to_string()))?;
    let header =
        file::header_of(read_line(&mut reader).map_err(&failed)?.as_bytes()).map_err(&failed)?;
    let pid = header
        .pid
        .ok_or_else(|| failed("its header names no pid".into()))?;
    let mut seconds = Vec::new();
    // A service that has recorded no second yet sends its first within an interval.
    for _ in 0..header.backlog.unwrap_or(0).max(1) {
        seconds.push(second_of(&read_line(&mut reader).map_err(&failed)?).map_err(&failed)?);
    }
    reader
        .get_ref()
        .set_read_timeout(None)
        .map_err(|e| failed(e.to_string()))?;
    let (sender, arrived) = bounded(SLACK);
    thread::Builder::new()
        .name("control-read".into())
        .spawn(move || {
            while let Ok(line) = read_line(&mut reader) {
                let Ok(second) = second_of(&line) else { return };
                if sender.send(second).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| failed(e.to_string()))?;
    Ok(Some(Live {
        recording: Recording {
            alerts: header.alerts.clone(),
            header,
            seconds,
            damage: None,
        },
        pid,
        seconds: arrived,
    }))
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err("it ended".into()),
        Ok(_) => Ok(line),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(format!("no answer in {FIRST_LINES:?}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn second_of(line: &str) -> Result<Second, String> {
    match serde_json::from_str::<Entry>(line) {
        Ok(Entry::Second(second)) => Ok(second),
        Ok(_) => Err("a line that is no second".into()),
        Err(e) => Err(format!("a damaged line ({e})")),
    }
}
