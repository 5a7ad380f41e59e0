//! The log sink: envelopes appended to NDJSON segment files under
//! `<data_dir>/events/`, fsynced before a write returns. One writer thread takes every
//! request queued while the previous fsync ran and commits them with one fsync (group
//! commit). Segments are rolled by size and never rewritten; each start opens a new
//! segment, so a torn tail left by a crash is never appended to.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::SinkError;

/// Requests waiting for the writer thread; senders wait when it is full.
const QUEUE_DEPTH: usize = 4096;
/// Bytes one group commit gathers at most before it writes.
const GROUP_BYTES: usize = 8 * 1024 * 1024;
/// Segment file suffix.
const SEGMENT_SUFFIX: &str = ".ndjson";

enum Job {
    Write {
        lines: Vec<u8>,
        done: oneshot::Sender<Result<(), SinkError>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// Handle to the writer thread.
pub struct LogSink {
    jobs: mpsc::Sender<Job>,
    writable: Arc<AtomicBool>,
}

impl LogSink {
    /// Opens `dir` (created if missing) and starts the writer thread.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let segments = Segments::new(dir.to_path_buf(), segment_bytes)?;
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let writable = Arc::new(AtomicBool::new(true));
        let flag = writable.clone();
        std::thread::Builder::new()
            .name("intake-log-sink".into())
            .spawn(move || run_writer(queue, segments, &flag))?;
        Ok(Self { jobs, writable })
    }

    /// Appends `lines` and returns once they are fsynced.
    pub async fn write(&self, lines: Vec<u8>) -> Result<(), SinkError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job::Write { lines, done })
            .await
            .map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }

    /// Whether the last write succeeded.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// Lets queued writes finish, then stops the writer thread.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.jobs.send(Job::Close { done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

fn closed() -> SinkError {
    SinkError::Unavailable("the log sink is closed".into())
}

fn run_writer(mut queue: mpsc::Receiver<Job>, mut segments: Segments, writable: &AtomicBool) {
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { lines, done } => {
                    bytes += lines.len();
                    group.push((lines, done));
                }
                Job::Close { done } => {
                    closing = Some(done);
                    break;
                }
            }
            if bytes < GROUP_BYTES {
                next = queue.try_recv().ok();
            }
        }
        let result = segments
            .append(group.iter().map(|(lines, _)| lines.as_slice()))
            .map_err(|e| SinkError::Unavailable(format!("writing the event log: {e}")));
        if let Err(error) = &result {
            tracing::error!(%error, "event log write failed; answering 503 until it recovers");
        }
        writable.store(result.is_ok(), Ordering::Relaxed);
        for (_, done) in group {
            let _ = done.send(result.clone());
        }
    }
    queue.close();
    // Anything still queued after the close is refused (its senders see an error).
    while let Ok(job) = queue.try_recv() {
        if let Job::Write { done, .. } = job {
            let _ = done.send(Err(closed()));
        }
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// The segment files of the events directory.
struct Segments {
    dir: PathBuf,
    roll_at: u64,
    next_sequence: u64,
    current: Option<(File, u64)>,
}

impl Segments {
    fn new(dir: PathBuf, roll_at: u64) -> std::io::Result<Self> {
        let mut highest = 0;
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(SEGMENT_SUFFIX)
                .and_then(|s| s.parse().ok())
            {
                highest = highest.max(n);
            }
        }
        Ok(Self {
            dir,
            roll_at,
            next_sequence: highest + 1,
            current: None,
        })
    }

    /// Writes every buffer, then one fsync. On error the segment is abandoned, so a
    /// partly written batch is never followed by acknowledged data in the same file.
    fn append<'a>(&mut self, buffers: impl Iterator<Item = &'a [u8]>) -> std::io::Result<()> {
        let outcome = self.append_inner(buffers);
        if outcome.is_err() {
            self.current = None;
        }
        outcome
    }

    fn append_inner<'a>(&mut self, buffers: impl Iterator<Item = &'a [u8]>) -> std::io::Result<()> {
        if self
            .current
            .as_ref()
            .is_none_or(|(_, size)| *size >= self.roll_at)
        {
            self.roll()?;
        }
        let Some((file, size)) = self.current.as_mut() else {
            return Err(std::io::Error::other("no open segment"));
        };
        for buffer in buffers {
            file.write_all(buffer)?;
            *size += buffer.len() as u64;
        }
        file.sync_data()
    }

    fn roll(&mut self) -> std::io::Result<()> {
        if let Some((file, _)) = self.current.take() {
            file.sync_all()?;
        }
        let path = self
            .dir
            .join(format!("{:020}{SEGMENT_SUFFIX}", self.next_sequence));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        // The new name must survive a crash too.
        File::open(&self.dir)?.sync_all()?;
        self.next_sequence += 1;
        self.current = Some((file, 0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(dir: &Path) -> String {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_segments_roll() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LogSink::open(dir.path(), 64).unwrap());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                sink.write(format!("{{\"n\":{i}}}\n").into_bytes()).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        sink.close().await;
        let text = read_all(dir.path());
        assert_eq!(text.lines().count(), 50);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() > 1);
        assert!(sink.write(b"x\n".to_vec()).await.is_err());
    }

    #[tokio::test]
    async fn a_restart_opens_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let sink = LogSink::open(dir.path(), 1 << 20).unwrap();
            sink.write(b"{}\n".to_vec()).await.unwrap();
            sink.close().await;
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(read_all(dir.path()).lines().count(), 2);
    }
}
