//! Sinks: where accepted events become durable. A request's envelopes are handed over
//! as one `Batch`; `write` returns only once they are durable, which is what lets the
//! ingest path answer 200.

pub mod batch;
pub mod envelope;
pub mod log;
pub mod queue;
pub mod redis;
pub mod segments;

use thiserror::Error;

pub use batch::Batch;

/// Why a sink refused a write; the ingest path answers 503.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SinkError {
    /// The sink cannot take events now (disk error, closed, Redis and spool down).
    #[error("the event sink is unavailable: {0}")]
    Unavailable(String),
}

/// The configured sink.
pub enum Sink {
    /// NDJSON segments on the local disk.
    Log(log::LogSink),
    /// A Redis stream, with a local spool.
    Redis(redis::RedisSink),
}

impl Sink {
    /// Makes a request's envelopes durable.
    pub async fn write(&self, batch: Batch) -> Result<(), SinkError> {
        match self {
            Self::Log(sink) => sink.write(batch).await,
            Self::Redis(sink) => sink.write(batch).await,
        }
    }

    /// Whether the last write succeeded (for `/readyz`).
    pub fn is_writable(&self) -> bool {
        match self {
            Self::Log(sink) => sink.is_writable(),
            Self::Redis(sink) => sink.is_writable(),
        }
    }

    /// Finishes queued writes and stops; later writes are refused.
    pub async fn close(&self) {
        match self {
            Self::Log(sink) => sink.close().await,
            Self::Redis(sink) => sink.close().await,
        }
    }
}
