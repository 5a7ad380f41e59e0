//! Stores: where companies, workspaces, connections and keys live. Every store offers
//! the same operations (the `Store` trait): mutations that return the store version
//! they produced, reads for the admin API, and a full load plus change feed for the
//! key index. The embedded store needs no server; the Redis store is shared by nodes.

pub mod bootstrap;
pub mod embedded;
pub mod feed;
pub mod redis;
pub mod sync;

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::index::{ApiKeyAuth, KeyTarget};
use crate::model::{ApiKey, Company, Connection, Id, Workspace};
use feed::{FeedItem, Snapshot};

/// What store operations return: boxed, since admin calls are few and a trait object
/// keeps the admin API independent of the backend.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A mutation's result with the store version it produced, so that the caller can wait
/// until its own node's index reflects it (read your writes).
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The result.
    pub value: T,
    /// The store version after the mutation.
    pub version: u64,
}

/// Why a store operation failed; the admin API maps each to one status.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// No such company (or not visible to the caller).
    #[error("company does not exist")]
    CompanyNotFound,
    /// No such workspace in the caller's company.
    #[error("workspace does not exist")]
    WorkspaceNotFound,
    /// No such connection in the workspace.
    #[error("connection does not exist")]
    ConnectionNotFound,
    /// No such write key on the connection.
    #[error("key does not exist")]
    WriteKeyNotFound,
    /// No such API key in the caller's company.
    #[error("API key does not exist")]
    ApiKeyNotFound,
    /// The 20-key cap.
    #[error("connection already has 20 keys")]
    TooManyWriteKeys,
    /// The last-key rule.
    #[error("key cannot be deleted as it is the connection's only key")]
    LastWriteKey,
    /// Write keys exist only on sdk and webhook connections.
    #[error("connection is not an SDK or webhook connection")]
    NotEventConnection,
    /// A compare-and-set lost a race; the caller re-reads and retries.
    #[error("the record changed while it was being updated")]
    Conflict,
    /// The backing server cannot be reached; the caller should try later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken disk.
    #[error("store failure: {0}")]
    Internal(String),
}

/// The operations every store offers.
pub trait Store: Send + Sync {
    /// Everything the index holds, as of one version.
    fn load(&self) -> StoreFuture<'_, Snapshot>;
    /// A feed of changes after now; subscribe before `load` so nothing falls between.
    fn subscribe(&self) -> broadcast::Receiver<FeedItem>;

    /// A company, with an optional first API key (its `company_id` is filled in).
    fn create_company(
        &self,
        name: String,
        operator: bool,
        first_key: Option<ApiKey>,
    ) -> StoreFuture<'_, Written<Company>>;
    /// All companies, oldest first.
    fn list_companies(&self) -> StoreFuture<'_, Vec<Company>>;

    /// A workspace of a company.
    fn create_workspace(&self, company: Id, name: String) -> StoreFuture<'_, Written<Workspace>>;
    /// A company's workspaces, oldest first.
    fn list_workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>>;
    /// One workspace, if it is the company's.
    fn get_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Workspace>;
    /// Deletes a workspace with its connections, revoking their keys.
    fn delete_workspace(&self, company: Id, id: Id) -> StoreFuture<'_, Written<()>>;

    /// A connection; sdk and webhook connections get their first write key.
    fn create_connection(
        &self,
        workspace: Id,
        name: String,
        kind: String,
    ) -> StoreFuture<'_, Written<Connection>>;
    /// A workspace's connections, oldest first.
    fn list_connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>>;
    /// One connection of the workspace.
    fn get_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Connection>;
    /// Deletes a connection, revoking its keys.
    fn delete_connection(&self, workspace: Id, id: Id) -> StoreFuture<'_, Written<()>>;
    /// Adds a write key, unless the connection has 20 already.
    fn add_write_key(&self, workspace: Id, connection: Id) -> StoreFuture<'_, Written<String>>;
    /// Deletes a write key, unless it is the connection's last one.
    fn delete_write_key(
        &self,
        workspace: Id,
        connection: Id,
        key: String,
    ) -> StoreFuture<'_, Written<()>>;

    /// Stores a new API key (by digest).
    fn create_api_key(&self, key: ApiKey) -> StoreFuture<'_, Written<ApiKey>>;
    /// One API key of the company.
    fn get_api_key(&self, company: Id, id: String) -> StoreFuture<'_, ApiKey>;
    /// All of a company's API keys, in no particular order.
    fn list_api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>>;
    /// Replaces an API key if it was last updated at `expected_updated_at`
    /// (compare-and-set); otherwise `Conflict`.
    fn replace_api_key(
        &self,
        key: ApiKey,
        expected_updated_at: OffsetDateTime,
    ) -> StoreFuture<'_, Written<ApiKey>>;
    /// The API key with this digest, whatever its company.
    fn api_key_by_hash(&self, hash_hex: String) -> StoreFuture<'_, Option<ApiKey>>;
    /// Whether any API key exists at all.
    fn has_api_keys(&self) -> StoreFuture<'_, bool>;
    /// Whether the store is reachable and its change feed connected (for `/readyz`).
    fn is_healthy(&self) -> bool {
        true
    }
}

/// Where a connection's keys send events; `None` for types without keys.
pub(crate) fn target_of(connection: &Connection) -> Option<KeyTarget> {
    Some(KeyTarget {
        workspace_id: connection.workspace_id,
        connection_id: connection.id,
        source: connection.source()?,
    })
}

/// What the index needs of an active API key.
pub(crate) fn auth_of(key: &ApiKey, operator: bool) -> ApiKeyAuth {
    ApiKeyAuth {
        id: key.id.clone(),
        hash: key.key_hash.clone(),
        company_id: key.company_id,
        workspace_id: key.workspace_id,
        whitelisted_ips: key.whitelisted_ips.clone(),
        operator,
    }
}
