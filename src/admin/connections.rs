//! `/v1/connections` and their event write keys, in the caller's workspace.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::auth::InWorkspace;
use super::error::AdminError;
use super::{json_object, path_id, required_text, Admin};
use crate::clock::format_millis;
use crate::model::Connection;

/// Longest connection name.
const MAX_NAME: usize = 100;
/// Longest connection type.
const MAX_TYPE: usize = 64;

/// The API form of a connection.
pub fn view(c: &Connection) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "type": c.kind,
        "workspaceId": c.workspace_id,
        "createdAt": format_millis(c.created_at),
    })
}

/// `POST /v1/connections {"name","type"}`: sdk and webhook connections get their
/// first event write key.
#[utoipa::path(post, path = "/v1/connections", request_body = crate::admin::openapi::NewConnection, params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)")), responses((status = 201, description = "created (sdk and webhook connections with their first key)", body = crate::admin::openapi::ConnectionBody), (status = 404, description = "workspace does not exist", body = crate::admin::openapi::ErrorBody), (status = 422, description = "a field rule", body = crate::admin::openapi::ErrorBody)))]
pub async fn create(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let object = json_object(&body)?;
    let name = required_text(&object, "name", MAX_NAME)?;
    let kind = required_text(&object, "type", MAX_TYPE)?;
    if !kind
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(AdminError::invalid(
            "type must be a lower-case name such as sdk, webhook, app or database",
        ));
    }
    let written = admin
        .store
        .create_connection(scope.workspace.id, name, kind)
        .await?;
    let connection = admin.settled(written).await;
    Ok((StatusCode::CREATED, Json(view(&connection))))
}

/// `GET /v1/connections`
#[utoipa::path(get, path = "/v1/connections", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)")), responses((status = 200, description = "the workspace connections", body = crate::admin::openapi::ConnectionList), (status = 404, description = "workspace does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn list(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
) -> Result<Json<Value>, AdminError> {
    let all = admin.store.list_connections(scope.workspace.id).await?;
    let shown: Vec<Value> = all.iter().map(view).collect();
    Ok(Json(json!({ "connections": shown })))
}

/// `GET /v1/connections/{id}`
#[utoipa::path(get, path = "/v1/connections/{id}", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)"), ("id" = u32, Path)), responses((status = 200, description = "the connection", body = crate::admin::openapi::ConnectionBody), (status = 404, description = "workspace or connection does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn get_one(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id = path_id(&id, "connection")?;
    let connection = admin.store.get_connection(scope.workspace.id, id).await?;
    Ok(Json(view(&connection)))
}

/// `DELETE /v1/connections/{id}`: revokes all its keys.
#[utoipa::path(delete, path = "/v1/connections/{id}", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)"), ("id" = u32, Path)), responses((status = 204, description = "deleted; its keys are revoked"), (status = 404, description = "workspace or connection does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn delete_one(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    let id = path_id(&id, "connection")?;
    let written = admin
        .store
        .delete_connection(scope.workspace.id, id)
        .await?;
    admin.settled(written).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connections/{id}/event-write-keys` → 201 `{"key"}`
#[utoipa::path(post, path = "/v1/connections/{id}/event-write-keys", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)"), ("id" = u32, Path)), responses((status = 201, description = "the new key", body = crate::admin::openapi::WriteKeyBody), (status = 404, description = "workspace or connection does not exist", body = crate::admin::openapi::ErrorBody), (status = 422, description = "TooManyEventWriteKeys or NotEventConnection", body = crate::admin::openapi::ErrorBody)))]
pub async fn add_key(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let id = path_id(&id, "connection")?;
    let written = admin.store.add_write_key(scope.workspace.id, id).await?;
    let key = admin.settled(written).await;
    Ok((StatusCode::CREATED, Json(json!({ "key": key }))))
}

/// `GET /v1/connections/{id}/event-write-keys` → `{"keys":[…]}`, oldest first.
#[utoipa::path(get, path = "/v1/connections/{id}/event-write-keys", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)"), ("id" = u32, Path)), responses((status = 200, description = "the keys, oldest first", body = crate::admin::openapi::WriteKeyList), (status = 404, description = "workspace or connection does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn list_keys(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id = path_id(&id, "connection")?;
    let connection = admin.store.get_connection(scope.workspace.id, id).await?;
    if connection.source().is_none() {
        return Err(crate::store::StoreError::NotEventConnection.into());
    }
    let keys: Vec<&str> = connection.keys.iter().map(|k| k.key.as_str()).collect();
    Ok(Json(json!({ "keys": keys })))
}

/// `DELETE /v1/connections/{id}/event-write-keys/{key}` → 204
#[utoipa::path(delete, path = "/v1/connections/{id}/event-write-keys/{key}", params(("Intake-Workspace" = Option<u32>, Header, description = "workspace to act in (optional for workspace-restricted keys)"), ("id" = u32, Path), ("key" = String, Path)), responses((status = 204, description = "deleted"), (status = 404, description = "workspace, connection or key does not exist", body = crate::admin::openapi::ErrorBody), (status = 422, description = "SingleEventWriteKey", body = crate::admin::openapi::ErrorBody)))]
pub async fn delete_key(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    let id = path_id(&id, "connection")?;
    let written = admin
        .store
        .delete_write_key(scope.workspace.id, id, key)
        .await?;
    admin.settled(written).await;
    Ok(StatusCode::NO_CONTENT)
}
