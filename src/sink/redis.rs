//! The Redis stream sink: `XADD <stream> * data <envelope>`, pipelined across every
//! request queued while the previous round trip ran, answering only after Redis
//! acknowledged. When Redis cannot take them, the envelopes go to a local spool
//! (fsynced, so the 200 still means durable); while the spool holds anything, new
//! envelopes are appended behind it, and the spool is replayed into the stream in
//! order once Redis answers again, each segment removed once it is all in.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::queue::{refuse_rest, Group, Job, Queue};
use super::segments::Segments;
use super::{Batch, SinkError};

/// Bytes one group gathers at most.
const GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait for Redis to acknowledge a pipeline.
const XADD_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a replay of the spool is tried while it holds anything.
const REPLAY_PERIOD: Duration = Duration::from_millis(200);
/// Envelopes sent in one pipeline during a replay.
const REPLAY_CHUNK: usize = 1000;
/// Spool segments roll at this size.
const SPOOL_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Handle to the writer task.
pub struct RedisSink {
    queue: Queue,
    writable: Arc<AtomicBool>,
    spooled: Arc<AtomicU64>,
}

impl RedisSink {
    /// Connects (lazily: a down Redis at start-up means spooling) and starts the writer.
    pub fn open(
        url: redis::ConnectionInfo,
        stream: String,
        spool_dir: &Path,
    ) -> Result<Self, SinkError> {
        std::fs::create_dir_all(spool_dir).map_err(|e| unavailable("creating the spool", &e))?;
        let segments = Segments::new(spool_dir.to_path_buf(), SPOOL_SEGMENT_BYTES)
            .map_err(|e| unavailable("opening the spool", &e))?;
        let client = redis::Client::open(url).map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(XADD_TIMEOUT))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let (queue, receiver) = Queue::new();
        let writable = Arc::new(AtomicBool::new(true));
        let spooled = Arc::new(AtomicU64::new(0));
        let mut writer = Writer {
            connection,
            stream,
            spool: Spool::new(segments),
            writable: writable.clone(),
            spooled: spooled.clone(),
            last_replay: None,
        };
        writer.spool.depth = writer.spool.count_spooled();
        writer.spool.pending = writer.spool.depth > 0;
        crate::telemetry::record_spool(0, writer.spool.depth);
        tokio::spawn(writer.run(receiver));
        Ok(Self {
            queue,
            writable,
            spooled,
        })
    }

    /// Makes the batch durable: in the stream, or in the spool.
    pub async fn write(&self, batch: Batch) -> Result<(), SinkError> {
        self.queue.write(batch).await
    }

    /// Whether the last write was made durable.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// Envelopes written to the spool since start (for operators and tests).
    pub fn spooled(&self) -> u64 {
        self.spooled.load(Ordering::Relaxed)
    }

    /// Finishes queued writes, tries a last replay, and stops.
    pub async fn close(&self) {
        self.queue.close().await
    }
}

fn unavailable(what: &str, error: &dyn std::fmt::Display) -> SinkError {
    SinkError::Unavailable(format!("{what}: {error}"))
}

struct Writer {
    connection: ConnectionManager,
    stream: String,
    spool: Spool,
    writable: Arc<AtomicBool>,
    spooled: Arc<AtomicU64>,
    last_replay: Option<Instant>,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        loop {
            let first = if self.spool.pending {
                match tokio::time::timeout(REPLAY_PERIOD, receiver.recv()).await {
                    Ok(job) => job,
                    Err(_) => {
                        self.replay_if_due().await;
                        continue;
                    }
                }
            } else {
                receiver.recv().await
            };
            let Some(first) = first else { return };
            let group = Group::gather(first, || receiver.try_recv().ok(), GROUP_BYTES);
            self.replay_if_due().await;
            let result = self.commit(&group).await;
            if let Some(done) = group.answer(&result) {
                self.last_replay = None;
                self.replay_if_due().await;
                refuse_rest(&mut receiver);
                let _ = done.send(());
                return;
            }
        }
    }

    /// Straight to the stream when nothing is spooled; else, or if Redis fails, behind
    /// the spool.
    async fn commit(&mut self, group: &Group) -> Result<(), SinkError> {
        if group.writes.is_empty() {
            return Ok(());
        }
        if !self.spool.pending {
            let lines: Vec<&[u8]> = group
                .batches()
                .flat_map(Batch::entries)
                .map(|entry| entry.line)
                .collect();
            match xadd(&mut self.connection, &self.stream, lines.into_iter()).await {
                Ok(()) => {
                    self.writable.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => tracing::warn!(%error, "Redis refused events; spooling them"),
            }
        }
        let count: usize = group.batches().map(Batch::len).sum();
        let result = self
            .spool
            .append(group.buffers())
            .map_err(|e| unavailable("Redis is unreachable and the spool refused", &e));
        if result.is_ok() {
            self.spooled.fetch_add(count as u64, Ordering::Relaxed);
            self.spool.depth += count as u64;
            crate::telemetry::record_spool(count as u64, self.spool.depth);
        }
        self.writable.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    async fn replay_if_due(&mut self) {
        if !self.spool.pending
            || self
                .last_replay
                .is_some_and(|t| t.elapsed() < REPLAY_PERIOD)
        {
            return;
        }
        self.last_replay = Some(Instant::now());
        match self.spool.replay(&mut self.connection, &self.stream).await {
            Ok(()) => {
                crate::telemetry::record_spool(0, 0);
                tracing::info!("spool replayed into the stream");
            }
            Err(error) => tracing::debug!(%error, "spool replay deferred"),
        }
    }
}

/// The envelopes of a buffer of newline-terminated lines.
fn envelopes(buffer: &[u8]) -> impl Iterator<Item = &[u8]> {
    buffer.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// One pipeline of `XADD`s, acknowledged as a whole.
async fn xadd<'a>(
    connection: &mut ConnectionManager,
    stream: &str,
    lines: impl Iterator<Item = &'a [u8]>,
) -> Result<(), redis::RedisError> {
    let mut pipe = redis::pipe();
    for line in lines {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("data")
            .arg(line)
            .ignore();
    }
    match tokio::time::timeout(XADD_TIMEOUT, pipe.query_async::<()>(connection)).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not acknowledge in time",
        ))),
    }
}

/// The spool: segments, and how far the oldest one has been replayed.
struct Spool {
    segments: Segments,
    /// Whether anything is spooled and not yet replayed.
    pending: bool,
    /// Envelopes spooled and not yet replayed.
    depth: u64,
    /// Lines of the oldest file already in the stream (kept across failed replays to
    /// limit duplicates).
    replayed: Option<(PathBuf, usize)>,
}

impl Spool {
    fn new(segments: Segments) -> Self {
        Self {
            segments,
            pending: false,
            depth: 0,
            replayed: None,
        }
    }

    /// Envelopes in the spool files (at start-up, left by an earlier run).
    fn count_spooled(&self) -> u64 {
        let files = self.segments.files().unwrap_or_default();
        files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(|text| envelopes(&text).count() as u64)
            .sum()
    }

    fn append<'a>(&mut self, buffers: impl Iterator<Item = &'a [u8]>) -> std::io::Result<()> {
        self.segments.append(buffers)?;
        self.pending = true;
        Ok(())
    }

    /// Sends every spooled envelope, oldest first, removing each file once it is in.
    async fn replay(
        &mut self,
        connection: &mut ConnectionManager,
        stream: &str,
    ) -> Result<(), redis::RedisError> {
        self.segments.seal()?;
        for file in self.segments.files()? {
            let text = std::fs::read(&file)?;
            let lines: Vec<&[u8]> = envelopes(&text).collect();
            let mut done = match &self.replayed {
                Some((path, n)) if *path == file => *n,
                _ => 0,
            };
            while done < lines.len() {
                let end = (done + REPLAY_CHUNK).min(lines.len());
                xadd(connection, stream, lines[done..end].iter().copied()).await?;
                done = end;
                self.replayed = Some((file.clone(), done));
            }
            std::fs::remove_file(&file)?;
            self.replayed = None;
        }
        self.pending = false;
        self.depth = 0;
        Ok(())
    }
}
