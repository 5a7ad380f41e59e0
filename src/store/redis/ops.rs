//! The `Store` operations of the Redis store.

use redis::AsyncCommands;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{
    timed, written, RedisStore, API_KEYS, API_KEY_HASHES, COMPANIES, CONNECTIONS,
    MAX_WRITE_KEYS_PER_CONNECTION, SEQ_COMPANY, SEQ_WORKSPACE, WORKSPACES,
};
use crate::clock::{self, format_millis};
use crate::model::{ApiKey, Company, Connection, Id, Workspace, WriteKeyRecord};
use crate::secrets;
use crate::store::feed::{FeedItem, Snapshot};
use crate::store::{target_of, Store, StoreError, StoreFuture, Written};

/// Attempts at a random connection id before giving up (collisions are rare).
const CONNECTION_ID_ATTEMPTS: usize = 8;

impl Store for RedisStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(self.load_snapshot())
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    fn is_healthy(&self) -> bool {
        self.subscribed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn create_company(
        &self,
        name: String,
        operator: bool,
        first_key: Option<ApiKey>,
    ) -> StoreFuture<'_, Written<Company>> {
        Box::pin(async move {
            let company = Company {
                id: self.next_id(SEQ_COMPANY).await?,
                name,
                operator,
                created_at: clock::now(),
            };
            let mut args = vec![company.id.to_string(), serde_json::to_string(&company)?];
            if let Some(mut key) = first_key {
                key.company_id = company.id;
                let change = serde_json::to_string(&crate::store::feed::Change::ApiKeyPut {
                    auth: crate::store::auth_of(&key, operator),
                })?;
                args.extend([
                    key.id.clone(),
                    key.key_hash.clone(),
                    serde_json::to_string(&key)?,
                    change,
                ]);
            }
            let version = self.run(&self.scripts.create_company, args).await?;
            Ok(written(company, version))
        })
    }

    fn list_companies(&self) -> StoreFuture<'_, Vec<Company>> {
        Box::pin(async move {
            let mut all: Vec<Company> = self.hvals(COMPANIES).await?;
            all.sort_by_key(|c| c.id);
            Ok(all)
        })
    }

    fn create_workspace(&self, company: Id, name: String) -> StoreFuture<'_, Written<Workspace>> {
        Box::pin(async move {
            let workspace = Workspace {
                id: self.next_id(SEQ_WORKSPACE).await?,
                company_id: company,
                name,
                created_at: clock::now(),
            };
            let args = vec![
                company.to_string(),
                workspace.id.to_string(),
                serde_json::to_string(&workspace)?,
            ];
            let version = self.run(&self.scripts.create_workspace, args).await?;
            Ok(written(workspace, version))
        })
    }

    fn list_workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>> {
        Box::pin(async move {
            let mut all: Vec<Workspace> = self.hvals(WORKSPACES).await?;
            all.retain(|w| w.company_id == company);
            all.sort_by_key(|w| w.id);
            Ok(all)
        })
    }

    fn get_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Workspace> {
        Box::pin(async move {
            self.hget::<Workspace>(WORKSPACES, &id.to_string())
                .await?
                .filter(|w| w.company_id == company)
                .ok_or(StoreError::WorkspaceNotFound)
        })
    }

    fn delete_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Written<()>> {
        Box::pin(async move {
            let args = vec![company.to_string(), id.to_string()];
            let version = self.run(&self.scripts.delete_workspace, args).await?;
            Ok(written((), version))
        })
    }

    fn create_connection(
        &self,
        workspace: Id,
        name: String,
        kind: String,
    ) -> StoreFuture<'_, Written<Connection>> {
        Box::pin(async move {
            for _ in 0..CONNECTION_ID_ATTEMPTS {
                let now = clock::now();
                let mut connection = Connection {
                    id: rand::random_range(1..=i32::MAX as u32),
                    workspace_id: workspace,
                    name: name.clone(),
                    kind: kind.clone(),
                    created_at: now,
                    keys: Vec::new(),
                };
                let mut args = vec![
                    workspace.to_string(),
                    connection.id.to_string(),
                    serde_json::to_string(&connection)?,
                ];
                if let Some(target) = target_of(&connection) {
                    let (key, stored, change) = Self::new_write_key(target)?;
                    args.extend([key.clone(), stored, change]);
                    connection.keys.push(WriteKeyRecord {
                        key,
                        created_at: now,
                    });
                }
                match self.run(&self.scripts.create_connection, args).await {
                    Ok(version) => return Ok(written(connection, version)),
                    Err(StoreError::Conflict) => continue,
                    Err(other) => return Err(other),
                }
            }
            Err(StoreError::Internal("no free connection id".into()))
        })
    }

    fn list_connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>> {
        Box::pin(async move {
            let ids: Vec<String> = timed(
                self.conn()
                    .smembers(format!("intake:workspace-connections:{workspace}")),
            )
            .await?;
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
            // Listing shows connections without their keys (the keys route lists them).
            let mut all: Vec<Connection> = raw
                .into_iter()
                .flatten()
                .map(|r| serde_json::from_str(&r))
                .collect::<Result<_, _>>()?;
            all.sort_by_key(|c| (c.created_at, c.id));
            Ok(all)
        })
    }

    fn get_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Connection> {
        Box::pin(self.connection_record(workspace, id))
    }

    fn delete_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Written<()>> {
        Box::pin(async move {
            let args = vec![workspace.to_string(), id.to_string()];
            let version = self.run(&self.scripts.delete_connection, args).await?;
            Ok(written((), version))
        })
    }

    fn add_write_key(&self, workspace: Id, connection: Id) -> StoreFuture<'_, Written<String>> {
        Box::pin(async move {
            let record: Connection = self
                .hget(CONNECTIONS, &connection.to_string())
                .await?
                .filter(|c: &Connection| c.workspace_id == workspace)
                .ok_or(StoreError::ConnectionNotFound)?;
            let target = target_of(&record).ok_or(StoreError::NotEventConnection)?;
            let (key, stored, change) = Self::new_write_key(target)?;
            let args = vec![
                workspace.to_string(),
                connection.to_string(),
                key.clone(),
                stored,
                change,
                MAX_WRITE_KEYS_PER_CONNECTION.to_string(),
            ];
            let version = self.run(&self.scripts.add_write_key, args).await?;
            Ok(written(key, version))
        })
    }

    fn delete_write_key(
        &self,
        workspace: Id,
        connection: Id,
        key: String,
    ) -> StoreFuture<'_, Written<()>> {
        Box::pin(async move {
            if !secrets::is_write_key_shape(&key) {
                // Checked here too, so that the script can put keys into JSON unescaped.
                self.connection_record(workspace, connection).await?;
                return Err(StoreError::WriteKeyNotFound);
            }
            let args = vec![workspace.to_string(), connection.to_string(), key];
            let version = self.run(&self.scripts.delete_write_key, args).await?;
            Ok(written((), version))
        })
    }

    fn create_api_key(&self, key: ApiKey) -> StoreFuture<'_, Written<ApiKey>> {
        Box::pin(async move {
            let args = vec![
                key.company_id.to_string(),
                key.id.clone(),
                key.key_hash.clone(),
                serde_json::to_string(&key)?,
                self.api_key_change(&key).await?,
            ];
            let version = self.run(&self.scripts.create_api_key, args).await?;
            Ok(written(key, version))
        })
    }

    fn get_api_key(&self, company: Id, id: String) -> StoreFuture<'_, ApiKey> {
        Box::pin(async move {
            self.hget::<ApiKey>(API_KEYS, &id)
                .await?
                .filter(|k| k.company_id == company)
                .ok_or(StoreError::ApiKeyNotFound)
        })
    }

    fn list_api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>> {
        Box::pin(async move {
            let mut all: Vec<ApiKey> = self.hvals(API_KEYS).await?;
            all.retain(|k| k.company_id == company);
            Ok(all)
        })
    }

    fn replace_api_key(
        &self,
        key: ApiKey,
        expected_updated_at: OffsetDateTime,
    ) -> StoreFuture<'_, Written<ApiKey>> {
        Box::pin(async move {
            let args = vec![
                key.id.clone(),
                key.company_id.to_string(),
                format_millis(expected_updated_at),
                serde_json::to_string(&key)?,
                self.api_key_change(&key).await?,
            ];
            let version = self.run(&self.scripts.replace_api_key, args).await?;
            Ok(written(key, version))
        })
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
