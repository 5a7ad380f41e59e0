//! Stores: where companies, workspaces, connections and keys live. A store loads
//! everything the index needs, feeds it changes, answers reads, and commits a
//! [`plan::Plan`] atomically as its next version. It knows no rule: the control layer
//! decides, a store checks the plan's preconditions and writes. The embedded store
//! (redb) needs no server; the Redis store is shared by any number of nodes.

pub(crate) mod embedded;
pub(crate) mod plan;
pub(crate) mod redis;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::broadcast;

use crate::index::feed::{FeedItem, Snapshot};
use crate::model::{ApiKey, Company, Connection, Id, Workspace, WriteKey};
use plan::{Plan, Sequence};

/// What store operations return: boxed, since admin calls are few and a trait object
/// keeps the control layer independent of the backend.
pub(crate) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A cause kept for the log.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation failed. Public answers never show the cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// A precondition of the plan no longer held; nothing was written.
    #[error("the data changed since it was read")]
    PreconditionFailed,
    /// The server or the disk refuses for now; a retry later may succeed.
    #[error("the key store is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else: a bug, or data that cannot be read.
    #[error("the key store failed")]
    Internal(#[source] Cause),
}

impl StoreError {
    /// An `Internal` error from a message (a broken invariant).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into().into())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// What every store offers.
pub(crate) trait Store: Send + Sync {
    /// Everything the index holds, as of one version.
    fn load(&self) -> StoreFuture<'_, Snapshot>;
    /// A feed of changes after now; subscribe before `load` so nothing falls between.
    fn subscribe(&self) -> broadcast::Receiver<FeedItem>;
    /// Whether the store is reachable and its change feed connected (for `/readyz`).
    fn is_healthy(&self) -> bool {
        true
    }
    /// Checks the plan's preconditions, applies its writes and publishes its changes,
    /// all or nothing; the version it produced.
    fn commit(&self, plan: Plan) -> StoreFuture<'_, u64>;
    /// The next id of a sequence (ids taken by failed commits are skipped).
    fn next_id(&self, sequence: Sequence) -> StoreFuture<'_, Id>;

    /// All companies, oldest first.
    fn companies(&self) -> StoreFuture<'_, Vec<Company>>;
    /// One company.
    fn company(&self, id: Id) -> StoreFuture<'_, Option<Company>>;
    /// A company's workspaces, oldest first.
    fn workspaces(&self, company: Id) -> StoreFuture<'_, Vec<Workspace>>;
    /// One workspace, whatever its company.
    fn workspace(&self, id: Id) -> StoreFuture<'_, Option<Workspace>>;
    /// A workspace's connections, oldest first.
    fn connections(&self, workspace: Id) -> StoreFuture<'_, Vec<Connection>>;
    /// One connection, whatever its workspace.
    fn connection(&self, id: Id) -> StoreFuture<'_, Option<Connection>>;
    /// A connection's write keys, oldest first.
    fn write_keys(&self, connection: Id) -> StoreFuture<'_, Vec<WriteKey>>;
    /// A company's API keys, in no particular order.
    fn api_keys(&self, company: Id) -> StoreFuture<'_, Vec<ApiKey>>;
    /// One API key, whatever its company.
    fn api_key(&self, id: String) -> StoreFuture<'_, Option<ApiKey>>;
    /// The API key with this digest, whatever its company.
    fn api_key_by_hash(&self, hash_hex: String) -> StoreFuture<'_, Option<ApiKey>>;
    /// Whether any API key exists at all.
    fn has_api_keys(&self) -> StoreFuture<'_, bool>;
}
