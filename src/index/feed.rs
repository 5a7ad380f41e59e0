//! The change feed the index is built from: a full [`Snapshot`] at load, then
//! [`ChangeMessage`]s numbered by the store-wide version. The embedded store sends them
//! over a channel; the Redis store publishes the same JSON on `intake:changes`. Both
//! are built by serde from these types, on the writing side only.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::WriteKeyBytes;
use crate::model::{AllowedOrigin, ApiKeyAuth, Id, KeyTarget};

/// One change to what the index holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Change {
    /// A write key now authenticates for this target.
    WriteKeyAdded {
        /// The key.
        key: String,
        /// Where its events go.
        target: KeyTarget,
    },
    /// A write key no longer authenticates.
    WriteKeyRevoked {
        /// The key.
        key: String,
    },
    /// An active API key was created or changed.
    ApiKeyPut {
        /// What authentication needs of it.
        auth: ApiKeyAuth,
    },
    /// An API key no longer authenticates.
    ApiKeyRevoked {
        /// Hex SHA-256 of the secret.
        hash: String,
    },
    /// A connection's allowed origins changed; empty when it has none (or is gone).
    OriginsSet {
        /// The connection.
        connection_id: Id,
        /// Its allowed origins.
        origins: Vec<AllowedOrigin>,
    },
}

/// The changes of one mutation, with the store version it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMessage {
    /// Store version after the mutation; consecutive mutations differ by one.
    pub version: u64,
    /// What changed.
    pub changes: Vec<Change>,
}

/// Everything the index holds, as of one store version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Store version the snapshot reflects.
    pub version: u64,
    /// Every active write key and its target.
    pub write_keys: Vec<(WriteKeyBytes, KeyTarget)>,
    /// Every active API key.
    pub api_keys: Vec<ApiKeyAuth>,
    /// The allowed origins of every connection that has any.
    pub origins: Vec<(Id, Vec<AllowedOrigin>)>,
}

/// What a change-feed subscriber receives.
#[derive(Debug, Clone)]
pub(crate) enum FeedItem {
    /// A mutation's changes.
    Changes(Arc<ChangeMessage>),
    /// The feed lost track (reconnect, overflow, unreadable message): reload in full.
    Resync,
}
