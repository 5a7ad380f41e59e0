//! The Redis stream backend: `XADD <stream> * data <envelope>`, one pipeline for a
//! whole group of requests, acknowledged as a whole. The spool, its replay and the
//! probe live in `spooled`. The group write is one function (`send`), so that a
//! version that checks and records messageIds in one script (issue 14) replaces it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::spooled::{Backend, BackendError};
use super::{Batch, Written};

/// Longest wait for Redis to answer one command or pipeline.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A shared connection to the stream's Redis.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    stream: String,
}

impl RedisBackend {
    /// Connects lazily: a Redis that is down at start-up means spooling, not failing.
    pub fn new(url: redis::ConnectionInfo, stream: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            stream: stream.to_string(),
        })
    }

    /// One pipeline of `XADD`s, acknowledged as a whole.
    async fn xadd<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), BackendError> {
        let mut pipe = redis::pipe();
        for line in lines {
            pipe.cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("data")
                .arg(line)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection).await?;
        Ok(())
    }
}

impl Backend for RedisBackend {
    const NAME: &'static str = "Redis";

    async fn send(&mut self, batches: &[&Batch]) -> Result<Vec<Written>, BackendError> {
        let lines = batches
            .iter()
            .flat_map(|batch| batch.entries())
            .map(|entry| entry.line);
        self.xadd(lines).await?;
        Ok(vec![Written::default(); batches.len()])
    }

    async fn replay(&mut self, lines: &[&[u8]]) -> Result<(), BackendError> {
        self.xadd(lines.iter().copied()).await
    }

    async fn probe(&mut self) -> Result<(), BackendError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection)
            .await?;
        Ok(())
    }
}
