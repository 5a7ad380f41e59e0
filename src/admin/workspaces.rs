//! `/v1/workspaces`: a company's workspaces.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::AdminError;
use super::{json_object, path_id, required_text, Admin};
use crate::clock::format_millis;
use crate::model::Workspace;

/// Longest workspace name.
const MAX_NAME: usize = 100;

/// The API form of a workspace.
pub fn view(w: &Workspace) -> Value {
    json!({"id": w.id, "name": w.name, "createdAt": format_millis(w.created_at)})
}

/// Workspace ids a caller may see: all of its company's, or its own one.
fn visible(caller: &Caller, id: u32) -> Result<(), AdminError> {
    match caller.key.workspace_id {
        Some(own) if own != id => Err(AdminError::NotFound("workspace does not exist".into())),
        _ => Ok(()),
    }
}

/// `POST /v1/workspaces {"name"}`
#[utoipa::path(post, path = "/v1/workspaces", request_body = crate::admin::openapi::NameBody, responses((status = 201, description = "created", body = crate::admin::openapi::WorkspaceBody), (status = 422, description = "a field rule", body = crate::admin::openapi::ErrorBody)))]
pub async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    caller.require_company_wide()?;
    let name = required_text(&json_object(&body)?, "name", MAX_NAME)?;
    let written = admin
        .store
        .create_workspace(caller.key.company_id, name)
        .await?;
    let workspace = admin.settled(written).await;
    Ok((StatusCode::CREATED, Json(view(&workspace))))
}

/// `GET /v1/workspaces`
#[utoipa::path(get, path = "/v1/workspaces", responses((status = 200, description = "the company workspaces", body = crate::admin::openapi::WorkspaceList)))]
pub async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
) -> Result<Json<Value>, AdminError> {
    let all = admin.store.list_workspaces(caller.key.company_id).await?;
    let shown: Vec<Value> = all
        .iter()
        .filter(|w| visible(&caller, w.id).is_ok())
        .map(view)
        .collect();
    Ok(Json(json!({ "workspaces": shown })))
}

/// `GET /v1/workspaces/{id}`
#[utoipa::path(get, path = "/v1/workspaces/{id}", params(("id" = u32, Path)), responses((status = 200, description = "the workspace", body = crate::admin::openapi::WorkspaceBody), (status = 404, description = "workspace does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn get_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id = path_id(&id, "workspace")?;
    visible(&caller, id)?;
    let workspace = admin.store.get_workspace(caller.key.company_id, id).await?;
    Ok(Json(view(&workspace)))
}

/// `DELETE /v1/workspaces/{id}`: also deletes its connections and revokes their keys.
#[utoipa::path(delete, path = "/v1/workspaces/{id}", params(("id" = u32, Path)), responses((status = 204, description = "deleted with its connections"), (status = 404, description = "workspace does not exist", body = crate::admin::openapi::ErrorBody)))]
pub async fn delete_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    let id = path_id(&id, "workspace")?;
    caller.require_company_wide()?;
    let written = admin
        .store
        .delete_workspace(caller.key.company_id, id)
        .await?;
    admin.settled(written).await;
    Ok(StatusCode::NO_CONTENT)
}
