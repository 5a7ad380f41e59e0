//! `/v1/workspaces`: a company's workspaces.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{AdminError, ErrorBody};
use super::extract::{path_id, Body};
use super::views::{WorkspaceList, WorkspaceView};
use super::Admin;
use crate::control::fields::Name;
use crate::control::{Caller, ControlError};

/// A workspace to create.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewWorkspace {
    name: Name,
}

/// `POST /v1/workspaces`
#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", request_body = NewWorkspace,
    responses((status = 201, description = "created", body = WorkspaceView),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Body(new): Body<NewWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceView>), AdminError> {
    let workspace = admin.control.create_workspace(&caller, new.name).await?;
    Ok((StatusCode::CREATED, Json(WorkspaceView::from(&workspace))))
}

/// `GET /v1/workspaces`
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces",
    responses((status = 200, description = "the company's workspaces (a restricted key's own)", body = WorkspaceList)))]
pub(crate) async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
) -> Result<Json<WorkspaceList>, AdminError> {
    let all = admin.control.workspaces(&caller).await?;
    Ok(Json(WorkspaceList {
        workspaces: all.iter().map(WorkspaceView::from).collect(),
    }))
}

/// `GET /v1/workspaces/{id}`
#[utoipa::path(get, path = "/v1/workspaces/{id}", tag = "workspaces", params(("id" = u32, Path)),
    responses((status = 200, description = "the workspace", body = WorkspaceView),
        (status = 404, description = "workspace does not exist", body = ErrorBody)))]
pub(crate) async fn get_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceView>, AdminError> {
    let id = path_id(&id, ControlError::WorkspaceNotFound)?;
    let workspace = admin.control.workspace(&caller, id).await?;
    Ok(Json(WorkspaceView::from(&workspace)))
}

/// `DELETE /v1/workspaces/{id}`: also deletes its connections and revokes their keys.
#[utoipa::path(delete, path = "/v1/workspaces/{id}", tag = "workspaces", params(("id" = u32, Path)),
    responses((status = 204, description = "deleted with its connections; their keys are revoked"),
        (status = 404, description = "workspace does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn delete_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    let id = path_id(&id, ControlError::WorkspaceNotFound)?;
    admin.control.delete_workspace(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
