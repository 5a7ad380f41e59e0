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
pub async fn list(
    State(admin): State<Arc<Admin>>,
    scope: InWorkspace,
) -> Result<Json<Value>, AdminError> {
    let all = admin.store.list_connections(scope.workspace.id).await?;
    let shown: Vec<Value> = all.iter().map(view).collect();
    Ok(Json(json!({ "connections": shown })))
}

/// `GET /v1/connections/{id}`
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
