//! The records intake keeps (companies, workspaces, connections, event write keys, API
//! keys) and the small types every layer shares: what a write key points at, what an
//! API key authorises, which origins a connection allows. The stores persist these,
//! the control layer decides on them, the admin API renders them, the index holds the
//! parts the hot path needs.

mod origins;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::millis;

pub use origins::{
    AllowedOrigin, AllowedOrigins, OriginError, OriginListError, MAX_ORIGINS, MAX_ORIGIN_LEN,
    ORIGIN_PATTERN,
};

/// Companies, workspaces and connections are numbered with 32-bit ids.
pub type Id = u32;

/// A tenant: its API keys see only its own workspaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Company {
    pub(crate) id: Id,
    pub(crate) name: String,
    /// The operator company (the bootstrap key's) may create other companies.
    pub(crate) operator: bool,
    #[serde(with = "millis")]
    pub(crate) created_at: OffsetDateTime,
}

/// A workspace groups connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Workspace {
    pub(crate) id: Id,
    pub(crate) company_id: Id,
    pub(crate) name: String,
    #[serde(with = "millis")]
    pub(crate) created_at: OffsetDateTime,
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
    pub(crate) fn of_connection_type(kind: &str) -> Option<Self> {
        match kind {
            "sdk" => Some(Self::Sdk),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }

    /// The name used in envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sdk => "sdk",
            Self::Webhook => "webhook",
        }
    }
}

/// Where a write key's events go and which routes it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyTarget {
    /// Workspace of the connection.
    pub workspace_id: Id,
    /// Connection the key belongs to.
    pub connection_id: Id,
    /// SDK or webhook routes.
    pub source: EventSource,
}

/// One event write key of a connection (write keys are bearer tokens shown to SDK
/// users in full).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WriteKey {
    pub(crate) key: String,
    /// Keys are listed oldest first.
    #[serde(with = "millis")]
    pub(crate) created_at: OffsetDateTime,
}

/// A source or destination of events in a workspace. Its write keys are kept apart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection {
    /// Random positive 31-bit id.
    pub(crate) id: Id,
    pub(crate) workspace_id: Id,
    pub(crate) name: String,
    /// `sdk`, `webhook`, or another type that carries no keys.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(with = "millis")]
    pub(crate) created_at: OffsetDateTime,
    /// Browser origins allowed to send with its keys; empty: `ingest.cors_origins`.
    #[serde(default)]
    pub(crate) allowed_origins: Vec<AllowedOrigin>,
    /// Bumped by every change, so that an update can require the record unchanged.
    #[serde(default)]
    pub(crate) revision: u64,
}

impl Connection {
    /// Where this connection's keys may post, if it has keys at all.
    pub(crate) fn source(&self) -> Option<EventSource> {
        EventSource::of_connection_type(&self.kind)
    }

    /// Where its keys send events; `None` for types without keys.
    pub(crate) fn target(&self) -> Option<KeyTarget> {
        Some(KeyTarget {
            workspace_id: self.workspace_id,
            connection_id: self.id,
            source: self.source()?,
        })
    }
}

/// Whether an API key still authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ApiKeyStatus {
    Active,
    /// Soft-deleted: kept for the record, refused everywhere.
    Inactive,
}

/// An API key of the admin API. The secret is kept only as its SHA-256 digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKey {
    /// Random UUID.
    pub(crate) id: String,
    pub(crate) company_id: Id,
    /// When set, the key acts only in this workspace.
    pub(crate) workspace_id: Option<Id>,
    pub(crate) user_id: String,
    /// Hex SHA-256 of the secret.
    pub(crate) key_hash: String,
    /// Last four characters of the secret, for the masked form.
    pub(crate) key_tail: String,
    /// Client addresses allowed to use the key; empty allows all.
    pub(crate) whitelisted_ips: Vec<IpNet>,
    pub(crate) status: ApiKeyStatus,
    pub(crate) description: Option<String>,
    /// Pinned API version, `YYYY-MM-DD`.
    pub(crate) api_version: Option<String>,
    #[serde(with = "millis::option")]
    pub(crate) api_version_updated_at: Option<OffsetDateTime>,
    /// After this, the version may not go back.
    #[serde(with = "millis::option")]
    pub(crate) api_version_downgrade_not_allowed_after: Option<OffsetDateTime>,
    #[serde(with = "millis")]
    pub(crate) created_at: OffsetDateTime,
    /// Compare-and-set token of updates.
    #[serde(with = "millis")]
    pub(crate) updated_at: OffsetDateTime,
    #[serde(with = "millis::option")]
    pub(crate) deleted_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// What the index needs to authenticate with this key.
    pub(crate) fn auth(&self, operator: bool) -> ApiKeyAuth {
        ApiKeyAuth {
            id: self.id.clone(),
            hash: self.key_hash.clone(),
            company_id: self.company_id,
            workspace_id: self.workspace_id,
            whitelisted_ips: self.whitelisted_ips.clone(),
            operator,
        }
    }
}

/// What the admin listener needs to authorise a request made with an API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Key id (not secret).
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Owner company.
    pub company_id: Id,
    /// Set when the key is restricted to one workspace.
    pub workspace_id: Option<Id>,
    /// Allowed client addresses; empty allows all.
    pub whitelisted_ips: Vec<IpNet>,
    /// Whether the key belongs to the operator company.
    pub operator: bool,
}

impl ApiKeyAuth {
    /// Whether a client address may use this key.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        let ip = crate::net::canonical_ip(ip);
        self.whitelisted_ips.is_empty() || self.whitelisted_ips.iter().any(|n| n.contains(&ip))
    }
}
