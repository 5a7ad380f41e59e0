//! Sinks: where accepted events become durable. A request's envelopes are handed over
//! as one `Batch`; `write` returns only once they are durable, which is what lets the
//! ingest path answer 200.
//!
//! Layout: `log` (local NDJSON segments) stands alone; `redis` and `nats` are
//! `Backend`s behind one spooled writer (`spooled`), which owns the local spool, its
//! replay and the probe of the backend; `memory` is a test double reachable only
//! through `app::start_with_sink`. `queue` groups concurrent requests for one writer,
//! `segments` is the append-only file format the log and the spool share,
//! `batch_thread` the scheduling policy of the log's writer thread, `dedup` the
//! messageId window every writer screens its groups against, and `lazy_redis` the
//! Redis connection the stream backend and the dedup window open.

pub mod batch;
pub mod batch_thread;
pub mod dedup;
pub mod envelope;
mod lazy_redis;
pub mod log;
pub mod memory;
pub mod nats;
pub mod nats_url;
mod pace;
pub mod queue;
pub mod redis;
pub mod segments;
pub mod spool;
pub mod spooled;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::Context;
use thiserror::Error;
use tokio_util::task::TaskTracker;

use crate::config::{Settings, SinkBackend, StoreBackend};
use dedup::{Buckets, Window};

pub use batch::Batch;

/// Why a sink refused a write; the ingest path answers 503 with a fixed sentence and
/// logs the cause.
#[derive(Debug, Error, Clone)]
pub enum SinkError {
    /// The sink cannot take events now (disk error, backend and spool both down).
    #[error("the event sink cannot store events now")]
    Unavailable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The sink was closed by a shutdown.
    #[error("the event sink is closed")]
    Closed,
}

impl SinkError {
    /// Wraps the cause of a refusal.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Arc::new(cause))
    }
}

/// What a sink did with one request's envelopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Envelopes not stored again because their messageId was already stored (the
    /// dedup window's, or NATS's own duplicate window's, verdict).
    pub duplicates: usize,
}

/// Where the sink's writes go now (`/readyz`, the `intake_sink_state` gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SinkState {
    /// Writes reach their destination (the log, Redis, NATS).
    Direct = 0,
    /// The backend is unreachable or behind; writes go to the local spool.
    Spooling = 1,
    /// The last write was refused (503s): disk error, or backend and spool both down.
    Refusing = 2,
}

impl SinkState {
    /// The lower-case name `/readyz` shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "ok",
            Self::Spooling => "spooling",
            Self::Refusing => "refusing",
        }
    }
}

/// A sink's state, shared by its tasks and mirrored into the gauge.
#[derive(Debug)]
pub struct StateCell(AtomicU8);

impl StateCell {
    /// Starts as `state`.
    pub fn new(state: SinkState) -> Self {
        crate::telemetry::record_sink_state(state as u8);
        Self(AtomicU8::new(state as u8))
    }

    /// The state now.
    pub fn get(&self) -> SinkState {
        match self.0.load(Ordering::Relaxed) {
            0 => SinkState::Direct,
            1 => SinkState::Spooling,
            _ => SinkState::Refusing,
        }
    }

    /// Changes the state (and the gauge when it changed).
    pub fn set(&self, state: SinkState) {
        if self.0.swap(state as u8, Ordering::Relaxed) != state as u8 {
            crate::telemetry::record_sink_state(state as u8);
        }
    }
}

/// The configured sink.
pub enum Sink {
    /// NDJSON segments on the local disk.
    Log(queue::Queue),
    /// A Redis stream, with a local spool.
    Redis(queue::Queue),
    /// A NATS JetStream stream, with a local spool.
    Nats(queue::Queue),
    /// Envelopes in memory (tests only; no setting selects it).
    Memory(memory::MemorySink),
}

impl Sink {
    /// Makes a request's envelopes durable.
    pub async fn write(&self, batch: Batch) -> Result<Written, SinkError> {
        match self {
            Self::Log(sink) | Self::Redis(sink) | Self::Nats(sink) => sink.write(batch).await,
            Self::Memory(sink) => sink.write(batch),
        }
    }

    /// Where writes go now (for `/readyz`).
    pub fn state(&self) -> SinkState {
        match self {
            Self::Log(sink) | Self::Redis(sink) | Self::Nats(sink) => sink.state(),
            Self::Memory(sink) => sink.state(),
        }
    }

    /// Finishes queued writes and stops; later writes are refused.
    pub async fn close(&self) {
        match self {
            Self::Log(sink) | Self::Redis(sink) | Self::Nats(sink) => sink.close().await,
            Self::Memory(sink) => sink.close(),
        }
    }
}

/// Opens the configured sink; its background tasks run on `tasks`.
pub async fn open(settings: &Settings, tasks: &TaskTracker) -> anyhow::Result<Sink> {
    let spool_dir = &settings.sink.spool_dir;
    let buckets = Buckets::new(settings.dedup.window_secs);
    Ok(match settings.sink.backend {
        SinkBackend::Log => {
            let dir = settings.store.data_dir.join("events");
            let window = window(settings, buckets, Some(&dir))?;
            Sink::Log(
                log::open(&dir, settings.sink.segment_bytes, window, tasks)
                    .with_context(|| format!("opening the event log in {}", dir.display()))?,
            )
        }
        SinkBackend::Redis => {
            let backend = redis::RedisBackend::new(
                settings.store.redis_url.connection_info(),
                &settings.sink.stream,
                buckets,
            )
            .context("sink: opening the Redis stream sink")?;
            Sink::Redis(
                spooled::open(backend, spool_dir, false, None, tasks)
                    .await
                    .context("sink: opening the spool of the Redis stream sink")?,
            )
        }
        SinkBackend::Nats => {
            let window = window(settings, buckets, None)?;
            let (backend, reachable) = nats::NatsBackend::connect(&settings.sink).await?;
            Sink::Nats(
                spooled::open(backend, spool_dir, !reachable, window, tasks)
                    .await
                    .context("sink: opening the spool of the NATS sink")?,
            )
        }
    })
}

/// The dedup window a log or NATS sink screens against: in Redis with the Redis
/// store, else in memory (rebuilt from `log_dir` when the events are there).
fn window(
    settings: &Settings,
    buckets: Option<Buckets>,
    log_dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<Window>> {
    let Some(buckets) = buckets else {
        return Ok(None);
    };
    let store = match settings.store.backend {
        StoreBackend::Redis => dedup::Store::Redis(
            dedup::redis::RedisWindow::new(settings.store.redis_url.connection_info(), buckets)
                .context("dedup: opening the window in Redis")?,
        ),
        StoreBackend::Embedded => {
            let mut memory = dedup::memory::MemoryWindow::new(buckets, settings.dedup.max_entries);
            if let Some(dir) = log_dir.filter(|dir| dir.is_dir()) {
                let started = std::time::Instant::now();
                let loaded = memory.rebuild_from_log(dir).with_context(|| {
                    format!("dedup: reading the event log in {}", dir.display())
                })?;
                tracing::info!(
                    ids = loaded,
                    seconds = started.elapsed().as_secs_f64(),
                    "dedup window rebuilt from the event log"
                );
            }
            dedup::Store::Memory(memory)
        }
    };
    Ok(Some(Window::new(store)))
}
