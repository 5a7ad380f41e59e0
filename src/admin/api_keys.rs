//! `/v1/keys`: a company's API keys. Secrets are shown once, at creation; the store
//! keeps SHA-256 digests. Lists page newest first with `startingAfter`/`endingBefore`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{AdminError, ErrorBody};
use super::extract::{some, Body, Params};
use super::views::{ApiKeyPage, ApiKeyView};
use super::Admin;
use crate::control::api_keys::{ApiKeyChanges, NewApiKey};
use crate::control::fields::{ApiVersion, Description, UserId, WhitelistedIps};
use crate::control::paging::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use crate::control::Caller;
use crate::model::{ApiKeyStatus, Id};

/// An API key to create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewApiKeyBody {
    user_id: UserId,
    #[serde(rename = "whitelistedIPs", default)]
    whitelisted_ips: Option<WhitelistedIps>,
    #[serde(default)]
    description: Option<Description>,
    /// Restricts the key to this workspace of the company.
    #[serde(default)]
    workspace_id: Option<Id>,
}

/// Changes to an API key; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyUpdate {
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    api_version: Option<ApiVersion>,
    /// null clears it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<Description>)]
    description: Option<Option<Description>>,
    /// null or `[]` allows every address.
    #[serde(rename = "whitelistedIPs", default, deserialize_with = "some")]
    whitelisted_ips: Option<WhitelistedIps>,
}

/// Which keys a list shows.
#[derive(Deserialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StatusFilter {
    #[default]
    Active,
    Inactive,
}

/// The query of `GET /v1/keys`.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// active (default) or inactive.
    #[param(inline)]
    status: Option<StatusFilter>,
    /// 1 to 100, default 25.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// Keys after this one (an id).
    starting_after: Option<String>,
    /// Keys before this one (an id); wins over startingAfter.
    ending_before: Option<String>,
    /// Keys to skip from the cursor in the direction of travel (0 to 2^63 - 1; past
    /// the end: an empty page).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<u64>,
}

/// `POST /v1/keys` → 201 with the secret.
#[utoipa::path(post, path = "/v1/keys", tag = "API keys", request_body = NewApiKeyBody,
    responses((status = 201, description = "the key, with its secret shown this once", body = ApiKeyView),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Body(body): Body<NewApiKeyBody>,
) -> Result<(StatusCode, Json<ApiKeyView>), AdminError> {
    let new = NewApiKey {
        user_id: body.user_id,
        whitelisted_ips: body.whitelisted_ips.unwrap_or_default(),
        description: body.description,
        workspace_id: body.workspace_id,
    };
    let (key, secret) = admin.control.create_api_key(&caller, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyView::new(&key, Some(&secret))),
    ))
}

/// `GET /v1/keys/{keyId}` (masked).
#[utoipa::path(get, path = "/v1/keys/{keyId}", tag = "API keys", params(("keyId" = String, Path)),
    responses((status = 200, description = "the key (masked)", body = ApiKeyView),
        (status = 404, description = "API key does not exist", body = ErrorBody)))]
pub(crate) async fn get_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, AdminError> {
    let key = admin.control.api_key(&caller, &id).await?;
    Ok(Json(ApiKeyView::new(&key, None)))
}

/// `PUT /v1/keys/{keyId}`
#[utoipa::path(put, path = "/v1/keys/{keyId}", tag = "API keys", params(("keyId" = String, Path)),
    request_body = ApiKeyUpdate,
    responses((status = 200, description = "the changed key", body = ApiKeyView),
        (status = 404, description = "API key does not exist", body = ErrorBody),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn update(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(update): Body<ApiKeyUpdate>,
) -> Result<Json<ApiKeyView>, AdminError> {
    let changes = ApiKeyChanges {
        api_version: update.api_version,
        description: update.description,
        whitelisted_ips: update.whitelisted_ips,
    };
    let key = admin.control.update_api_key(&caller, &id, changes).await?;
    Ok(Json(ApiKeyView::new(&key, None)))
}

/// `DELETE /v1/keys/{keyId}` → 204: soft delete; the key stops working everywhere.
#[utoipa::path(delete, path = "/v1/keys/{keyId}", tag = "API keys", params(("keyId" = String, Path)),
    responses((status = 204, description = "inactive everywhere (again 204 when it already was)"),
        (status = 404, description = "API key does not exist", body = ErrorBody),
        (status = 409, description = "the operator company's last active key, or the data kept changing", body = ErrorBody)))]
pub(crate) async fn delete_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.control.delete_api_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/keys?status&limit&startingAfter&endingBefore&offset`
#[utoipa::path(get, path = "/v1/keys", tag = "API keys", params(ListQuery),
    responses((status = 200, description = "one page, newest first", body = ApiKeyPage),
        (status = 422, description = "a bad parameter, or a cursor naming no key", body = ErrorBody)))]
pub(crate) async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<ApiKeyPage>, AdminError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::Invalid(
            "limit must be an integer from 1 to 100".into(),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(AdminError::Invalid(
            "offset must be an integer from 0 to 9223372036854775807".into(),
        ));
    }
    let status = query.status.unwrap_or_default();
    let non_empty = |text: Option<String>| text.filter(|t| !t.is_empty());
    let request = PageRequest {
        status: match status {
            StatusFilter::Active => ApiKeyStatus::Active,
            StatusFilter::Inactive => ApiKeyStatus::Inactive,
        },
        limit,
        offset,
        starting_after: non_empty(query.starting_after),
        ending_before: non_empty(query.ending_before),
    };
    let page = admin.control.api_key_page(&caller, &request).await?;
    let status_name = match status {
        StatusFilter::Active => "active",
        StatusFilter::Inactive => "inactive",
    };
    let url = |cursor: &str, id: String| {
        format!("/v1/keys?status={status_name}&limit={limit}&{cursor}={id}")
    };
    Ok(Json(ApiKeyPage {
        status: 200,
        total: page.total,
        count: page.keys.len(),
        next_url: page.next.map(|id| url("startingAfter", id)),
        previous_url: page.previous.map(|id| url("endingBefore", id)),
        data: page.keys.iter().map(|k| ApiKeyView::new(k, None)).collect(),
    }))
}
