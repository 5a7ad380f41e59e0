//! The records intake keeps: companies, workspaces, connections with their event
//! write keys, and API keys. These are the stored forms, shared by every store; the
//! admin API renders them and the index is built from them.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::millis;

/// Companies, workspaces and connections are numbered with 32-bit ids.
pub type Id = u32;

/// Most event write keys a connection may have.
pub const MAX_WRITE_KEYS_PER_CONNECTION: usize = 20;

/// A tenant: its API keys see only its own workspaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Sequential id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// The operator company (the bootstrap key's) may create other companies.
    pub operator: bool,
    /// Creation time.
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
}

/// A workspace groups connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Sequential id.
    pub id: Id,
    /// Owner.
    pub company_id: Id,
    /// Display name.
    pub name: String,
    /// Creation time.
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
}

/// What a connection's write keys may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// SDK routes (`/v1/batch`, `/v1/track`, …).
    Sdk,
    /// Webhook routes.
    Webhook,
}

impl EventSource {
    /// The source a connection type carries keys for; other types carry none.
    pub fn of_connection_type(kind: &str) -> Option<Self> {
        match kind {
            "sdk" => Some(Self::Sdk),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }

    /// The name used in envelopes and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sdk => "sdk",
            Self::Webhook => "webhook",
        }
    }
}

/// One event write key of a connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WriteKeyRecord {
    /// The key itself (write keys are bearer tokens shown to SDK users in full).
    pub key: String,
    /// Creation time; keys are listed oldest first.
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
}

/// A source or destination of events in a workspace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Random positive 31-bit id.
    pub id: Id,
    /// Owner workspace.
    pub workspace_id: Id,
    /// Display name.
    pub name: String,
    /// `sdk`, `webhook`, or another type that carries no keys.
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation time.
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
    /// Event write keys, oldest first; at most 20, never empty for sdk/webhook.
    #[serde(default)]
    pub keys: Vec<WriteKeyRecord>,
}

impl Connection {
    /// Where this connection's keys may post, if it has keys at all.
    pub fn source(&self) -> Option<EventSource> {
        EventSource::of_connection_type(&self.kind)
    }
}

/// Whether an API key still authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    /// Works.
    Active,
    /// Soft-deleted: kept for the record, refused everywhere.
    Inactive,
}

/// An API key of the admin API. The secret is kept only as its SHA-256 digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Random UUID.
    pub id: String,
    /// Owner company.
    pub company_id: Id,
    /// When set, the key acts only in this workspace.
    pub workspace_id: Option<Id>,
    /// Who the key was issued to.
    pub user_id: String,
    /// Hex SHA-256 of the secret.
    pub key_hash: String,
    /// Last four characters of the secret, for the masked form.
    pub key_tail: String,
    /// Client addresses allowed to use the key; empty allows all.
    pub whitelisted_ips: Vec<IpNet>,
    /// Active or soft-deleted.
    pub status: ApiKeyStatus,
    /// Free text, 1..200 characters.
    pub description: Option<String>,
    /// Pinned API version, `YYYY-MM-DD`.
    pub api_version: Option<String>,
    /// Last change of `api_version`.
    #[serde(with = "millis::option")]
    pub api_version_updated_at: Option<OffsetDateTime>,
    /// After this, the version may not go back.
    #[serde(with = "millis::option")]
    pub api_version_downgrade_not_allowed_after: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "millis")]
    pub updated_at: OffsetDateTime,
    /// Soft-delete time.
    #[serde(with = "millis::option")]
    pub deleted_at: Option<OffsetDateTime>,
}
