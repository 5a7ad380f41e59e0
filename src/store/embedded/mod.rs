//! The embedded store: one redb file under `data_dir`, for a single node with no
//! server. Each mutation is one serialised write transaction that also bumps the store
//! version; once committed, its changes go to subscribers over a broadcast channel, in
//! version order (the send happens under the same lock as the commit).

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::broadcast;

mod ops;

use super::feed::{Change, ChangeMessage, FeedItem};
use super::{auth_of, StoreError, StoreFuture, Written};
use crate::model::{ApiKey, ApiKeyStatus, Company, Connection, Id, Workspace};

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const COMPANIES: TableDefinition<u32, &[u8]> = TableDefinition::new("companies");
pub(super) const WORKSPACES: TableDefinition<u32, &[u8]> = TableDefinition::new("workspaces");
pub(super) const CONNECTIONS: TableDefinition<u32, &[u8]> = TableDefinition::new("connections");
/// (workspace id, connection id): lists a workspace's connections without a scan.
pub(super) const WORKSPACE_CONNECTIONS: TableDefinition<(u32, u32), ()> =
    TableDefinition::new("workspace_connections");
pub(super) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Hex digest → API key id.
pub(super) const API_KEY_HASHES: TableDefinition<&str, &str> =
    TableDefinition::new("api_key_hashes");

pub(super) const VERSION: &str = "version";
pub(super) const NEXT_COMPANY: &str = "next_company";
pub(super) const NEXT_WORKSPACE: &str = "next_workspace";

/// Subscribers that fall this far behind are told to reload in full.
const FEED_CAPACITY: usize = 1024;

/// The redb-backed store.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    feed: broadcast::Sender<FeedItem>,
    /// Held from the start of a write transaction until its changes are sent, so that
    /// subscribers see versions in order.
    write_lock: Mutex<()>,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Internal(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

impl EmbeddedStore {
    /// Opens (or creates) `<data_dir>/intake.redb`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Internal(format!("{}: {e}", data_dir.display())))?;
        let db = Database::create(data_dir.join("intake.redb"))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(COMPANIES)?;
            txn.open_table(WORKSPACES)?;
            txn.open_table(CONNECTIONS)?;
            txn.open_table(WORKSPACE_CONNECTIONS)?;
            txn.open_table(API_KEYS)?;
            txn.open_table(API_KEY_HASHES)?;
        }
        txn.commit()?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                feed: broadcast::channel(FEED_CAPACITY).0,
                write_lock: Mutex::new(()),
            }),
        })
    }

    pub(super) fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&inner.db.begin_read()?))
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))?
        })
    }

    pub(super) fn mutate<T: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, Written<T>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let _serial = inner.write_lock.lock().unwrap_or_else(|p| p.into_inner());
                let txn = inner.db.begin_write()?;
                let mut changes = Vec::new();
                let value = f(&txn, &mut changes)?;
                let version = next_counter(&txn, VERSION)?;
                txn.commit()?;
                let message = Arc::new(ChangeMessage { version, changes });
                // No subscriber is fine: the index reloads in full when it starts.
                let _ = inner.feed.send(FeedItem::Changes(message));
                Ok(Written { value, version })
            })
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
        })
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

pub(super) fn get_by_id<T: DeserializeOwned>(
    table: &impl ReadableTable<u32, &'static [u8]>,
    id: Id,
) -> Result<Option<T>, StoreError> {
    table.get(id)?.map(|v| decode(v.value())).transpose()
}

pub(super) fn all<T: DeserializeOwned>(
    table: &impl ReadableTable<u32, &'static [u8]>,
) -> Result<Vec<T>, StoreError> {
    table.iter()?.map(|row| decode(row?.1.value())).collect()
}

/// Increments a counter in META and returns the new value.
pub(super) fn next_counter(txn: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let next = meta.get(name)?.map_or(0, |v| v.value()) + 1;
    meta.insert(name, next)?;
    Ok(next)
}

pub(super) fn next_id(txn: &WriteTransaction, name: &str) -> Result<Id, StoreError> {
    Id::try_from(next_counter(txn, name)?)
        .map_err(|_| StoreError::Internal(format!("{name} overflowed")))
}

pub(super) fn company_of_workspace(
    txn: &WriteTransaction,
    company: Id,
    workspace: Id,
) -> Result<Workspace, StoreError> {
    get_by_id::<Workspace>(&txn.open_table(WORKSPACES)?, workspace)?
        .filter(|w| w.company_id == company)
        .ok_or(StoreError::WorkspaceNotFound)
}

pub(super) fn load_connection(
    table: &impl ReadableTable<u32, &'static [u8]>,
    workspace: Id,
    id: Id,
) -> Result<Connection, StoreError> {
    get_by_id::<Connection>(table, id)?
        .filter(|c| c.workspace_id == workspace)
        .ok_or(StoreError::ConnectionNotFound)
}

/// Removes a connection and records the revocation of its keys.
pub(super) fn remove_connection(
    txn: &WriteTransaction,
    connection: &Connection,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    txn.open_table(CONNECTIONS)?.remove(connection.id)?;
    txn.open_table(WORKSPACE_CONNECTIONS)?
        .remove((connection.workspace_id, connection.id))?;
    changes.extend(
        connection
            .keys
            .iter()
            .map(|k| Change::WriteKeyRevoked { key: k.key.clone() }),
    );
    Ok(())
}

pub(super) fn is_operator(txn: &WriteTransaction, company: Id) -> Result<bool, StoreError> {
    Ok(get_by_id::<Company>(&txn.open_table(COMPANIES)?, company)?.is_some_and(|c| c.operator))
}

/// Stores an API key and records the change the index needs.
pub(super) fn put_api_key(
    txn: &WriteTransaction,
    key: &ApiKey,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    txn.open_table(API_KEYS)?
        .insert(key.id.as_str(), encode(key)?.as_slice())?;
    txn.open_table(API_KEY_HASHES)?
        .insert(key.key_hash.as_str(), key.id.as_str())?;
    changes.push(match key.status {
        ApiKeyStatus::Active => Change::ApiKeyPut {
            auth: auth_of(key, is_operator(txn, key.company_id)?),
        },
        ApiKeyStatus::Inactive => Change::ApiKeyRevoked {
            hash: key.key_hash.clone(),
        },
    });
    Ok(())
}
