//! The Redis store: the shared source of truth for any number of nodes. A commit is
//! one generic Lua script (`commit.lua`) that checks the plan's preconditions, applies
//! its writes, increments `intake:version` and publishes the change message it was
//! given, all atomically; reads are plain commands; the full load scans with `HSCAN`.
//! A follower task forwards the channel to the index and asks for a full reload after
//! any reconnect or unreadable message.
//!
//! Layout (all keys of one Redis database; not for Redis Cluster, whose scripts may
//! only touch one slot):
//! - `intake:version`: store version; `intake:changes`: the change channel.
//! - `intake:seq:company`, `intake:seq:workspace`: id counters.
//! - `intake:companies`, `intake:workspaces`, `intake:connections`,
//!   `intake:api-keys`: hashes id → JSON record.
//! - `intake:api-key-hashes`: hash hex SHA-256 → API key id.
//! - `intake:write-keys`: hash write key → `{workspaceId, connectionId, source, createdAt}`.
//! - `intake:connection-keys:<id>`: list of a connection's keys, oldest first.
//! - `intake:workspace-connections:<id>`: set of a workspace's connection ids.

mod commit;
mod feed;
mod reads;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{Cause, StoreError};
use crate::clock::millis;
use crate::config::RedisUrl;
use crate::index::feed::FeedItem;
use crate::model::{EventSource, Id};
use crate::tasks::Tasks;

const VERSION: &str = "intake:version";
const SEQ_COMPANY: &str = "intake:seq:company";
const SEQ_WORKSPACE: &str = "intake:seq:workspace";
const COMPANIES: &str = "intake:companies";
const WORKSPACES: &str = "intake:workspaces";
const CONNECTIONS: &str = "intake:connections";
const WRITE_KEYS: &str = "intake:write-keys";
const API_KEYS: &str = "intake:api-keys";
const API_KEY_HASHES: &str = "intake:api-key-hashes";
/// The change channel.
const CHANNEL: &str = "intake:changes";

fn connection_keys(connection: Id) -> String {
    format!("intake:connection-keys:{connection}")
}

fn workspace_connections(workspace: Id) -> String {
    format!("intake:workspace-connections:{workspace}")
}

/// Longest a store operation may take before it counts as Redis being down.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// Subscribers that fall this far behind reload in full.
const FEED_CAPACITY: usize = 4096;

/// A write key as stored in `intake:write-keys` (flat fields: the full load parses a
/// million of these, and serde's `flatten` would buffer each one).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredWriteKey {
    workspace_id: Id,
    connection_id: Id,
    source: EventSource,
    #[serde(with = "millis")]
    created_at: OffsetDateTime,
}

/// The Redis-backed store.
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    commit_script: redis::Script,
    feed: broadcast::Sender<FeedItem>,
    /// Whether the change-feed subscription is up.
    subscribed: Arc<AtomicBool>,
    /// The last store version seen: the first guess of the next commit's base.
    last_version: AtomicU64,
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

impl RedisStore {
    /// Connects, subscribes to the change channel, and starts following it under
    /// `tasks`.
    pub(crate) async fn connect(url: &RedisUrl, tasks: &Tasks) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.connection_info()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            OPERATION_TIMEOUT,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("Redis did not answer in time".into()))?
        .map_err(unavailable)?;
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let subscribed = Arc::new(AtomicBool::new(false));
        feed::start(client, feed.clone(), subscribed.clone(), tasks).await?;
        Ok(Self {
            connection,
            commit_script: commit::script(),
            feed,
            subscribed,
            last_version: AtomicU64::new(0),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }

    async fn hget<T: serde::de::DeserializeOwned>(
        &self,
        hash: &str,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = timed(self.conn().hget(hash, field)).await?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    async fn hvals<T: serde::de::DeserializeOwned>(
        &self,
        hash: &str,
    ) -> Result<Vec<T>, StoreError> {
        let raw: Vec<String> = timed(self.conn().hvals(hash)).await?;
        Ok(raw
            .iter()
            .map(|r| serde_json::from_str(r))
            .collect::<Result<_, _>>()?)
    }
}

/// Bounds a Redis call: an unreachable Redis is an `Unavailable` error, not a hang.
async fn timed<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(StoreError::Unavailable(Cause::from(
            "Redis did not answer in time",
        ))),
    }
}
