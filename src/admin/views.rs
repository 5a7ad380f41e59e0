//! What the admin API answers: the response bodies the handlers build, which are
//! also the OpenAPI document's schemas. Times are RFC 3339 UTC with milliseconds.

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::format_millis;
use crate::model::{ApiKey, ApiKeyStatus, Company, Connection, Id, Workspace};
use crate::secrets;

/// A company.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompanyView {
    id: Id,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&Company> for CompanyView {
    fn from(c: &Company) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            created_at: format_millis(c.created_at),
        }
    }
}

/// A new company with its first API key (the secret shown this once).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedCompanyView {
    #[serde(flatten)]
    pub(crate) company: CompanyView,
    pub(crate) api_key: ApiKeyView,
}

/// `{"companies":[…]}`, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct CompanyList {
    pub(crate) companies: Vec<CompanyView>,
}

/// A workspace.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkspaceView {
    id: Id,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&Workspace> for WorkspaceView {
    fn from(w: &Workspace) -> Self {
        Self {
            id: w.id,
            name: w.name.clone(),
            created_at: format_millis(w.created_at),
        }
    }
}

/// `{"workspaces":[…]}`, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct WorkspaceList {
    pub(crate) workspaces: Vec<WorkspaceView>,
}

/// A connection.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionView {
    id: Id,
    name: String,
    /// `sdk`, `webhook`, or another type that carries no keys.
    #[serde(rename = "type")]
    kind: String,
    workspace_id: Id,
    #[schema(format = DateTime)]
    created_at: String,
    /// Browser origins allowed to send with its keys; empty: `ingest.cors_origins`.
    allowed_origins: Vec<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            kind: c.kind.clone(),
            workspace_id: c.workspace_id,
            created_at: format_millis(c.created_at),
            allowed_origins: c.allowed_origins.iter().map(|o| o.to_string()).collect(),
        }
    }
}

/// `{"connections":[…]}`, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConnectionList {
    pub(crate) connections: Vec<ConnectionView>,
}

/// `{"key":"…"}`: a new event write key.
#[derive(Serialize, ToSchema)]
pub(crate) struct WriteKeyView {
    pub(crate) key: String,
}

/// `{"keys":[…]}`: a connection's event write keys, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct WriteKeyList {
    pub(crate) keys: Vec<String>,
}

/// Whether an API key authenticates.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KeyStatus {
    Active,
    Inactive,
}

/// An API key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyView {
    id: String,
    company_id: Id,
    workspace_id: Option<Id>,
    user_id: String,
    /// In full only in the answer that creates it; afterwards `api_…` and the last four.
    key: String,
    #[serde(rename = "whitelistedIPs")]
    whitelisted_ips: Vec<String>,
    status: KeyStatus,
    description: Option<String>,
    api_version: Option<String>,
    #[schema(format = DateTime)]
    api_version_updated_at: Option<String>,
    #[schema(format = DateTime)]
    api_version_downgrade_not_allowed_after: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    deleted_at: Option<String>,
}

impl ApiKeyView {
    /// The key object; `secret` is shown in full only when the key was just created.
    pub(crate) fn new(key: &ApiKey, secret: Option<&str>) -> Self {
        Self {
            id: key.id.clone(),
            company_id: key.company_id,
            workspace_id: key.workspace_id,
            user_id: key.user_id.clone(),
            key: match secret {
                Some(secret) => secret.to_string(),
                None => secrets::mask_api_key_tail(&key.key_tail),
            },
            whitelisted_ips: key
                .whitelisted_ips
                .iter()
                .map(ToString::to_string)
                .collect(),
            status: match key.status {
                ApiKeyStatus::Active => KeyStatus::Active,
                ApiKeyStatus::Inactive => KeyStatus::Inactive,
            },
            description: key.description.clone(),
            api_version: key.api_version.clone(),
            api_version_updated_at: key.api_version_updated_at.map(format_millis),
            api_version_downgrade_not_allowed_after: key
                .api_version_downgrade_not_allowed_after
                .map(format_millis),
            created_at: format_millis(key.created_at),
            updated_at: format_millis(key.updated_at),
            deleted_at: key.deleted_at.map(format_millis),
        }
    }
}

/// One page of API keys, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyPage {
    /// The HTTP status, 200.
    pub(crate) status: u16,
    /// Keys with the requested status.
    pub(crate) total: usize,
    /// Keys on this page.
    pub(crate) count: usize,
    /// The next page (`startingAfter`), or null at the end.
    pub(crate) next_url: Option<String>,
    /// The previous page (`endingBefore`), or null at the start.
    pub(crate) previous_url: Option<String>,
    pub(crate) data: Vec<ApiKeyView>,
}

/// `GET /healthz`: `{"status":"ok"}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    pub(crate) status: &'static str,
}

/// `GET /readyz`: `{"status":"ready","version":N,"sink":"ok"}`, N the store version the index
/// reflects.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    pub(crate) status: &'static str,
    pub(crate) version: u64,
    /// `ok`, or `spooling` while the backend is unreachable and events go to the spool.
    #[schema(example = "ok")]
    pub(crate) sink: &'static str,
}
