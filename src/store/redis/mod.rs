//! The Redis store: the shared source of truth for any number of nodes. Every mutation
//! is one Lua script (data + `intake:version` + `PUBLISH intake:changes`); reads are
//! plain commands; the full load scans with `HSCAN`. A subscriber task forwards the
//! channel to the index and asks for a full reload after any reconnect.
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

mod feed;
mod ops;
mod scripts;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::feed::{Change, FeedItem, Snapshot};
use super::{auth_of, StoreError, Written};
use crate::clock::{self, millis};
use crate::index::{write_key_bytes, KeyTarget};
use crate::model::{ApiKey, ApiKeyStatus, Company, Connection, EventSource, Id, WriteKeyRecord};
use crate::secrets;
use scripts::Scripts;

pub(crate) use crate::model::MAX_WRITE_KEYS_PER_CONNECTION;

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
pub const CHANNEL: &str = "intake:changes";

/// Entries asked of each `HSCAN` round trip during a full load.
const SCAN_BATCH: usize = 10_000;
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

/// The fields of a stored write key the full load needs, borrowed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTarget {
    workspace_id: Id,
    connection_id: Id,
    source: EventSource,
}

/// One field and value of a hash, as `HSCAN` returns them.
type RawEntry = (Vec<u8>, Vec<u8>);

/// The Redis-backed store.
pub struct RedisStore {
    connection: ConnectionManager,
    scripts: Scripts,
    feed: broadcast::Sender<FeedItem>,
    /// Whether the change-feed subscription is up.
    subscribed: Arc<AtomicBool>,
}

impl StoreError {
    fn redis(error: redis::RedisError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl RedisStore {
    /// Connects, subscribes to the change channel, and starts following it.
    pub async fn connect(url: &crate::config::RedisUrl) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.connection_info()).map_err(StoreError::redis)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            OPERATION_TIMEOUT,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Unavailable(format!("no answer from {url}")))?
        .map_err(StoreError::redis)?;
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let subscribed = Arc::new(AtomicBool::new(false));
        feed::start(client, feed.clone(), subscribed.clone()).await?;
        Ok(Self {
            connection,
            scripts: Scripts::new(),
            feed,
            subscribed,
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs a mutation script; maps its `E:<variant>` answers to errors.
    async fn run(&self, script: &redis::Script, args: Vec<String>) -> Result<u64, StoreError> {
        let mut invocation = script.prepare_invoke();
        for arg in &args {
            invocation.arg(arg);
        }
        let mut conn = self.conn();
        let answer: String = timed(invocation.invoke_async(&mut conn)).await?;
        if let Some(version) = answer.strip_prefix("OK:") {
            return version
                .parse()
                .map_err(|_| StoreError::Internal(format!("script answered {answer}")));
        }
        Err(match answer.as_str() {
            "E:CompanyNotFound" => StoreError::CompanyNotFound,
            "E:WorkspaceNotFound" => StoreError::WorkspaceNotFound,
            "E:ConnectionNotFound" => StoreError::ConnectionNotFound,
            "E:WriteKeyNotFound" => StoreError::WriteKeyNotFound,
            "E:ApiKeyNotFound" => StoreError::ApiKeyNotFound,
            "E:TooManyWriteKeys" => StoreError::TooManyWriteKeys,
            "E:LastWriteKey" => StoreError::LastWriteKey,
            "E:NotEventConnection" => StoreError::NotEventConnection,
            "E:Conflict" | "E:Retry" => StoreError::Conflict,
            other => StoreError::Internal(format!("script answered {other}")),
        })
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

    async fn next_id(&self, counter: &str) -> Result<Id, StoreError> {
        let id: u64 = timed(self.conn().incr(counter, 1)).await?;
        Id::try_from(id).map_err(|_| StoreError::Internal(format!("{counter} overflowed")))
    }

    async fn is_operator(&self, company: Id) -> Result<bool, StoreError> {
        let company: Option<Company> = self.hget(COMPANIES, &company.to_string()).await?;
        Ok(company.is_some_and(|c| c.operator))
    }

    /// The change an API key's new state means for the index.
    async fn api_key_change(&self, key: &ApiKey) -> Result<String, StoreError> {
        let change = match key.status {
            ApiKeyStatus::Active => Change::ApiKeyPut {
                auth: auth_of(key, self.is_operator(key.company_id).await?),
            },
            ApiKeyStatus::Inactive => Change::ApiKeyRevoked {
                hash: key.key_hash.clone(),
            },
        };
        Ok(serde_json::to_string(&change)?)
    }

    /// Every entry of a hash, `SCAN_BATCH` at a time, handed to `each` batch by batch
    /// so that the raw replies never pile up.
    async fn scan_hash(
        &self,
        hash: &str,
        mut each: impl FnMut(Vec<RawEntry>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<RawEntry>) = timed(
                redis::cmd("HSCAN")
                    .arg(hash)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_BATCH)
                    .query_async(&mut conn),
            )
            .await?;
            each(batch)?;
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        // The version first: everything up to it is in the data scanned below; later
        // changes also arrive on the feed and re-applying them is harmless.
        let version: Option<u64> = timed(self.conn().get(VERSION)).await?;
        let mut write_keys = Vec::new();
        self.scan_hash(WRITE_KEYS, |batch| {
            write_keys.reserve(batch.len());
            for (key, raw) in batch {
                let Some(key) = std::str::from_utf8(&key).ok().and_then(write_key_bytes) else {
                    continue;
                };
                let stored: StoredTarget = serde_json::from_slice(&raw)?;
                let target = KeyTarget {
                    workspace_id: stored.workspace_id,
                    connection_id: stored.connection_id,
                    source: stored.source,
                };
                write_keys.push((key, target));
            }
            Ok(())
        })
        .await?;
        let companies: Vec<Company> = self.hvals(COMPANIES).await?;
        let mut api_keys = Vec::new();
        self.scan_hash(API_KEYS, |batch| {
            for (_, raw) in batch {
                let key: ApiKey = serde_json::from_slice(&raw)?;
                if key.status == ApiKeyStatus::Active {
                    let operator = companies
                        .iter()
                        .any(|c| c.id == key.company_id && c.operator);
                    api_keys.push(auth_of(&key, operator));
                }
            }
            Ok(())
        })
        .await?;
        Ok(Snapshot {
            version: version.unwrap_or(0),
            write_keys,
            api_keys,
        })
    }

    fn new_write_key(target: KeyTarget) -> Result<(String, String, String), StoreError> {
        let key = secrets::new_write_key();
        let stored = serde_json::to_string(&StoredWriteKey {
            workspace_id: target.workspace_id,
            connection_id: target.connection_id,
            source: target.source,
            created_at: clock::now(),
        })?;
        let change = serde_json::to_string(&Change::WriteKeyAdded {
            key: key.clone(),
            target,
        })?;
        Ok((key, stored, change))
    }

    async fn connection_record(&self, workspace: Id, id: Id) -> Result<Connection, StoreError> {
        let connection: Connection = self
            .hget(CONNECTIONS, &id.to_string())
            .await?
            .filter(|c: &Connection| c.workspace_id == workspace)
            .ok_or(StoreError::ConnectionNotFound)?;
        let keys: Vec<String> = timed(self.conn().lrange(
            format!("intake:connection-keys:{id}"),
            0,
            -1,
        ))
        .await?;
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(stored) = self.hget::<StoredWriteKey>(WRITE_KEYS, &key).await? {
                records.push(WriteKeyRecord {
                    key,
                    created_at: stored.created_at,
                });
            }
        }
        Ok(Connection {
            keys: records,
            ..connection
        })
    }
}

/// Bounds a Redis call: an unreachable Redis is an `Unavailable` error, not a hang.
async fn timed<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
        Ok(result) => result.map_err(StoreError::redis),
        Err(_) => Err(StoreError::Unavailable(
            "Redis did not answer in time".into(),
        )),
    }
}

fn written<T>(value: T, version: u64) -> Written<T> {
    Written { value, version }
}
