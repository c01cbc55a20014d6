//! The log's destination: standard output or a file, rotated by size and reopened on
//! SIGHUP.
//!
//! Each batch of lines (an interval's, or a chunk of a large one: `LogSink` writes past
//! 4 MiB as it goes) goes out in one write and is flushed. A write that fails halfway is
//! taken back (the file is cut to its length before the batch), so a file only ever holds
//! whole lines. A failure never stops metering: the first one of an outage is reported
//! once, the lines that could not be written are counted, and the first batch written
//! after it says how much was lost, so the caller can put a `gap` record in the log.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Seek, SeekFrom, Write},
    os::{fd::AsFd, unix::fs::FileExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::schema::{self, GapRecord};

/// `--rotate-keep` when not given.
pub const DEFAULT_KEEP: usize = 5;

/// A partial last line longer than this is not taken for ours: such a file is refused
/// rather than cut (our lines are far shorter).
const MAX_TORN_TAIL: u64 = 64 * 1024;

/// Where the log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File {
        path: PathBuf,
        rotate: Option<Rotation>,
    },
}

impl Destination {
    /// `-` is standard output (never rotated); anything else a file path.
    pub fn parse(text: &str, rotate: Option<Rotation>) -> Self {
        if text == "-" {
            Self::Stdout
        } else {
            Self::File {
                path: PathBuf::from(text),
                rotate,
            }
        }
    }
}

/// Rotation by size: before a batch would take the file past `max_bytes`, `log` becomes
/// `log.1` (`log.1` becomes `log.2`, and so on; what was `log.{keep}` is dropped) and a new
/// `log` is started. Besides the live file, `keep` rotated files remain. A batch is never
/// split, so a file can pass `max_bytes` only when a single batch is larger (a batch is
/// at most a chunk of a few MiB: rotation falls between lines of a large interval too).
/// A file renamed away before its SIGHUP (logrotate) counts as rotated already: the
/// numbers are not shifted for it, so they stay `.1..N` with no gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

/// What became of one batch.
#[must_use]
#[derive(Debug)]
pub enum BatchOutcome {
    /// Written whole and flushed.
    Written,
    /// Written whole and flushed, the first batch since an outage: write `gap.record()` to
    /// the log (a `type: "gap"` line) and say on stderr that writing works again.
    Recovered(Gap),
    /// Not written, and the first failure of an outage: print the error once on stderr
    /// and go on metering. The batch is counted as lost.
    Failed(io::Error),
    /// Not written, in an outage already reported: counted as lost, nothing to print.
    StillFailing,
    /// Standard output was closed by its reader (EPIPE): nobody reads the log any more;
    /// the caller should stop (and exit non-zero).
    Closed(io::Error),
}

/// Lines that could not be written, from the first failure of an outage to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub lost_lines: u64,
    pub lost_bytes: u64,
    pub lost_batches: u64,
    /// When the first batch could not be written.
    pub since: SystemTime,
    /// When writing worked again (or, for [`LogOutput::outage`], the last failure).
    pub until: SystemTime,
    /// The first failure.
    pub error: String,
}

impl Gap {
    /// The wire form, to be written as a `type: "gap"` line with `ts` = `until`.
    pub fn record(&self) -> GapRecord<'_> {
        GapRecord {
            lost_lines: self.lost_lines,
            lost_bytes: self.lost_bytes,
            lost_batches: self.lost_batches,
            since: schema::timestamp(self.since),
            until: schema::timestamp(self.until),
            error: &self.error,
        }
    }
}

/// The open log. Single-threaded: the metering loop owns it.
pub struct LogOutput {
    place: Place,
    /// `None` after a failure that left the file in doubt, or a failed (re)open: the next
    /// batch opens the path again.
    file: Option<File>,
    outage: Option<Gap>,
}

enum Place {
    /// A duplicate of standard output. `regular`: redirected to a file, so a failed write
    /// can be taken back; a pipe or terminal cannot.
    Stdout { regular: bool },
    Path {
        path: PathBuf,
        rotate: Option<Rotation>,
    },
}

impl LogOutput {
    /// Opens the destination; a file is created if missing and appended to. A partial last
    /// line left by a writer that was killed mid-write is cut (with a warning).
    pub fn open(destination: &Destination) -> io::Result<Self> {
        match destination {
            Destination::Stdout => {
                Self::stdout(File::from(io::stdout().as_fd().try_clone_to_owned()?))
            }
            Destination::File { path, rotate } => Ok(Self {
                file: Some(open_log(path)?),
                place: Place::Path {
                    path: path.clone(),
                    rotate: *rotate,
                },
                outage: None,
            }),
        }
    }

    /// Standard output, given as a file descriptor (the test seam).
    fn stdout(file: File) -> io::Result<Self> {
        let regular = file.metadata()?.file_type().is_file();
        Ok(Self {
            place: Place::Stdout { regular },
            file: Some(file),
            outage: None,
        })
    }

    /// Writes a batch of whole lines (each `\n`-terminated) in one write, and flushes.
    /// Rotates first if the batch would take the file past its maximum size.
    pub fn write_batch(&mut self, lines: &[u8]) -> BatchOutcome {
        debug_assert!(
            lines.is_empty() || lines.ends_with(b"\n"),
            "whole lines only"
        );
        if lines.is_empty() {
            return match self.outage {
                Some(_) => BatchOutcome::StillFailing,
                None => BatchOutcome::Written,
            };
        }
        let result = self.write(lines);
        let now = SystemTime::now();
        match result {
            Ok(()) => match self.outage.take() {
                None => BatchOutcome::Written,
                Some(gap) => BatchOutcome::Recovered(Gap { until: now, ..gap }),
            },
            Err(error)
                if error.kind() == io::ErrorKind::BrokenPipe
                    && matches!(self.place, Place::Stdout { .. }) =>
            {
                BatchOutcome::Closed(error)
            }
            Err(error) => {
                let lost_lines = lines.iter().filter(|&&byte| byte == b'\n').count() as u64;
                let lost_bytes = lines.len() as u64;
                match &mut self.outage {
                    Some(gap) => {
                        gap.lost_lines += lost_lines;
                        gap.lost_bytes += lost_bytes;
                        gap.lost_batches += 1;
                        gap.until = now;
                        BatchOutcome::StillFailing
                    }
                    None => {
                        self.outage = Some(Gap {
                            lost_lines,
                            lost_bytes,
                            lost_batches: 1,
                            since: now,
                            until: now,
                            error: error.to_string(),
                        });
                        BatchOutcome::Failed(error)
                    }
                }
            }
        }
    }

    /// Closes the file and opens its path again, creating it if missing; for standard
    /// output, nothing. For logrotate's rename-and-signal: the caller registers SIGHUP
    /// (e.g. `signal_hook::flag::register(SIGHUP, flag)`) and, in the metering loop,
    /// between two batches (never inside `write_batch`), calls this when the flag was set
    /// (`if flag.swap(false, Ordering::Relaxed) { output.reopen() }`), before writing the
    /// next batch: every line written after the rename goes to the new file, none is lost.
    ///
    /// On error the file stays closed and the next batch tries to open it again; if that
    /// fails too, its outcome reports the failure, so the error needs no report of its own.
    pub fn reopen(&mut self) -> io::Result<()> {
        let Place::Path { path, .. } = &self.place else {
            return Ok(());
        };
        self.file = None;
        self.file = Some(open_log(path)?);
        Ok(())
    }

    /// The outage in progress, if the last batch could not be written: for a last word on
    /// stderr at exit (`until` is the last failure).
    pub fn outage(&self) -> Option<&Gap> {
        self.outage.as_ref()
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        match &self.place {
            Place::Stdout { regular } => {
                let file = self.file.as_mut().expect("standard output stays open");
                // A failed undo leaves the bytes there: nothing better can be done.
                write_whole(file, lines, *regular).map_err(|failure| failure.error)
            }
            Place::Path { path, rotate } => {
                let mut file = match self.file.take() {
                    Some(file) => file,
                    None => open_log(path)?,
                };
                if let Some(rotation) = rotate {
                    file = rotate_if_due(path, file, *rotation, lines.len() as u64)?;
                }
                match write_whole(&mut file, lines, true) {
                    Ok(()) => {
                        self.file = Some(file);
                        Ok(())
                    }
                    Err(failure) => {
                        // If the undo failed, the file may end in a partial line: drop
                        // it; opening it again cuts that line.
                        if failure.undone {
                            self.file = Some(file);
                        }
                        Err(failure.error)
                    }
                }
            }
        }
    }
}

/// A failed batch write: the error, and whether the file is back as it was.
struct WriteFailure {
    error: io::Error,
    undone: bool,
}

impl From<io::Error> for WriteFailure {
    fn from(error: io::Error) -> Self {
        Self {
            error,
            undone: true,
        }
    }
}

/// Writes `lines` and flushes; on failure, with `undo`, cuts the file back to its length
/// before the write (and puts the position there), so no partial line stays.
fn write_whole(file: &mut File, lines: &[u8], undo: bool) -> Result<(), WriteFailure> {
    let start = if undo {
        Some(file.metadata()?.len())
    } else {
        None
    };
    let Err(error) = file.write_all(lines).and_then(|()| file.flush()) else {
        return Ok(());
    };
    let undone = match start {
        Some(start) => file
            .set_len(start)
            .and_then(|()| file.seek(SeekFrom::Start(start)))
            .is_ok(),
        None => false,
    };
    Err(WriteFailure { error, undone })
}

/// Opens `path` to append, creating it if missing, and cuts a partial last line.
fn open_log(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let cut = cut_torn_tail(&file)
        .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))?;
    if cut > 0 {
        log::warn!(
            "{}: cut a partial last line ({cut} bytes) left by an interrupted write",
            path.display()
        );
    }
    Ok(file)
}

/// Cuts the bytes after the last `\n`; returns how many. Refuses a file whose partial last
/// line is longer than any line flowmeter writes: that file is not a flowmeter log.
fn cut_torn_tail(file: &File) -> io::Result<u64> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(0);
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, length - 1)?;
    if last == [b'\n'] {
        return Ok(0);
    }
    let window_start = length.saturating_sub(MAX_TORN_TAIL);
    let mut window = vec![0u8; (length - window_start) as usize];
    file.read_exact_at(&mut window, window_start)?;
    let keep = match window.iter().rposition(|&byte| byte == b'\n') {
        Some(newline) => window_start + newline as u64 + 1,
        None if window_start == 0 => 0,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a JSON-lines log (no line end in its last 64 KiB); choose another file",
            ));
        }
    };
    file.set_len(keep)?;
    Ok(length - keep)
}

/// The file a batch of `batch` bytes goes to: `file`, or a new file at `path` when the
/// batch would take `file` past the maximum. If `path` no longer names `file` (logrotate
/// renamed it and its SIGHUP is not yet handled), that rename was the rotation: the batch
/// starts the file now at `path`, and nothing is shifted, since shifting would number a
/// file that is not there and leave a gap in `.1..N`.
fn rotate_if_due(path: &Path, file: File, rotation: Rotation, batch: u64) -> io::Result<File> {
    let due = |file: &File| -> io::Result<bool> {
        let length = file.metadata()?.len();
        Ok(length > 0 && length + batch > rotation.max_bytes)
    };
    if !due(&file)? {
        return Ok(file);
    }
    let mut file = file;
    if !names_file(path, &file)? {
        file = open_log(path)?;
        if !due(&file)? {
            return Ok(file);
        }
    }
    drop(file);
    shift_rotated(path, rotation.keep)?;
    open_log(path)
}

/// Whether `path` (followed through symlinks) is the open `file`; a missing path is not.
fn names_file(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// `path.{keep-1}` → `path.{keep}`, …, `path.1` → `path.2`, then `path` → `path.1`
/// (with `keep` 0, `path` is removed). A missing file is skipped. If `path` is renamed
/// away while the others move (logrotate, between our check and the last rename), they
/// move back: the numbers keep no gap.
fn shift_rotated(path: &Path, keep: usize) -> io::Result<()> {
    let numbered = |n: usize| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    let ignore_missing = |result: io::Result<()>| match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    if keep == 0 {
        return ignore_missing(fs::remove_file(path));
    }
    for n in (1..keep).rev() {
        ignore_missing(fs::rename(numbered(n), numbered(n + 1)))?;
    }
    match fs::rename(path, numbered(1)) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            for n in 1..keep {
                ignore_missing(fs::rename(numbered(n + 1), numbered(n)))?;
            }
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// `count` lines of equal length, numbered from `first`.
    fn batch(first: usize, count: usize) -> Vec<u8> {
        (first..first + count)
            .map(|n| format!("{{\"line\":{n:>6}}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn file_destination(path: &Path, rotate: Option<Rotation>) -> Destination {
        Destination::File {
            path: path.to_owned(),
            rotate,
        }
    }

    fn numbered(path: &Path, n: usize) -> PathBuf {
        PathBuf::from(format!("{}.{n}", path.display()))
    }

    /// `--rotate-size` takes the one grammar of byte counts: K, M, G, T are powers of
    /// 1000, Ki, Mi, Gi, Ti powers of 1024, and zero is refused.
    #[test]
    fn rotate_sizes_are_si_without_i_and_binary_with_it() {
        use crate::units::{UnitError, parse_positive_bytes};
        assert_eq!(parse_positive_bytes("4096"), Ok(4096));
        assert_eq!(parse_positive_bytes("512k"), Ok(512_000));
        assert_eq!(parse_positive_bytes("100M"), Ok(100_000_000));
        assert_eq!(parse_positive_bytes("100Mi"), Ok(100 << 20));
        assert_eq!(parse_positive_bytes("100MiB"), Ok(100 << 20));
        assert_eq!(parse_positive_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_positive_bytes("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_positive_bytes("2tb"), Ok(2_000_000_000_000));
        assert_eq!(parse_positive_bytes("2TiB"), Ok(2 << 40));
        for bad in ["", "M", "10X", "-1", "99999999999T"] {
            let error = parse_positive_bytes(bad).unwrap_err();
            assert_eq!(error, UnitError::Bytes(bad.to_owned()));
            assert!(
                error.to_string().contains("powers of 1024"),
                "{bad}: {error}"
            );
        }
        assert_eq!(
            parse_positive_bytes("0"),
            Err(UnitError::ZeroBytes("0".to_owned()))
        );
    }

    #[test]
    fn dash_is_standard_output() {
        assert_eq!(Destination::parse("-", None), Destination::Stdout);
        let rotate = Some(Rotation {
            max_bytes: 10,
            keep: DEFAULT_KEEP,
        });
        assert_eq!(
            Destination::parse("/var/log/f.jsonl", rotate),
            file_destination(Path::new("/var/log/f.jsonl"), rotate)
        );
    }

    #[test]
    fn batches_are_appended_to_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, batch(0, 2)).unwrap();
        let mut output = LogOutput::open(&file_destination(&path, None)).unwrap();
        assert!(matches!(
            output.write_batch(&batch(2, 3)),
            BatchOutcome::Written
        ));
        assert!(matches!(output.write_batch(&[]), BatchOutcome::Written));
        assert_eq!(fs::read(&path).unwrap(), batch(0, 5));
    }

    #[test]
    fn rotation_keeps_whole_batches_and_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let one = batch(0, 3).len() as u64; // every batch below is this long
        let rotate = Rotation {
            max_bytes: 2 * one,
            keep: 2,
        };
        let mut output = LogOutput::open(&file_destination(&path, Some(rotate))).unwrap();
        for n in 0..7 {
            assert!(matches!(
                output.write_batch(&batch(n * 3, 3)),
                BatchOutcome::Written
            ));
        }
        // Two batches a file: log.2 = batches 2-3, log.1 = 4-5, log = 6; 0-1 dropped.
        assert_eq!(fs::read(&path).unwrap(), batch(18, 3));
        assert_eq!(fs::read(numbered(&path, 1)).unwrap(), batch(12, 6));
        assert_eq!(fs::read(numbered(&path, 2)).unwrap(), batch(6, 6));
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn a_batch_larger_than_the_maximum_is_written_whole_in_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rotate = Rotation {
            max_bytes: 10,
            keep: 1,
        };
        let mut output = LogOutput::open(&file_destination(&path, Some(rotate))).unwrap();
        assert!(matches!(
            output.write_batch(&batch(0, 4)),
            BatchOutcome::Written
        ));
        assert!(matches!(
            output.write_batch(&batch(4, 4)),
            BatchOutcome::Written
        ));
        assert_eq!(fs::read(numbered(&path, 1)).unwrap(), batch(0, 4));
        assert_eq!(fs::read(&path).unwrap(), batch(4, 4));
    }

    #[test]
    fn keep_zero_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rotate = Rotation {
            max_bytes: 10,
            keep: 0,
        };
        let mut output = LogOutput::open(&file_destination(&path, Some(rotate))).unwrap();
        assert!(matches!(
            output.write_batch(&batch(0, 2)),
            BatchOutcome::Written
        ));
        assert!(matches!(
            output.write_batch(&batch(2, 2)),
            BatchOutcome::Written
        ));
        assert_eq!(fs::read(&path).unwrap(), batch(2, 2));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn reopen_after_a_rename_continues_in_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let renamed = dir.path().join("log.old");
        let mut output = LogOutput::open(&file_destination(&path, None)).unwrap();
        assert!(matches!(
            output.write_batch(&batch(0, 2)),
            BatchOutcome::Written
        ));
        fs::rename(&path, &renamed).unwrap();
        // Until the signal arrives, lines follow the open file.
        assert!(matches!(
            output.write_batch(&batch(2, 2)),
            BatchOutcome::Written
        ));
        output.reopen().unwrap();
        assert!(path.exists(), "reopen creates the file");
        assert!(matches!(
            output.write_batch(&batch(4, 2)),
            BatchOutcome::Written
        ));
        assert_eq!(fs::read(&renamed).unwrap(), batch(0, 4));
        assert_eq!(fs::read(&path).unwrap(), batch(4, 2));
    }

    /// logrotate's rename-and-signal met by a size rotation before the SIGHUP is
    /// handled: the numbers stay `.1..N` with no gap, every line is kept once, whole.
    #[test]
    fn a_rename_before_the_signal_leaves_no_gap_in_the_rotated_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let one = batch(0, 3).len() as u64;
        let rotate = Rotation {
            max_bytes: 2 * one,
            keep: 50,
        };
        // What logrotate does with the same names: shift `.n` up, `log` becomes `.1`.
        let logrotate = || {
            for n in (1..50).rev() {
                let _ = fs::rename(numbered(&path, n), numbered(&path, n + 1));
            }
            fs::rename(&path, numbered(&path, 1)).unwrap();
        };
        let mut output = LogOutput::open(&file_destination(&path, Some(rotate))).unwrap();
        let mut written = 0;
        let mut write = |output: &mut LogOutput| {
            let outcome = output.write_batch(&batch(written * 3, 3));
            assert!(matches!(outcome, BatchOutcome::Written));
            written += 1;
        };
        for round in 0..4 {
            for _ in 0..5 {
                write(&mut output);
            }
            logrotate();
            // Batches before the signal: the first one is due for size rotation.
            write(&mut output);
            write(&mut output);
            if round % 2 == 0 {
                output.reopen().unwrap();
            }
        }
        write(&mut output);

        let mut numbers: Vec<usize> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("log.").map(|n| n.parse().unwrap())
            })
            .collect();
        numbers.sort_unstable();
        let contiguous: Vec<usize> = (1..=numbers.len()).collect();
        assert_eq!(numbers, contiguous, "rotated files numbered without a gap");
        // Oldest first, the files hold every line once, in order, whole.
        let mut all = Vec::new();
        for n in numbers.iter().rev() {
            let text = fs::read(numbered(&path, *n)).unwrap();
            assert!(text.ends_with(b"\n"), "log.{n} ends in a whole line");
            all.extend(text);
        }
        all.extend(fs::read(&path).unwrap());
        assert_eq!(all, batch(0, written * 3));
    }

    /// The race of the test above: `log` renamed away after the check, while the
    /// numbered files move up. They move back down.
    #[test]
    fn a_shift_that_finds_the_log_gone_moves_the_numbers_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        for n in 1..=3 {
            fs::write(numbered(&path, n), batch(n, 1)).unwrap();
        }
        shift_rotated(&path, 5).unwrap();
        for n in 1..=3 {
            assert_eq!(
                fs::read(numbered(&path, n)).unwrap(),
                batch(n, 1),
                "log.{n}"
            );
        }
        assert!(!numbered(&path, 4).exists());
        assert!(!path.exists());
    }

    #[test]
    fn a_failing_file_is_reported_once_counted_and_recovered_from() {
        // The path is a symlink: to /dev/full (every write fails with ENOSPC), then to a
        // regular file. A failed batch closes the device (it cannot be cut back), so the
        // next batch opens the path again and follows the new link.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let real = dir.path().join("real");
        symlink("/dev/full", &path).unwrap();
        let mut output = LogOutput::open(&file_destination(&path, None)).unwrap();

        let BatchOutcome::Failed(error) = output.write_batch(&batch(0, 3)) else {
            panic!("the first failure is reported");
        };
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
        assert!(matches!(
            output.write_batch(&batch(3, 2)),
            BatchOutcome::StillFailing
        ));
        assert!(matches!(
            output.write_batch(&[]),
            BatchOutcome::StillFailing
        ));
        let outage = output.outage().unwrap();
        assert_eq!((outage.lost_lines, outage.lost_batches), (5, 2));

        fs::remove_file(&path).unwrap();
        symlink(&real, &path).unwrap();
        let BatchOutcome::Recovered(gap) = output.write_batch(&batch(5, 1)) else {
            panic!("recovery is reported");
        };
        assert_eq!(gap.lost_lines, 5);
        assert_eq!(gap.lost_bytes, batch(0, 5).len() as u64);
        assert_eq!(gap.lost_batches, 2);
        assert!(gap.since <= gap.until);
        assert!(gap.error.contains("No space left"), "{}", gap.error);
        assert!(output.outage().is_none());
        assert!(matches!(
            output.write_batch(&batch(6, 1)),
            BatchOutcome::Written
        ));
        assert_eq!(fs::read(&real).unwrap(), batch(5, 2));

        let record = serde_json::to_value(gap.record()).unwrap();
        assert_eq!(record["lost_lines"], 5);
        assert_eq!(record["lost_batches"], 2);
        assert!(record["since"].as_str().unwrap().ends_with('Z'));
        assert!(record["until"].as_str().unwrap().ends_with('Z'));
        assert!(record["error"].as_str().unwrap().contains("No space left"));
    }

    #[test]
    fn a_partial_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut torn = batch(0, 2);
        torn.extend_from_slice(b"{\"line\":2,\"rx_by");
        fs::write(&path, &torn).unwrap();
        let mut output = LogOutput::open(&file_destination(&path, None)).unwrap();
        assert!(matches!(
            output.write_batch(&batch(2, 1)),
            BatchOutcome::Written
        ));
        assert_eq!(fs::read(&path).unwrap(), batch(0, 3));

        fs::write(&path, b"no line end at all").unwrap();
        output.reopen().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data = vec![b'x'; MAX_TORN_TAIL as usize + 1];
        fs::write(&path, &data).unwrap();
        let error = LogOutput::open(&file_destination(&path, None))
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("not a JSON-lines log"),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_closed_pipe_on_standard_output_stops_the_log() {
        let (reader, writer) = io::pipe().unwrap();
        drop(reader);
        let mut output = LogOutput::stdout(File::from(std::os::fd::OwnedFd::from(writer))).unwrap();
        let BatchOutcome::Closed(error) = output.write_batch(&batch(0, 1)) else {
            panic!("EPIPE closes the log");
        };
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        output.reopen().unwrap();
    }

    #[test]
    fn standard_output_to_a_pipe_is_written_whole() {
        let (mut reader, writer) = io::pipe().unwrap();
        let mut output = LogOutput::stdout(File::from(std::os::fd::OwnedFd::from(writer))).unwrap();
        assert!(matches!(
            output.write_batch(&batch(0, 3)),
            BatchOutcome::Written
        ));
        drop(output);
        let mut read = Vec::new();
        io::Read::read_to_end(&mut reader, &mut read).unwrap();
        assert_eq!(read, batch(0, 3));
    }

    #[test]
    fn standard_output_to_a_full_file_is_counted_not_closed() {
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut output = LogOutput::stdout(full).unwrap();
        assert!(matches!(
            output.write_batch(&batch(0, 1)),
            BatchOutcome::Failed(_)
        ));
        assert!(matches!(
            output.write_batch(&batch(1, 1)),
            BatchOutcome::StillFailing
        ));
        assert_eq!(output.outage().unwrap().lost_lines, 2);
    }

    #[test]
    fn the_gap_record_is_pinned_byte_for_byte() {
        let at = |seconds| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let gap = Gap {
            lost_lines: 12,
            lost_bytes: 3456,
            lost_batches: 3,
            since: at(1_800_000_000),
            until: at(1_800_000_003),
            error: "No space left on device (os error 28)".into(),
        };
        assert_eq!(
            serde_json::to_string(&gap.record()).unwrap(),
            r#"{"lost_lines":12,"lost_bytes":3456,"lost_batches":3,"since":"2027-01-15T08:00:00.000Z","until":"2027-01-15T08:00:03.000Z","error":"No space left on device (os error 28)"}"#
        );
    }
}
