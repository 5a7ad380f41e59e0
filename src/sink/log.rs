//! The log sink: envelopes appended to NDJSON segment files under
//! `<data_dir>/events/`, fsynced before a write returns. One writer thread takes every
//! request queued while the previous fsync ran and commits them with one fsync (group
//! commit). Segments are rolled by size and never rewritten; each start opens a new
//! segment, so a torn tail left by a crash is never appended to.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::queue::{refuse_rest, Group, Job, Queue};
use super::segments::Segments;
use super::{Batch, SinkError};

/// Bytes one group commit gathers at most before it writes.
const GROUP_BYTES: usize = 8 * 1024 * 1024;

/// Handle to the writer thread.
pub struct LogSink {
    queue: Queue,
    writable: Arc<AtomicBool>,
}

impl LogSink {
    /// Opens `dir` (created if missing) and starts the writer thread.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let segments = Segments::new(dir.to_path_buf(), segment_bytes)?;
        let (queue, receiver) = Queue::new();
        let writable = Arc::new(AtomicBool::new(true));
        let flag = writable.clone();
        std::thread::Builder::new()
            .name("intake-log-sink".into())
            .spawn(move || run_writer(receiver, segments, &flag))?;
        Ok(Self { queue, writable })
    }

    /// Appends the batch's lines and returns once they are fsynced.
    pub async fn write(&self, batch: Batch) -> Result<(), SinkError> {
        self.queue.write(batch).await
    }

    /// Whether the last write succeeded.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// Lets queued writes finish, then stops the writer thread.
    pub async fn close(&self) {
        self.queue.close().await
    }
}

fn run_writer(mut receiver: mpsc::Receiver<Job>, mut segments: Segments, writable: &AtomicBool) {
    while let Some(first) = receiver.blocking_recv() {
        let group = Group::gather(first, || receiver.try_recv().ok(), GROUP_BYTES);
        let result = segments
            .append(group.buffers())
            .map_err(|e| SinkError::Unavailable(format!("writing the event log: {e}")));
        if let Err(error) = &result {
            tracing::error!(%error, "event log write failed; answering 503 until it recovers");
        }
        writable.store(result.is_ok(), Ordering::Relaxed);
        if let Some(done) = group.answer(&result) {
            refuse_rest(&mut receiver);
            let _ = done.send(());
            return;
        }
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

    fn batch(line: &str) -> Batch {
        let mut batch = Batch::new(1, 1, line.len() + 1);
        batch
            .push("m", |buf| {
                buf.extend_from_slice(line.as_bytes());
                Ok::<_, ()>(())
            })
            .unwrap();
        batch
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_segments_roll() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LogSink::open(dir.path(), 64).unwrap());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                sink.write(batch(&format!("{{\"n\":{i}}}"))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        sink.close().await;
        let text = read_all(dir.path());
        assert_eq!(text.lines().count(), 50);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() > 1);
        assert!(sink.write(batch("x")).await.is_err());
    }

    #[tokio::test]
    async fn a_restart_opens_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let sink = LogSink::open(dir.path(), 1 << 20).unwrap();
            sink.write(batch("{}")).await.unwrap();
            sink.close().await;
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(read_all(dir.path()).lines().count(), 2);
    }
}
