//! The writer thread: recordings are written off the metering thread, so a slow or full
//! disk never holds an interval up. It only ever writes whole lines: a write that fails
//! half way is cut back to the last whole line, so a file closed on a full disk or on
//! SIGTERM ends with a complete line. A failure is told once (a [`Notice`]), its end once
//! more; a file that reached its size limit takes no more lines.

use std::{
    fs::File,
    io::{Seek, SeekFrom, Write},
    path::Path,
    sync::Arc,
    thread::{self, JoinHandle},
};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

use super::ring::Line;

/// Bytes written at once when a recording opens with the ring's seconds.
const CHUNK: usize = 256 * 1024;

/// What the writer tells the metering thread, which says it on stderr and in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Writing failed (a full disk, an I/O error); the recording goes on without the
    /// lines that failed, and resumes when writes succeed again.
    Failed { path: Arc<Path>, error: String },
    /// Writes succeed again after a failure.
    Resumed { path: Arc<Path> },
    /// The file reached its share of `--record-max-size`: later seconds are not in it.
    Full { path: Arc<Path>, limit: u64 },
    /// The writer fell behind (the disk blocks): seconds were dropped, not queued.
    Behind { path: Arc<Path>, dropped: u64 },
}

enum Job {
    Open {
        file: File,
        path: Arc<Path>,
        limit: u64,
        lines: Vec<Line>,
    },
    Line(Line),
    Close,
}

pub struct Writer {
    jobs: Sender<Job>,
    notices: Receiver<Notice>,
    handle: Option<JoinHandle<()>>,
    /// Lines dropped since the last report, because the queue was full.
    dropped: u64,
    /// Dropping was told, and no line has been queued since: told once per episode.
    behind_told: bool,
    path: Option<Arc<Path>>,
}

impl Writer {
    /// A writer whose queue holds `queue` lines (a window's worth: the disk may stall
    /// that long before a second is dropped).
    pub fn start(queue: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = bounded(queue.max(16));
        let (told, notices) = unbounded();
        let handle = thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_all(&inbox, &told))?;
        Ok(Self {
            jobs,
            notices,
            handle: Some(handle),
            dropped: 0,
            behind_told: false,
            path: None,
        })
    }

    /// Starts writing `file` (at `path`, at most `limit` bytes) with `lines` first;
    /// `false` if the writer is a whole queue behind (a disk that blocks), as metering
    /// never waits for it.
    pub fn open(&mut self, file: File, path: Arc<Path>, limit: u64, lines: Vec<Line>) -> bool {
        self.path = Some(path.clone());
        self.jobs
            .try_send(Job::Open {
                file,
                path,
                limit,
                lines,
            })
            .is_ok()
    }

    /// Appends a line to the open recording, unless the queue is full.
    pub fn line(&mut self, line: Line) {
        match self.jobs.try_send(Job::Line(line)) {
            Ok(()) => self.behind_told = false,
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Closes the open recording once what is queued is written.
    pub fn close(&mut self) {
        let _ = self.jobs.send(Job::Close);
    }

    /// What happened since the last call.
    pub fn notices(&mut self) -> Vec<Notice> {
        let mut notices: Vec<Notice> = self.notices.try_iter().collect();
        if self.dropped > 0
            && !self.behind_told
            && let Some(path) = &self.path
        {
            notices.push(Notice::Behind {
                path: path.clone(),
                dropped: std::mem::take(&mut self.dropped),
            });
            self.behind_told = true;
        }
        notices
    }

    /// Writes what is queued, closes the file and ends the thread (on stop).
    pub fn finish(&mut self) -> Vec<Notice> {
        self.close();
        let (jobs, _) = bounded(0);
        drop(std::mem::replace(&mut self.jobs, jobs));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.notices()
    }
}

/// The open file and how its writes went.
struct Open {
    file: File,
    path: Arc<Path>,
    /// The first line, written before any other even if its first write failed.
    header: Option<Line>,
    /// Bytes of whole lines written.
    len: u64,
    limit: u64,
    failing: bool,
    full: bool,
}

fn write_all(inbox: &Receiver<Job>, told: &Sender<Notice>) {
    let mut open: Option<Open> = None;
    for job in inbox {
        match job {
            Job::Open {
                file,
                path,
                limit,
                lines,
            } => {
                let mut recording = Open {
                    file,
                    path,
                    header: lines.first().cloned(),
                    len: 0,
                    limit,
                    failing: false,
                    full: false,
                };
                let mut chunk = Vec::with_capacity(CHUNK);
                for line in lines {
                    chunk.extend_from_slice(line.as_bytes());
                    chunk.push(b'\n');
                    if chunk.len() >= CHUNK {
                        recording.write(&chunk, told);
                        chunk.clear();
                    }
                }
                recording.write(&chunk, told);
                open = Some(recording);
            }
            Job::Line(line) => {
                if let Some(recording) = &mut open {
                    let mut bytes = Vec::with_capacity(line.len() + 1);
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.push(b'\n');
                    recording.write(&bytes, told);
                }
            }
            Job::Close => {
                if let Some(recording) = open.take() {
                    let _ = recording.file.sync_data();
                }
            }
        }
    }
    if let Some(recording) = open {
        let _ = recording.file.sync_data();
    }
}

impl Open {
    /// Writes whole lines, or none of them; the header first while none is written.
    fn write(&mut self, bytes: &[u8], told: &Sender<Notice>) {
        if bytes.is_empty() || self.full {
            return;
        }
        let with_header;
        let bytes = match &self.header {
            Some(header) if self.len == 0 && !bytes.starts_with(header.as_bytes()) => {
                with_header = [header.as_bytes(), b"\n", bytes].concat();
                &with_header[..]
            }
            _ => bytes,
        };
        if self.len + bytes.len() as u64 > self.limit {
            self.full = true;
            let _ = told.send(Notice::Full {
                path: self.path.clone(),
                limit: self.limit,
            });
            return;
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                if std::mem::take(&mut self.failing) {
                    let _ = told.send(Notice::Resumed {
                        path: self.path.clone(),
                    });
                }
            }
            Err(error) => {
                // Back to the last whole line, so the file never ends mid-line.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                if !std::mem::replace(&mut self.failing, true) {
                    let _ = told.send(Notice::Failed {
                        path: self.path.clone(),
                        error: error.to_string(),
                    });
                }
            }
        }
    }
}

impl Notice {
    /// The recording the notice is about.
    pub fn path(&self) -> &Path {
        match self {
            Notice::Failed { path, .. }
            | Notice::Resumed { path }
            | Notice::Full { path, .. }
            | Notice::Behind { path, .. } => path,
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path().display();
        match self {
            Notice::Failed { error, .. } => write!(
                f,
                "recording {path}: cannot write ({error}); metering goes on, and the \
                 recording resumes when writes succeed again (free space in --record-dir)"
            ),
            Notice::Resumed { .. } => write!(f, "recording {path}: writing again"),
            Notice::Full { limit, .. } => write!(
                f,
                "recording {path} reached its {} (--record-max-size); later seconds are \
                 not in it",
                crate::units::bytes(*limit)
            ),
            Notice::Behind { dropped, .. } => write!(
                f,
                "recording {path}: the disk is too slow, seconds are left out ({dropped} so \
                 far); metering goes on"
            ),
        }
    }
}
