//! `/v1/connections`: connections of the caller's workspace (`Intake-Workspace`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{InConnection, Scope};
use super::error::{AdminError, ErrorBody};
use super::extract::{some, Body};
use super::views::{ConnectionList, ConnectionView};
use super::Admin;
use crate::control::fields::{AllowedOrigins, ConnectionType, Name};
use crate::control::ConnectionChanges;

/// A connection to create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewConnection {
    name: Name,
    #[serde(rename = "type")]
    kind: ConnectionType,
    #[serde(default)]
    allowed_origins: Option<AllowedOrigins>,
}

/// Changes to a connection; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionUpdate {
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    name: Option<Name>,
    /// null or `[]` removes them.
    #[serde(default, deserialize_with = "some")]
    allowed_origins: Option<AllowedOrigins>,
}

/// `POST /v1/connections`: sdk and webhook connections get their first write key.
#[utoipa::path(post, path = "/v1/connections", tag = "connections", request_body = NewConnection,
    responses((status = 201, description = "created (sdk and webhook connections with their first key)", body = ConnectionView),
        (status = 404, description = "workspace does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn create(
    State(admin): State<Arc<Admin>>,
    scope: Scope,
    Body(new): Body<NewConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), AdminError> {
    let origins = new.allowed_origins.unwrap_or_default();
    let connection = admin
        .control
        .create_connection(&scope.workspace, new.name, new.kind, origins)
        .await?;
    Ok((StatusCode::CREATED, Json(ConnectionView::from(&connection))))
}

/// `GET /v1/connections`
#[utoipa::path(get, path = "/v1/connections", tag = "connections",
    responses((status = 200, description = "the workspace's connections, oldest first", body = ConnectionList),
        (status = 404, description = "workspace does not exist", body = ErrorBody)))]
pub(crate) async fn list(
    State(admin): State<Arc<Admin>>,
    scope: Scope,
) -> Result<Json<ConnectionList>, AdminError> {
    let all = admin.control.connections(&scope.workspace).await?;
    Ok(Json(ConnectionList {
        connections: all.iter().map(ConnectionView::from).collect(),
    }))
}

/// `GET /v1/connections/{id}`
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = u32, Path)),
    responses((status = 200, description = "the connection", body = ConnectionView),
        (status = 404, description = "workspace or connection does not exist", body = ErrorBody)))]
pub(crate) async fn get_one(
    State(admin): State<Arc<Admin>>,
    at: InConnection,
) -> Result<Json<ConnectionView>, AdminError> {
    let connection = admin.control.connection(&at.workspace, at.id).await?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// `PUT /v1/connections/{id}`: changes `name` and `allowedOrigins`.
#[utoipa::path(put, path = "/v1/connections/{id}", tag = "connections", request_body = ConnectionUpdate,
    params(("id" = u32, Path)),
    responses((status = 200, description = "the changed connection", body = ConnectionView),
        (status = 404, description = "workspace or connection does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn update(
    State(admin): State<Arc<Admin>>,
    at: InConnection,
    Body(update): Body<ConnectionUpdate>,
) -> Result<Json<ConnectionView>, AdminError> {
    let changes = ConnectionChanges {
        name: update.name,
        allowed_origins: update.allowed_origins,
    };
    let connection = admin
        .control
        .update_connection(&at.workspace, at.id, changes)
        .await?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// `DELETE /v1/connections/{id}`: revokes all its keys.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = u32, Path)),
    responses((status = 204, description = "deleted; its keys are revoked"),
        (status = 404, description = "workspace or connection does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn delete_one(
    State(admin): State<Arc<Admin>>,
    at: InConnection,
) -> Result<StatusCode, AdminError> {
    admin
        .control
        .delete_connection(&at.workspace, at.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
