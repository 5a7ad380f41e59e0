//! The embedded store: one redb file, `<data_dir>/intake.redb` (mode 0600: it holds
//! write keys), for a single node with no server. A commit is one serialised write
//! transaction that checks the plan's preconditions, applies its writes and bumps the
//! store version; once committed, its changes go to subscribers over a broadcast
//! channel, in version order (sent under the same lock as the commit).

mod commit;
mod reads;

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::plan::Plan;
use super::{StoreError, StoreFuture};
use crate::index::feed::{ChangeMessage, FeedItem};
use crate::model::{Connection, Id, WriteKey};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const COMPANIES: TableDefinition<u32, &[u8]> = TableDefinition::new("companies");
const WORKSPACES: TableDefinition<u32, &[u8]> = TableDefinition::new("workspaces");
/// Connection id → the connection with its write keys ([`StoredConnection`]).
const CONNECTIONS: TableDefinition<u32, &[u8]> = TableDefinition::new("connections");
/// (workspace id, connection id): lists a workspace's connections without a scan.
const WORKSPACE_CONNECTIONS: TableDefinition<(u32, u32), ()> =
    TableDefinition::new("workspace_connections");
const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Hex digest → API key id.
const API_KEY_HASHES: TableDefinition<&str, &str> = TableDefinition::new("api_key_hashes");

const VERSION: &str = "version";
const NEXT_COMPANY: &str = "next_company";
const NEXT_WORKSPACE: &str = "next_workspace";

/// Subscribers that fall this far behind are told to reload in full.
const FEED_CAPACITY: usize = 1024;

/// A connection as this store keeps it: the record and its keys, oldest first.
#[derive(Serialize, Deserialize)]
struct StoredConnection {
    #[serde(flatten)]
    connection: Connection,
    #[serde(default)]
    keys: Vec<WriteKey>,
}

/// The redb-backed store.
pub(crate) struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    feed: broadcast::Sender<FeedItem>,
    /// Held from the start of a write transaction until its changes are sent, so that
    /// subscribers see versions in order.
    write_lock: Mutex<()>,
}

/// A redb failure: disk errors (the disk is full or gone) are `Unavailable`, so that
/// admin writes answer 503; anything else is `Internal`.
fn redb_error(error: impl Into<redb::Error>) -> StoreError {
    match error.into() {
        redb::Error::Io(io) => StoreError::Unavailable(io.into()),
        redb::Error::PreviousIo => StoreError::Unavailable(
            "an earlier disk error stopped the embedded store; restart intake".into(),
        ),
        other => StoreError::Internal(other.into()),
    }
}

impl EmbeddedStore {
    /// Opens (or creates, mode 0600) `<data_dir>/intake.redb`.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Unavailable(e.into()))?;
        let file = open_private(&data_dir.join("intake.redb"))
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        let db = redb::Builder::new().create_file(file).map_err(redb_error)?;
        let txn = db.begin_write().map_err(redb_error)?;
        create_tables(&txn).map_err(redb_error)?;
        txn.commit().map_err(redb_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                feed: broadcast::channel(FEED_CAPACITY).0,
                write_lock: Mutex::new(()),
            }),
        })
    }

    /// Runs a read transaction on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&inner.db.begin_read().map_err(redb_error)?))
                .await
                .map_err(|e| StoreError::Internal(e.into()))?
        })
    }

    /// Runs a write transaction on the blocking pool: `f` gets the transaction; the
    /// version counter is bumped only by commits that publish changes.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let _serial = inner.write_lock.lock().unwrap_or_else(|p| p.into_inner());
                let txn = inner.db.begin_write().map_err(redb_error)?;
                let value = f(&txn)?;
                txn.commit().map_err(redb_error)?;
                Ok(value)
            })
            .await
            .map_err(|e| StoreError::Internal(e.into()))?
        })
    }

    /// Commits a plan as the next version and publishes its changes.
    fn commit_plan(&self, plan: Plan) -> StoreFuture<'_, u64> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let _serial = inner.write_lock.lock().unwrap_or_else(|p| p.into_inner());
                let txn = inner.db.begin_write().map_err(redb_error)?;
                commit::check(&txn, &plan.preconditions)?;
                commit::apply(&txn, plan.writes)?;
                let version = next_counter(&txn, VERSION)?;
                txn.commit().map_err(redb_error)?;
                let message = Arc::new(ChangeMessage {
                    version,
                    changes: plan.changes,
                });
                // No subscriber is fine: the index reloads in full when it starts.
                let _ = inner.feed.send(FeedItem::Changes(message));
                Ok(version)
            })
            .await
            .map_err(|e| StoreError::Internal(e.into()))?
        })
    }
}

/// Opens the file without truncating it, creating it readable by its owner only, and
/// tightens an existing file's mode to that too.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(COMPANIES)?;
    txn.open_table(WORKSPACES)?;
    txn.open_table(CONNECTIONS)?;
    txn.open_table(WORKSPACE_CONNECTIONS)?;
    txn.open_table(API_KEYS)?;
    txn.open_table(API_KEY_HASHES)?;
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

fn get_by_id<T: DeserializeOwned>(
    table: &impl ReadableTable<u32, &'static [u8]>,
    id: Id,
) -> Result<Option<T>, StoreError> {
    table
        .get(id)
        .map_err(redb_error)?
        .map(|v| decode(v.value()))
        .transpose()
}

fn all<T: DeserializeOwned, K: redb::Key + 'static>(
    table: &impl ReadableTable<K, &'static [u8]>,
) -> Result<Vec<T>, StoreError> {
    table
        .iter()
        .map_err(redb_error)?
        .map(|row| decode(row.map_err(redb_error)?.1.value()))
        .collect()
}

/// Increments a counter in META and returns the new value.
fn next_counter(txn: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META).map_err(redb_error)?;
    let next = meta.get(name).map_err(redb_error)?.map_or(0, |v| v.value()) + 1;
    meta.insert(name, next).map_err(redb_error)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_errors_are_unavailable_not_internal() {
        let full = std::io::Error::from_raw_os_error(28);
        let error = redb_error(redb::StorageError::Io(full));
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        let error = redb_error(redb::StorageError::PreviousIo);
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        let error = redb_error(redb::StorageError::Corrupted("x".into()));
        assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
    }

    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.redb");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        EmbeddedStore::open(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fresh = tempfile::tempdir().unwrap();
        EmbeddedStore::open(fresh.path()).unwrap();
        let mode = std::fs::metadata(fresh.path().join("intake.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
