//! A remote backend (Redis, NATS) behind one writer and one local spool. The writer
//! takes every request queued behind the previous round trip as one group and sends it
//! to the backend, answering once the backend acknowledged all of it. When the backend
//! refuses or times out, the group goes to the spool (fsynced, so the 200 still means
//! durable) and, until the spool is empty again, so does every later group: at disk
//! speed, without touching the backend. A separate replayer task probes the backend
//! with backoff and replays the spool in order once it answers; the request path never
//! waits for a probe or a replay.
//!
//! With a dedup `Window` (the NATS sink; the Redis sink deduplicates in its own
//! script), each group is screened before it is sent or spooled, and its kept ids are
//! recorded once the backend or the spool acknowledged them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dedup::{screen_group, Window};
use super::pace::{Backoff, LogThrottle};
use super::queue::{refuse_rest, Group, Job, Queue};
use super::spool::{envelopes, Spool};
use super::{Batch, SinkError, SinkState, StateCell, Written};

/// Bytes one group gathers at most.
const GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait for the backend to acknowledge a group or a replay chunk.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Probe backoff while the backend is down.
const PROBE_FIRST: Duration = Duration::from_millis(50);
const PROBE_MAX: Duration = Duration::from_secs(2);
/// Envelopes sent in one round trip during a replay.
const REPLAY_CHUNK: usize = 1000;
/// Time the last replay at shutdown may take.
const FINAL_REPLAY_TIMEOUT: Duration = Duration::from_secs(5);
/// One log line per this period while the backend or the spool keeps failing.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// A failure reported by a backend (logged, never shown to clients).
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// What the writer and the replayer need of a remote log. Clones share one
/// connection; the writer and the replayer each hold one.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Name for logs ("Redis", "NATS").
    const NAME: &'static str;

    /// Stores the batches of a group; returns once all are acknowledged, with one
    /// receipt per batch, in order.
    fn send(
        &mut self,
        batches: &[&Batch],
    ) -> impl Future<Output = Result<Vec<Written>, BackendError>> + Send;

    /// Stores envelopes read back from the spool, in order.
    fn replay(&mut self, lines: &[&[u8]]) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Whether the backend takes writes (and is set up for them) now.
    fn probe(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Whether `send` deduplicates by fingerprint itself (so requests compute them).
    fn deduplicates(&self) -> bool {
        false
    }
}

/// Opens the spool in `dir` and starts the writer and the replayer on `tasks`. With
/// `start_spooling`, writes go to the spool until a probe succeeds. `close()` on the
/// queue finishes queued writes, lets the replayer make a last attempt, and stops.
pub async fn open<B: Backend>(
    backend: B,
    dir: &Path,
    start_spooling: bool,
    window: Option<Window>,
    tasks: &TaskTracker,
) -> std::io::Result<Queue> {
    let state = Arc::new(StateCell::new(SinkState::Direct));
    let (dir, cell) = (dir.to_path_buf(), state.clone());
    let spool = tokio::task::spawn_blocking(move || Spool::open(&dir, start_spooling, cell))
        .await
        .map_err(std::io::Error::other)??;
    let spool = Arc::new(spool);
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let replayer = Replayer {
        backend: backend.clone(),
        spool: spool.clone(),
        wake: wake.clone(),
        stop: stop.clone(),
        progress: None,
        log: LogThrottle::new(LOG_PERIOD),
    };
    let replaying = tasks.spawn(replayer.run());
    let fingerprint = window.is_some() || backend.deduplicates();
    let (queue, receiver) = Queue::new(state.clone(), fingerprint);
    let writer = Writer {
        backend,
        spool,
        state,
        wake,
        stop,
        replaying,
        log: LogThrottle::new(LOG_PERIOD),
        window,
    };
    tasks.spawn(writer.run(receiver));
    Ok(queue)
}

struct Writer<B> {
    backend: B,
    spool: Arc<Spool>,
    state: Arc<StateCell>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    replaying: JoinHandle<()>,
    log: LogThrottle,
    window: Option<Window>,
}

impl<B: Backend> Writer<B> {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        while let Some(first) = receiver.recv().await {
            let mut group = Group::gather(first, || receiver.try_recv().ok(), GROUP_BYTES);
            let outcome = self.commit(&mut group).await;
            if let Some(done) = group.answer(outcome) {
                refuse_rest(&mut receiver);
                self.stop.cancel();
                let _ = self.replaying.await;
                let _ = done.send(());
                return;
            }
        }
        self.stop.cancel();
    }

    /// Screens the group for duplicates, stores what is left, records its ids.
    async fn commit(&mut self, group: &mut Group) -> Result<Vec<Written>, SinkError> {
        let screened = screen_group(self.window.as_mut(), group).await;
        let written = if group.envelopes() == 0 {
            Vec::new()
        } else {
            self.store(group).await?
        };
        if let Some(window) = &mut self.window {
            window.record(&screened).await;
        }
        let mut receipts = screened.receipts(group.writes.len());
        for (receipt, backend) in receipts.iter_mut().zip(written) {
            receipt.duplicates += backend.duplicates;
        }
        Ok(receipts)
    }

    /// Straight to the backend when nothing is spooled; else, or if it fails, behind
    /// the spool.
    async fn store(&mut self, group: &mut Group) -> Result<Vec<Written>, SinkError> {
        if group.writes.is_empty() {
            return Ok(Vec::new());
        }
        if !self.spool.is_spooling() {
            let batches: Vec<&Batch> = group.batches().collect();
            match tokio::time::timeout(SEND_TIMEOUT, self.backend.send(&batches)).await {
                Ok(Ok(receipts)) => {
                    if self.log.recovered() {
                        tracing::info!(backend = B::NAME, "the backend takes events again");
                    }
                    self.state.set(SinkState::Direct);
                    return Ok(receipts);
                }
                Ok(Err(error)) => self.warn_refused(&*error),
                Err(_) => self.warn_refused(&"no acknowledgement in time"),
            }
        }
        self.spool_group(group).await
    }

    fn warn_refused(&mut self, error: &dyn std::fmt::Display) {
        if let Some(held_back) = self.log.allow() {
            tracing::warn!(backend = B::NAME, %error, failures_not_logged = held_back,
                "the backend refused events; spooling until it is back");
        }
    }

    /// Appends the group to the spool on a blocking thread.
    async fn spool_group(&mut self, group: &mut Group) -> Result<Vec<Written>, SinkError> {
        let count = group.envelopes() as u64;
        let batches: Vec<Batch> = group
            .writes
            .iter_mut()
            .map(|(batch, _)| std::mem::take(batch))
            .collect();
        let spool = self.spool.clone();
        let appended = tokio::task::spawn_blocking(move || {
            spool.append(batches.iter().map(Batch::lines), count)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
        match appended {
            Ok(()) => {
                self.wake.notify_one();
                Ok(vec![Written::default(); group.writes.len()])
            }
            Err(error) => {
                if let Some(held_back) = self.log.allow() {
                    tracing::error!(backend = B::NAME, %error, failures_not_logged = held_back,
                        "the backend and the spool both refuse events; answering 503");
                }
                self.state.set(SinkState::Refusing);
                Err(SinkError::unavailable(error))
            }
        }
    }
}

struct Replayer<B> {
    backend: B,
    spool: Arc<Spool>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    /// Envelopes of the oldest file already delivered (kept across failed attempts,
    /// so that a retry does not send them again).
    progress: Option<(PathBuf, usize)>,
    log: LogThrottle,
}

impl<B: Backend> Replayer<B> {
    async fn run(mut self) {
        let mut backoff = Backoff::new(PROBE_FIRST, PROBE_MAX);
        loop {
            if !self.spool.is_spooling() {
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = self.stop.cancelled() => return,
                }
            }
            match self.replay_all().await {
                Ok(()) => {
                    backoff.reset();
                    if self.log.recovered() {
                        tracing::info!(
                            backend = B::NAME,
                            "spool replayed; writing straight to the backend again"
                        );
                    }
                }
                Err(error) => {
                    if let Some(held_back) = self.log.allow() {
                        tracing::warn!(backend = B::NAME, %error, failures_not_logged = held_back,
                            "spool replay deferred; retrying with backoff");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.failed()) => {}
                        _ = self.stop.cancelled() => break,
                    }
                }
            }
            if self.stop.is_cancelled() {
                break;
            }
        }
        if self.spool.is_spooling() {
            let last = tokio::time::timeout(FINAL_REPLAY_TIMEOUT, self.replay_all()).await;
            if !matches!(last, Ok(Ok(()))) {
                tracing::warn!(
                    backend = B::NAME,
                    "stopping with events in the spool; they are replayed at the next start"
                );
            }
        }
    }

    /// Probes, then delivers every spooled file, oldest first, until none is left.
    async fn replay_all(&mut self) -> Result<(), BackendError> {
        tokio::time::timeout(PROBE_TIMEOUT, self.backend.probe())
            .await
            .map_err(|_| "no answer to the probe in time")??;
        loop {
            let spool = self.spool.clone();
            let files = tokio::task::spawn_blocking(move || spool.files_to_replay()).await??;
            if files.is_empty() {
                return Ok(());
            }
            for file in files {
                self.replay_file(file).await?;
            }
        }
    }

    async fn replay_file(&mut self, file: PathBuf) -> Result<(), BackendError> {
        let path = file.clone();
        let text = tokio::task::spawn_blocking(move || std::fs::read(path)).await??;
        let lines: Vec<&[u8]> = envelopes(&text).collect();
        let mut done = match &self.progress {
            Some((path, n)) if *path == file => *n,
            _ => 0,
        };
        while done < lines.len() {
            let end = (done + REPLAY_CHUNK).min(lines.len());
            tokio::time::timeout(SEND_TIMEOUT, self.backend.replay(&lines[done..end]))
                .await
                .map_err(|_| "no acknowledgement of a replay in time")??;
            self.spool.replayed((end - done) as u64);
            done = end;
            self.progress = Some((file.clone(), done));
        }
        let path = file.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await??;
        self.progress = None;
        Ok(())
    }
}
