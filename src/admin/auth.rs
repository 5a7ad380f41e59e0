//! API-key authentication for the admin API: `Authorization: Bearer api_…` or
//! `X-API-Key`, looked up by SHA-256 digest in the index, then the key's IP allow-list.
//! The caller, and the workspace it acts in, reach handlers as extractors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;
use http::HeaderMap;

use super::error::AdminError;
use super::Admin;
use crate::control::{Caller, ControlError};
use crate::model::Workspace;
use crate::{net, secrets};

/// Header naming the workspace a request acts in.
const WORKSPACE_HEADER: &str = "intake-workspace";

/// Middleware: authenticates the request and stores the [`Caller`].
pub(crate) async fn authenticate(
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
        return Err(AdminError::AddressRefused(ip));
    }
    request.extensions_mut().insert(Caller::from(key.as_ref()));
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
            .copied()
            .ok_or(AdminError::Unauthorized("an API key is required"))
    }
}

/// The workspace a workspace-scoped request acts in, checked against the caller.
pub(crate) struct Scope {
    pub(crate) workspace: Workspace,
}

impl FromRequestParts<Arc<Admin>> for Scope {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, admin: &Arc<Admin>) -> Result<Self, AdminError> {
        let caller = Caller::from_request_parts(parts, admin).await?;
        let header = match parts.headers.get(WORKSPACE_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().unwrap_or("not a number")),
        };
        let workspace = admin.control.scope(&caller, header).await?;
        Ok(Self { workspace })
    }
}

/// A connection id of the path (`/v1/connections/{id}…`) in the request's workspace.
/// A non-numeric id names a connection that does not exist.
pub(crate) struct InConnection {
    pub(crate) workspace: Workspace,
    pub(crate) id: crate::model::Id,
}

impl FromRequestParts<Arc<Admin>> for InConnection {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, admin: &Arc<Admin>) -> Result<Self, AdminError> {
        let Scope { workspace } = Scope::from_request_parts(parts, admin).await?;
        let params = RawPathParams::from_request_parts(parts, admin)
            .await
            .map_err(|_| AdminError::NotFound("no such route"))?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "id")
            .and_then(|(_, value)| value.parse().ok())
            .ok_or(AdminError::Control(ControlError::ConnectionNotFound))?;
        Ok(Self { workspace, id })
    }
}
