//! The `Store` operations of the embedded store.

use redb::ReadableTable;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{
    all, company_of_workspace, decode, encode, get_by_id, load_connection, next_id, put_api_key,
    remove_connection, EmbeddedStore, API_KEYS, API_KEY_HASHES, COMPANIES, CONNECTIONS, META,
    NEXT_COMPANY, NEXT_WORKSPACE, VERSION, WORKSPACES, WORKSPACE_CONNECTIONS,
};
use crate::clock;
use crate::index::write_key_bytes;
use crate::model::{
    ApiKey, ApiKeyStatus, Company, Connection, Id, Workspace, WriteKeyRecord,
    MAX_WRITE_KEYS_PER_CONNECTION,
};
use crate::secrets;
use crate::store::feed::{Change, FeedItem, Snapshot};
use crate::store::{auth_of, target_of, Store, StoreError, StoreFuture, Written};

impl Store for EmbeddedStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.read(|txn| {
            let version = txn.open_table(META)?.get(VERSION)?.map_or(0, |v| v.value());
            let mut write_keys = Vec::new();
            for row in txn.open_table(CONNECTIONS)?.iter()? {
                let connection: Connection = decode(row?.1.value())?;
                if let Some(target) = target_of(&connection) {
                    write_keys.extend(
                        connection
                            .keys
                            .iter()
                            .filter_map(|k| Some((write_key_bytes(&k.key)?, target))),
                    );
                }
            }
            let companies: Vec<Company> = all(&txn.open_table(COMPANIES)?)?;
            let operator = |id: Id| companies.iter().any(|c| c.id == id && c.operator);
            let mut api_keys = Vec::new();
            for row in txn.open_table(API_KEYS)?.iter()? {
                let key: ApiKey = decode(row?.1.value())?;
                if key.status == ApiKeyStatus::Active {
                    api_keys.push(auth_of(&key, operator(key.company_id)));
                }
            }
            Ok(Snapshot {
                version,
                write_keys,
                api_keys,
            })
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.inner.feed.subscribe()
    }

    fn create_company(
        &self,
        name: String,
        operator: bool,
        first_key: Option<ApiKey>,
    ) -> StoreFuture<'_, Written<Company>> {
        self.mutate(move |txn, changes| {
            let company = Company {
                id: next_id(txn, NEXT_COMPANY)?,
                name,
                operator,
                created_at: clock::now(),
            };
            txn.open_table(COMPANIES)?
                .insert(company.id, encode(&company)?.as_slice())?;
            if let Some(mut key) = first_key {
                key.company_id = company.id;
                put_api_key(txn, &key, changes)?;
            }
            Ok(company)
        })
    }

    fn list_companies(&self) -> StoreFuture<'_, Vec<Company>> {
        self.read(|txn| all(&txn.open_table(COMPANIES)?))
    }

    fn create_workspace(&self, company: Id, name: String) -> StoreFuture<'_, Written<Workspace>> {
        self.mutate(move |txn, _| {
            get_by_id::<Company>(&txn.open_table(COMPANIES)?, company)?
                .ok_or(StoreError::CompanyNotFound)?;
            let workspace = Workspace {
                id: next_id(txn, NEXT_WORKSPACE)?,
                company_id: company,
                name,
                created_at: clock::now(),
            };
            txn.open_table(WORKSPACES)?
                .insert(workspace.id, encode(&workspace)?.as_slice())?;
            Ok(workspace)
        })
    }

    fn list_workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>> {
        self.read(move |txn| {
            let all: Vec<Workspace> = all(&txn.open_table(WORKSPACES)?)?;
            Ok(all
                .into_iter()
                .filter(|w| w.company_id == company)
                .collect())
        })
    }

    fn get_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Workspace> {
        self.read(move |txn| {
            get_by_id::<Workspace>(&txn.open_table(WORKSPACES)?, id)?
                .filter(|w| w.company_id == company)
                .ok_or(StoreError::WorkspaceNotFound)
        })
    }

    fn delete_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Written<()>> {
        self.mutate(move |txn, changes| {
            company_of_workspace(txn, company, id)?;
            let ids: Vec<Id> = txn
                .open_table(WORKSPACE_CONNECTIONS)?
                .range((id, 0)..=(id, Id::MAX))?
                .map(|row| Ok(row?.0.value().1))
                .collect::<Result<_, StoreError>>()?;
            for connection_id in ids {
                let connection = load_connection(&txn.open_table(CONNECTIONS)?, id, connection_id)?;
                remove_connection(txn, &connection, changes)?;
            }
            txn.open_table(WORKSPACES)?.remove(id)?;
            Ok(())
        })
    }

    fn create_connection(
        &self,
        workspace: Id,
        name: String,
        kind: String,
    ) -> StoreFuture<'_, Written<Connection>> {
        self.mutate(move |txn, changes| {
            get_by_id::<Workspace>(&txn.open_table(WORKSPACES)?, workspace)?
                .ok_or(StoreError::WorkspaceNotFound)?;
            let mut table = txn.open_table(CONNECTIONS)?;
            let id = loop {
                let candidate = rand::random_range(1..=i32::MAX as u32);
                if table.get(candidate)?.is_none() {
                    break candidate;
                }
            };
            let now = clock::now();
            let mut connection = Connection {
                id,
                workspace_id: workspace,
                name,
                kind,
                created_at: now,
                keys: Vec::new(),
            };
            if let Some(target) = target_of(&connection) {
                let key = secrets::new_write_key();
                changes.push(Change::WriteKeyAdded {
                    key: key.clone(),
                    target,
                });
                connection.keys.push(WriteKeyRecord {
                    key,
                    created_at: now,
                });
            }
            table.insert(id, encode(&connection)?.as_slice())?;
            txn.open_table(WORKSPACE_CONNECTIONS)?
                .insert((workspace, id), ())?;
            Ok(connection)
        })
    }

    fn list_connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>> {
        self.read(move |txn| {
            let table = txn.open_table(CONNECTIONS)?;
            let mut out: Vec<Connection> = Vec::new();
            for row in txn
                .open_table(WORKSPACE_CONNECTIONS)?
                .range((workspace, 0)..=(workspace, Id::MAX))?
            {
                let id = row?.0.value().1;
                out.extend(get_by_id::<Connection>(&table, id)?);
            }
            out.sort_by_key(|c| (c.created_at, c.id));
            Ok(out)
        })
    }

    fn get_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Connection> {
        self.read(move |txn| load_connection(&txn.open_table(CONNECTIONS)?, workspace, id))
    }

    fn delete_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Written<()>> {
        self.mutate(move |txn, changes| {
            let connection = load_connection(&txn.open_table(CONNECTIONS)?, workspace, id)?;
            remove_connection(txn, &connection, changes)
        })
    }

    fn add_write_key(&self, workspace: Id, connection: Id) -> StoreFuture<'_, Written<String>> {
        self.mutate(move |txn, changes| {
            let mut table = txn.open_table(CONNECTIONS)?;
            let mut record = load_connection(&table, workspace, connection)?;
            let target = target_of(&record).ok_or(StoreError::NotEventConnection)?;
            if record.keys.len() >= MAX_WRITE_KEYS_PER_CONNECTION {
                return Err(StoreError::TooManyWriteKeys);
            }
            let key = secrets::new_write_key();
            record.keys.push(WriteKeyRecord {
                key: key.clone(),
                created_at: clock::now(),
            });
            table.insert(connection, encode(&record)?.as_slice())?;
            changes.push(Change::WriteKeyAdded {
                key: key.clone(),
                target,
            });
            Ok(key)
        })
    }

    fn delete_write_key(
        &self,
        workspace: Id,
        connection: Id,
        key: String,
    ) -> StoreFuture<'_, Written<()>> {
        self.mutate(move |txn, changes| {
            let mut table = txn.open_table(CONNECTIONS)?;
            let mut record = load_connection(&table, workspace, connection)?;
            let position = record
                .keys
                .iter()
                .position(|k| k.key == key)
                .ok_or(StoreError::WriteKeyNotFound)?;
            if record.keys.len() == 1 {
                return Err(StoreError::LastWriteKey);
            }
            record.keys.remove(position);
            table.insert(connection, encode(&record)?.as_slice())?;
            changes.push(Change::WriteKeyRevoked { key });
            Ok(())
        })
    }

    fn create_api_key(&self, key: ApiKey) -> StoreFuture<'_, Written<ApiKey>> {
        self.mutate(move |txn, changes| {
            get_by_id::<Company>(&txn.open_table(COMPANIES)?, key.company_id)?
                .ok_or(StoreError::CompanyNotFound)?;
            put_api_key(txn, &key, changes)?;
            Ok(key)
        })
    }

    fn get_api_key(&self, company: Id, id: String) -> StoreFuture<'_, ApiKey> {
        self.read(move |txn| {
            let table = txn.open_table(API_KEYS)?;
            let key: Option<ApiKey> = table
                .get(id.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            key.filter(|k| k.company_id == company)
                .ok_or(StoreError::ApiKeyNotFound)
        })
    }

    fn list_api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>> {
        self.read(move |txn| {
            let mut out = Vec::new();
            for row in txn.open_table(API_KEYS)?.iter()? {
                let key: ApiKey = decode(row?.1.value())?;
                if key.company_id == company {
                    out.push(key);
                }
            }
            Ok(out)
        })
    }

    fn replace_api_key(
        &self,
        key: ApiKey,
        expected_updated_at: OffsetDateTime,
    ) -> StoreFuture<'_, Written<ApiKey>> {
        self.mutate(move |txn, changes| {
            let current: ApiKey = {
                let table = txn.open_table(API_KEYS)?;
                let found = table.get(key.id.as_str())?;
                let found = found.ok_or(StoreError::ApiKeyNotFound)?;
                decode(found.value())?
            };
            if current.company_id != key.company_id {
                return Err(StoreError::ApiKeyNotFound);
            }
            if current.updated_at != expected_updated_at {
                return Err(StoreError::Conflict);
            }
            put_api_key(txn, &key, changes)?;
            Ok(key)
        })
    }

    fn api_key_by_hash(&self, hash_hex: String) -> StoreFuture<'_, Option<ApiKey>> {
        self.read(move |txn| {
            let hashes = txn.open_table(API_KEY_HASHES)?;
            let Some(id) = hashes.get(hash_hex.as_str())? else {
                return Ok(None);
            };
            let keys = txn.open_table(API_KEYS)?;
            let found = keys.get(id.value())?;
            found.map(|v| decode(v.value())).transpose()
        })
    }

    fn has_api_keys(&self) -> StoreFuture<'_, bool> {
        self.read(|txn| Ok(txn.open_table(API_KEYS)?.first()?.is_some()))
    }
}
