//! The [`Store`] operations of the embedded store: the full load, reads, and the
//! entry points of commits and id sequences.

use redb::ReadableTable;
use tokio::sync::broadcast;

use super::{
    all, decode, get_by_id, next_counter, redb_error, EmbeddedStore, StoredConnection, API_KEYS,
    API_KEY_HASHES, COMPANIES, CONNECTIONS, META, NEXT_COMPANY, NEXT_WORKSPACE, VERSION,
    WORKSPACES, WORKSPACE_CONNECTIONS,
};
use crate::index::feed::{FeedItem, Snapshot};
use crate::index::write_key_bytes;
use crate::model::{ApiKey, ApiKeyStatus, Company, Connection, Id, Workspace, WriteKey};
use crate::store::plan::{Plan, Sequence};
use crate::store::{Store, StoreError, StoreFuture};

impl Store for EmbeddedStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.read(|txn| {
            let version = txn
                .open_table(META)
                .map_err(redb_error)?
                .get(VERSION)
                .map_err(redb_error)?
                .map_or(0, |v| v.value());
            let mut snapshot = Snapshot {
                version,
                ..Snapshot::default()
            };
            let connections: Vec<StoredConnection> =
                all(&txn.open_table(CONNECTIONS).map_err(redb_error)?)?;
            for stored in connections {
                if let Some(target) = stored.connection.target() {
                    snapshot.write_keys.extend(
                        stored
                            .keys
                            .iter()
                            .filter_map(|k| Some((write_key_bytes(&k.key)?, target))),
                    );
                }
                if !stored.connection.allowed_origins.is_empty() {
                    let connection = stored.connection;
                    snapshot
                        .origins
                        .push((connection.id, connection.allowed_origins));
                }
            }
            let companies: Vec<Company> = all(&txn.open_table(COMPANIES).map_err(redb_error)?)?;
            let operator = |id: Id| companies.iter().any(|c| c.id == id && c.operator);
            let keys: Vec<ApiKey> = all(&txn.open_table(API_KEYS).map_err(redb_error)?)?;
            snapshot.api_keys = keys
                .iter()
                .filter(|k| k.status == ApiKeyStatus::Active)
                .map(|k| k.auth(operator(k.company_id)))
                .collect();
            Ok(snapshot)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.inner.feed.subscribe()
    }

    fn commit(&self, plan: Plan) -> StoreFuture<'_, u64> {
        self.commit_plan(plan)
    }

    fn next_id(&self, sequence: Sequence) -> StoreFuture<'_, Id> {
        let counter = match sequence {
            Sequence::Company => NEXT_COMPANY,
            Sequence::Workspace => NEXT_WORKSPACE,
        };
        self.write(move |txn| {
            Id::try_from(next_counter(txn, counter)?)
                .map_err(|_| StoreError::internal(format!("{counter} overflowed")))
        })
    }

    fn companies(&self) -> StoreFuture<'_, Vec<Company>> {
        self.read(|txn| all(&txn.open_table(COMPANIES).map_err(redb_error)?))
    }

    fn company(&self, id: Id) -> StoreFuture<'_, Option<Company>> {
        self.read(move |txn| get_by_id(&txn.open_table(COMPANIES).map_err(redb_error)?, id))
    }

    fn workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>> {
        self.read(move |txn| {
            let all: Vec<Workspace> = all(&txn.open_table(WORKSPACES).map_err(redb_error)?)?;
            Ok(all
                .into_iter()
                .filter(|w| w.company_id == company)
                .collect())
        })
    }

    fn workspace(&self, id: Id) -> StoreFuture<'_, Option<Workspace>> {
        self.read(move |txn| get_by_id(&txn.open_table(WORKSPACES).map_err(redb_error)?, id))
    }

    fn connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>> {
        self.read(move |txn| {
            let table = txn.open_table(CONNECTIONS).map_err(redb_error)?;
            let members = txn.open_table(WORKSPACE_CONNECTIONS).map_err(redb_error)?;
            let mut out = Vec::new();
            for row in members
                .range((workspace, 0)..=(workspace, Id::MAX))
                .map_err(redb_error)?
            {
                let id = row.map_err(redb_error)?.0.value().1;
                let stored: Option<StoredConnection> = get_by_id(&table, id)?;
                out.extend(stored.map(|s| s.connection));
            }
            out.sort_by_key(|c: &Connection| (c.created_at, c.id));
            Ok(out)
        })
    }

    fn connection(&self, id: Id) -> StoreFuture<'_, Option<Connection>> {
        self.read(move |txn| {
            let table = txn.open_table(CONNECTIONS).map_err(redb_error)?;
            let stored: Option<StoredConnection> = get_by_id(&table, id)?;
            Ok(stored.map(|s| s.connection))
        })
    }

    fn write_keys(&self, connection: Id) -> StoreFuture<'_, Vec<WriteKey>> {
        self.read(move |txn| {
            let table = txn.open_table(CONNECTIONS).map_err(redb_error)?;
            let stored: Option<StoredConnection> = get_by_id(&table, connection)?;
            Ok(stored.map(|s| s.keys).unwrap_or_default())
        })
    }

    fn api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>> {
        self.read(move |txn| {
            let all: Vec<ApiKey> = all(&txn.open_table(API_KEYS).map_err(redb_error)?)?;
            Ok(all
                .into_iter()
                .filter(|k| k.company_id == company)
                .collect())
        })
    }

    fn api_key(&self, id: String) -> StoreFuture<'_, Option<ApiKey>> {
        self.read(move |txn| {
            let table = txn.open_table(API_KEYS).map_err(redb_error)?;
            let found = table.get(id.as_str()).map_err(redb_error)?;
            found.map(|v| decode(v.value())).transpose()
        })
    }

    fn api_key_by_hash(&self, hash_hex: String) -> StoreFuture<'_, Option<ApiKey>> {
        self.read(move |txn| {
            let hashes = txn.open_table(API_KEY_HASHES).map_err(redb_error)?;
            let Some(id) = hashes.get(hash_hex.as_str()).map_err(redb_error)? else {
                return Ok(None);
            };
            let keys = txn.open_table(API_KEYS).map_err(redb_error)?;
            let found = keys.get(id.value()).map_err(redb_error)?;
            found.map(|v| decode(v.value())).transpose()
        })
    }

    fn has_api_keys(&self) -> StoreFuture<'_, bool> {
        self.read(|txn| {
            let table = txn.open_table(API_KEYS).map_err(redb_error)?;
            let any = table.first().map_err(redb_error)?.is_some();
            Ok(any)
        })
    }
}
