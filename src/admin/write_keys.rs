//! `/v1/connections/{id}/event-write-keys`: a connection's 1 to 20 event write keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::error::{AdminError, ErrorBody};
use super::views::{WriteKeyList, WriteKeyView};
use super::{auth::InConnection, Admin};

/// `POST /v1/connections/{id}/event-write-keys` → 201 `{"key"}`
#[utoipa::path(post, path = "/v1/connections/{id}/event-write-keys", tag = "event write keys",
    params(("id" = u32, Path)),
    responses((status = 201, description = "the new key", body = WriteKeyView),
        (status = 404, description = "workspace or connection does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody),
        (status = 422, description = "TooManyEventWriteKeys, or NotEventConnection", body = ErrorBody)))]
pub(crate) async fn add(
    State(admin): State<Arc<Admin>>,
    at: InConnection,
) -> Result<(StatusCode, Json<WriteKeyView>), AdminError> {
    let key = admin.control.add_write_key(&at.workspace, at.id).await?;
    Ok((StatusCode::CREATED, Json(WriteKeyView { key })))
}

/// `GET /v1/connections/{id}/event-write-keys` → `{"keys":[…]}`, oldest first.
#[utoipa::path(get, path = "/v1/connections/{id}/event-write-keys", tag = "event write keys",
    params(("id" = u32, Path)),
    responses((status = 200, description = "the keys, oldest first", body = WriteKeyList),
        (status = 404, description = "workspace or connection does not exist", body = ErrorBody),
        (status = 422, description = "NotEventConnection", body = ErrorBody)))]
pub(crate) async fn list(
    State(admin): State<Arc<Admin>>,
    at: InConnection,
) -> Result<Json<WriteKeyList>, AdminError> {
    let keys = admin.control.write_keys(&at.workspace, at.id).await?;
    Ok(Json(WriteKeyList {
        keys: keys.into_iter().map(|k| k.key).collect(),
    }))
}

/// `DELETE /v1/connections/{id}/event-write-keys/{key}` → 204
#[utoipa::path(delete, path = "/v1/connections/{id}/event-write-keys/{key}", tag = "event write keys",
    params(("id" = u32, Path), ("key" = String, Path)),
    responses((status = 204, description = "deleted; the key stops working on every node"),
        (status = 404, description = "workspace, connection or key does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody),
        (status = 422, description = "SingleEventWriteKey", body = ErrorBody)))]
pub(crate) async fn delete_one(
    State(admin): State<Arc<Admin>>,
    Path((_, key)): Path<(String, String)>,
    at: InConnection,
) -> Result<StatusCode, AdminError> {
    admin
        .control
        .delete_write_key(&at.workspace, at.id, &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
