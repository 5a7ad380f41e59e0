//! API-key authentication for the admin API: `Authorization: Bearer api_…` or
//! `X-API-Key`, looked up by SHA-256 digest in the index, then the key's IP allow-list.
//! The caller, and the workspace it acts in, reach handlers as extractors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;
use http::HeaderMap;

use super::error::AdminError;
use super::Admin;
use crate::index::ApiKeyAuth;
use crate::model::{Id, Workspace};
use crate::{net, secrets};

/// Header naming the workspace a request acts in.
pub const WORKSPACE_HEADER: &str = "intake-workspace";

/// The authenticated caller of an admin request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The API key's authorisation.
    pub key: Arc<ApiKeyAuth>,
    /// The client address it was checked against.
    pub ip: IpAddr,
}

impl Caller {
    /// Operator-only routes (companies).
    pub fn require_operator(&self) -> Result<(), AdminError> {
        self.require_company_wide()?;
        if !self.key.operator {
            return Err(AdminError::Forbidden(
                "only the operator company's API keys may manage companies".into(),
            ));
        }
        Ok(())
    }

    /// Routes closed to workspace-restricted keys (API keys, companies).
    pub fn require_company_wide(&self) -> Result<(), AdminError> {
        if self.key.workspace_id.is_some() {
            return Err(AdminError::Forbidden(
                "this API key is restricted to one workspace".into(),
            ));
        }
        Ok(())
    }
}

/// Middleware: authenticates the request and stores the `Caller`.
pub async fn authenticate(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let ip = net::client_ip(peer.ip(), request.headers(), &admin.trusted_proxies);
    if let Some(retry_after) = admin.auth_failures.blocked(ip) {
        return Err(AdminError::TooManyRequests(retry_after));
    }
    let Some(presented) = presented_key(request.headers()) else {
        admin.auth_failures.record(ip);
        crate::telemetry::record_admin_auth_failure();
        return Err(AdminError::Unauthorized(
            "an API key is required: Authorization: Bearer api_… or X-API-Key",
        ));
    };
    let Some(key) = admin.index.api_key(presented) else {
        admin.auth_failures.record(ip);
        crate::telemetry::record_admin_auth_failure();
        tracing::info!(client = %ip, key = %secrets::redact(presented), "admin authentication failed");
        return Err(AdminError::Unauthorized(
            "unknown, inactive or malformed API key",
        ));
    };
    if !key.allows(ip) {
        return Err(AdminError::Forbidden(format!(
            "this API key may not be used from {ip}"
        )));
    }
    request.extensions_mut().insert(Caller { key, ip });
    Ok(next.run(request).await)
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AdminError::Internal("route without authentication".into()))
    }
}

/// The workspace a workspace-scoped request acts in, checked against the caller.
pub struct InWorkspace {
    /// The caller.
    pub caller: Caller,
    /// The workspace (the caller's company's).
    pub workspace: Workspace,
}

impl FromRequestParts<Arc<Admin>> for InWorkspace {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, admin: &Arc<Admin>) -> Result<Self, AdminError> {
        let caller = Caller::from_request_parts(parts, admin).await?;
        let named = match parts.headers.get(WORKSPACE_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<Id>().ok())
                    .ok_or_else(no_workspace)?,
            ),
        };
        let id = match (caller.key.workspace_id, named) {
            (Some(own), Some(named)) if own != named => {
                return Err(AdminError::Forbidden(
                    "this API key is restricted to another workspace".into(),
                ))
            }
            (Some(own), _) => own,
            (None, Some(named)) => named,
            (None, None) => return Err(no_workspace()),
        };
        let workspace = admin.store.get_workspace(caller.key.company_id, id).await?;
        Ok(Self { caller, workspace })
    }
}

fn no_workspace() -> AdminError {
    AdminError::NotFound("workspace does not exist".into())
}
