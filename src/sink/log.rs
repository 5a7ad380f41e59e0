//! The log sink: envelopes appended to NDJSON segment files under
//! `<data_dir>/events/`, fsynced before a write returns. One writer (a blocking task)
//! takes every request queued while the previous fsync ran and commits them with one
//! fsync (group commit); it runs as a batch thread (`batch_thread`), so that a request
//! waking it does not give up its core mid-request. Segments are rolled by size and
//! never rewritten; each start opens a new segment, so a torn tail left by a crash is
//! never appended to.
//!
//! With deduplication on, the writer screens each group against the window before it
//! writes and records the ids it kept after the fsync (see `dedup`); a group that
//! holds only duplicates is answered without touching the disk.
//!
//! A failed write (disk full, I/O error) is cut off its segment, answered 503, and
//! the writer backs off: until the delay passes, requests are refused at once without
//! touching the disk, and the error is logged at most once per `ERROR_LOG_PERIOD`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::batch_thread::BatchThread;
use super::dedup::{screen_group, Window};
use super::pace::{Backoff, LogThrottle};
use super::queue::{refuse_rest, Group, Job, Queue};
use super::segments::Segments;
use super::{SinkError, SinkState, StateCell, Written};

/// Bytes one group commit gathers at most before it writes.
const GROUP_BYTES: usize = 8 * 1024 * 1024;
/// First and longest wait after a failed write before the disk is tried again.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// One error line per this period while writes keep failing.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Opens `dir` (created if missing) and starts the writer on `tasks`, deduplicating
/// against `window` when there is one. Must be called inside the runtime.
pub fn open(
    dir: &Path,
    segment_bytes: u64,
    window: Option<Window>,
    tasks: &TaskTracker,
) -> std::io::Result<Queue> {
    std::fs::create_dir_all(dir)?;
    let segments = Segments::new(dir.to_path_buf(), segment_bytes)?;
    let state = Arc::new(StateCell::new(SinkState::Direct));
    let (queue, receiver) = Queue::new(state.clone(), window.is_some());
    let writer = Writer {
        segments,
        state,
        backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
        retry_at: None,
        log: LogThrottle::new(ERROR_LOG_PERIOD),
        window,
        runtime: tokio::runtime::Handle::current(),
    };
    tasks.spawn_blocking(move || writer.run(receiver));
    Ok(queue)
}

struct Writer {
    segments: Segments,
    state: Arc<StateCell>,
    backoff: Backoff,
    /// While set and in the future, writes are refused with this error.
    retry_at: Option<(Instant, SinkError)>,
    log: LogThrottle,
    window: Option<Window>,
    /// Runs the window's Redis calls from this blocking thread.
    runtime: tokio::runtime::Handle,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        let _batch = BatchThread::enter();
        while let Some(first) = receiver.blocking_recv() {
            let mut group = Group::gather(first, || receiver.try_recv().ok(), GROUP_BYTES);
            let outcome = self.commit(&mut group);
            if let Some(done) = group.answer(outcome) {
                refuse_rest(&mut receiver);
                let _ = done.send(());
                return;
            }
        }
    }

    fn commit(&mut self, group: &mut Group) -> Result<Vec<Written>, SinkError> {
        if let Some((until, error)) = &self.retry_at {
            if Instant::now() < *until {
                return Err(error.clone());
            }
        }
        let screened = self
            .runtime
            .block_on(screen_group(self.window.as_mut(), group));
        if group.envelopes() == 0 {
            return Ok(screened.receipts(group.writes.len()));
        }
        match self.segments.append(group.buffers()) {
            Ok(()) => {
                if let Some(window) = &mut self.window {
                    self.runtime.block_on(window.record(&screened));
                }
                self.retry_at = None;
                self.backoff.reset();
                if self.log.recovered() {
                    tracing::info!("the event log takes writes again");
                }
                self.state.set(SinkState::Direct);
                Ok(screened.receipts(group.writes.len()))
            }
            Err(error) => {
                if let Some(held_back) = self.log.allow() {
                    tracing::error!(%error, failures_not_logged = held_back,
                        "event log write failed; answering 503 until it recovers");
                }
                let error = SinkError::unavailable(error);
                self.retry_at = Some((Instant::now() + self.backoff.failed(), error.clone()));
                self.state.set(SinkState::Refusing);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Batch;

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
            .push("m", true, |buf| {
                buf.extend_from_slice(line.as_bytes());
                Ok::<_, ()>(())
            })
            .unwrap();
        batch
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_segments_roll() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = TaskTracker::new();
        let sink = Arc::new(open(dir.path(), 64, None, &tasks).unwrap());
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
        // However the 50 were grouped, two more writes in turn roll at least once.
        for i in 50..52 {
            sink.write(batch(&format!(
                "{{\"n\":{i}, \"pad\":\"{}\"}}",
                "x".repeat(64)
            )))
            .await
            .unwrap();
        }
        sink.close().await;
        let text = read_all(dir.path());
        assert_eq!(text.lines().count(), 52);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() > 1);
        assert!(sink.write(batch("x")).await.is_err());
    }

    #[tokio::test]
    async fn a_restart_opens_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let sink = open(dir.path(), 1 << 20, None, &TaskTracker::new()).unwrap();
            sink.write(batch("{}")).await.unwrap();
            sink.close().await;
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(read_all(dir.path()).lines().count(), 2);
    }
}
