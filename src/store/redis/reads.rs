//! The [`Store`] operations of the Redis store: the streamed full load, reads, and the
//! entry points of commits and id sequences.

use std::sync::atomic::Ordering;

use redis::AsyncCommands;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{
    connection_keys, timed, workspace_connections, RedisStore, StoredWriteKey, API_KEYS,
    API_KEY_HASHES, COMPANIES, CONNECTIONS, SEQ_COMPANY, SEQ_WORKSPACE, VERSION, WORKSPACES,
    WRITE_KEYS,
};
use crate::index::feed::{FeedItem, Snapshot};
use crate::index::write_key_bytes;
use crate::model::{
    ApiKey, ApiKeyStatus, Company, Connection, EventSource, Id, KeyTarget, Workspace, WriteKey,
};
use crate::store::plan::{Plan, Sequence};
use crate::store::{Store, StoreError, StoreFuture};

/// Entries asked of each `HSCAN` round trip during a full load.
const SCAN_BATCH: usize = 10_000;

/// One field and value of a hash, as `HSCAN` returns them.
type RawEntry = (Vec<u8>, Vec<u8>);

/// The fields of a stored write key the full load needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTarget {
    workspace_id: Id,
    connection_id: Id,
    source: EventSource,
}

impl RedisStore {
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
        let mut snapshot = Snapshot {
            version: version.unwrap_or(0),
            ..Snapshot::default()
        };
        self.last_version
            .fetch_max(snapshot.version, Ordering::Relaxed);
        let write_keys = &mut snapshot.write_keys;
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
        let origins = &mut snapshot.origins;
        self.scan_hash(CONNECTIONS, |batch| {
            for (_, raw) in batch {
                let connection: Connection = serde_json::from_slice(&raw)?;
                if !connection.allowed_origins.is_empty() {
                    origins.push((connection.id, connection.allowed_origins));
                }
            }
            Ok(())
        })
        .await?;
        let companies: Vec<Company> = self.hvals(COMPANIES).await?;
        let operator = |id: Id| companies.iter().any(|c| c.id == id && c.operator);
        let api_keys = &mut snapshot.api_keys;
        self.scan_hash(API_KEYS, |batch| {
            for (_, raw) in batch {
                let key: ApiKey = serde_json::from_slice(&raw)?;
                if key.status == ApiKeyStatus::Active {
                    api_keys.push(key.auth(operator(key.company_id)));
                }
            }
            Ok(())
        })
        .await?;
        Ok(snapshot)
    }
}

impl Store for RedisStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(self.load_snapshot())
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    fn is_healthy(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    fn commit(&self, plan: Plan) -> StoreFuture<'_, u64> {
        Box::pin(self.commit_plan(plan))
    }

    fn next_id(&self, sequence: Sequence) -> StoreFuture<'_, Id> {
        let counter = match sequence {
            Sequence::Company => SEQ_COMPANY,
            Sequence::Workspace => SEQ_WORKSPACE,
        };
        Box::pin(async move {
            let id: u64 = timed(self.conn().incr(counter, 1)).await?;
            Id::try_from(id).map_err(|_| StoreError::internal(format!("{counter} overflowed")))
        })
    }

    fn companies(&self) -> StoreFuture<'_, Vec<Company>> {
        Box::pin(async move {
            let mut all: Vec<Company> = self.hvals(COMPANIES).await?;
            all.sort_by_key(|c| c.id);
            Ok(all)
        })
    }

    fn company(&self, id: Id) -> StoreFuture<'_, Option<Company>> {
        Box::pin(async move { self.hget(COMPANIES, &id.to_string()).await })
    }

    fn workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>> {
        Box::pin(async move {
            let mut all: Vec<Workspace> = self.hvals(WORKSPACES).await?;
            all.retain(|w| w.company_id == company);
            all.sort_by_key(|w| w.id);
            Ok(all)
        })
    }

    fn workspace(&self, id: Id) -> StoreFuture<'_, Option<Workspace>> {
        Box::pin(async move { self.hget(WORKSPACES, &id.to_string()).await })
    }

    fn connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>> {
        Box::pin(async move {
            let ids: Vec<String> =
                timed(self.conn().smembers(workspace_connections(workspace))).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<Option<String>> = timed(
                redis::cmd("HMGET")
                    .arg(CONNECTIONS)
                    .arg(&ids)
                    .query_async(&mut self.conn()),
            )
            .await?;
            let mut all: Vec<Connection> = raw
                .into_iter()
                .flatten()
                .map(|r| serde_json::from_str(&r))
                .collect::<Result<_, _>>()?;
            all.sort_by_key(|c| (c.created_at, c.id));
            Ok(all)
        })
    }

    fn connection(&self, id: Id) -> StoreFuture<'_, Option<Connection>> {
        Box::pin(async move { self.hget(CONNECTIONS, &id.to_string()).await })
    }

    fn write_keys(&self, connection: Id) -> StoreFuture<'_, Vec<WriteKey>> {
        Box::pin(async move {
            let keys: Vec<String> =
                timed(self.conn().lrange(connection_keys(connection), 0, -1)).await?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<Option<String>> = timed(
                redis::cmd("HMGET")
                    .arg(WRITE_KEYS)
                    .arg(&keys)
                    .query_async(&mut self.conn()),
            )
            .await?;
            let mut out = Vec::with_capacity(keys.len());
            for (key, raw) in keys.into_iter().zip(raw) {
                if let Some(raw) = raw {
                    let stored: StoredWriteKey = serde_json::from_str(&raw)?;
                    out.push(WriteKey {
                        key,
                        created_at: stored.created_at,
                    });
                }
            }
            Ok(out)
        })
    }

    fn api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>> {
        Box::pin(async move {
            let mut all: Vec<ApiKey> = self.hvals(API_KEYS).await?;
            all.retain(|k| k.company_id == company);
            Ok(all)
        })
    }

    fn api_key(&self, id: String) -> StoreFuture<'_, Option<ApiKey>> {
        Box::pin(async move { self.hget(API_KEYS, &id).await })
    }

    fn api_key_by_hash(&self, hash_hex: String) -> StoreFuture<'_, Option<ApiKey>> {
        Box::pin(async move {
            let id: Option<String> = timed(self.conn().hget(API_KEY_HASHES, &hash_hex)).await?;
            match id {
                Some(id) => self.hget(API_KEYS, &id).await,
                None => Ok(None),
            }
        })
    }

    fn has_api_keys(&self) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let count: u64 = timed(self.conn().hlen(API_KEYS)).await?;
            Ok(count > 0)
        })
    }
}
