//! `/v1/keys`: a company's API keys. Secrets are shown once, at creation; the store
//! keeps SHA-256 digests. Lists page newest first (createdAt, then id, descending)
//! with `startingAfter`/`endingBefore` cursors, as Stripe and Peach do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use time::{Date, Duration as TimeDuration, OffsetDateTime};

use super::auth::Caller;
use super::error::AdminError;
use super::{json_object, required_text, Admin};
use crate::clock::{self, format_millis};
use crate::model::{ApiKey, ApiKeyStatus, Id};
use crate::net::parse_cidr;
use crate::secrets;
use crate::store::bootstrap::new_api_key_record;
use crate::store::StoreError;

/// Longest `description`.
const MAX_DESCRIPTION: usize = 200;
/// Longest `userId`.
const MAX_USER_ID: usize = 200;
/// Default and largest page.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;
/// After a version change, going back to an older version is allowed this long.
const DOWNGRADE_WINDOW: TimeDuration = TimeDuration::hours(72);
/// Compare-and-set attempts for an update racing other updates.
const UPDATE_ATTEMPTS: usize = 5;

/// The key object; `secret` is shown in full only when the key was just created.
pub fn view(key: &ApiKey, secret: Option<&str>) -> Value {
    let shown = match secret {
        Some(secret) => secret.to_string(),
        None => secrets::mask_api_key_tail(&key.key_tail),
    };
    json!({
        "id": key.id,
        "companyId": key.company_id,
        "workspaceId": key.workspace_id,
        "userId": key.user_id,
        "key": shown,
        "whitelistedIPs": key.whitelisted_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "status": status_name(key.status),
        "description": key.description,
        "apiVersion": key.api_version,
        "apiVersionUpdatedAt": key.api_version_updated_at.map(format_millis),
        "apiVersionDowngradeNotAllowedAfter": key.api_version_downgrade_not_allowed_after.map(format_millis),
        "createdAt": format_millis(key.created_at),
        "updatedAt": format_millis(key.updated_at),
        "deletedAt": key.deleted_at.map(format_millis),
    })
}

fn status_name(status: ApiKeyStatus) -> &'static str {
    match status {
        ApiKeyStatus::Active => "active",
        ApiKeyStatus::Inactive => "inactive",
    }
}

/// `POST /v1/keys {"userId","whitelistedIPs"?,"description"?,"workspaceId"?}` → 201
/// with the secret.
#[utoipa::path(post, path = "/v1/keys", request_body = crate::admin::openapi::NewApiKey, responses((status = 201, description = "the key, with its secret shown this once", body = crate::admin::openapi::ApiKeyBody), (status = 403, description = "a workspace-restricted key", body = crate::admin::openapi::ErrorBody), (status = 422, description = "a field rule", body = crate::admin::openapi::ErrorBody)))]
pub async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    caller.require_company_wide()?;
    let object = json_object(&body)?;
    let user_id = required_text(&object, "userId", MAX_USER_ID)?;
    let description = description(&object)?.unwrap_or(None);
    let whitelisted_ips = whitelisted_ips(&object)?.unwrap_or_default();
    let workspace_id = match object.get("workspaceId") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let id = value
                .as_u64()
                .and_then(|v| Id::try_from(v).ok())
                .ok_or_else(|| AdminError::invalid("workspaceId must be a workspace id"))?;
            match admin.store.get_workspace(caller.key.company_id, id).await {
                Ok(_) => Some(id),
                Err(StoreError::WorkspaceNotFound) => {
                    return Err(AdminError::invalid(
                        "workspaceId does not name a workspace of this company",
                    ))
                }
                Err(other) => return Err(other.into()),
            }
        }
    };
    let secret = secrets::new_api_key();
    let mut key = new_api_key_record(&secret, caller.key.company_id, workspace_id, user_id);
    key.description = description;
    key.whitelisted_ips = whitelisted_ips;
    let written = admin.store.create_api_key(key).await?;
    let key = admin.settled(written).await;
    Ok((StatusCode::CREATED, Json(view(&key, Some(&secret)))))
}

/// `GET /v1/keys/{keyId}` (masked).
#[utoipa::path(get, path = "/v1/keys/{keyId}", params(("keyId" = String, Path)), responses((status = 200, description = "the key (masked)", body = crate::admin::openapi::ApiKeyBody), (status = 404, description = "no such key", body = crate::admin::openapi::ErrorBody)))]
pub async fn get_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    caller.require_company_wide()?;
    let key = admin.store.get_api_key(caller.key.company_id, id).await?;
    Ok(Json(view(&key, None)))
}

/// `PUT /v1/keys/{keyId} {"apiVersion"?,"description"?,"whitelistedIPs"?}`
#[utoipa::path(put, path = "/v1/keys/{keyId}", params(("keyId" = String, Path)), request_body = crate::admin::openapi::ApiKeyChanges, responses((status = 200, description = "the changed key", body = crate::admin::openapi::ApiKeyBody), (status = 404, description = "no such key", body = crate::admin::openapi::ErrorBody), (status = 422, description = "a field rule", body = crate::admin::openapi::ErrorBody)))]
pub async fn update(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    caller.require_company_wide()?;
    let object = json_object(&body)?;
    let description = description(&object)?;
    let whitelisted_ips = whitelisted_ips(&object)?;
    let api_version = api_version(&object, clock::now().date())?;
    let key = change_api_key(&admin, &caller, &id, |current, now| {
        let mut next = current.clone();
        if let Some(description) = &description {
            next.description = description.clone();
        }
        if let Some(ips) = &whitelisted_ips {
            next.whitelisted_ips = ips.clone();
        }
        if let Some(version) = &api_version {
            change_api_version(&mut next, version, now)?;
        }
        Ok(Some(next))
    })
    .await?;
    Ok(Json(view(&key, None)))
}

/// Reads a key, lets `change` derive its next state (`None`: leave it as it is), and
/// stores that with compare-and-set on `updatedAt`, re-reading after a lost race.
async fn change_api_key(
    admin: &Admin,
    caller: &Caller,
    id: &str,
    change: impl Fn(&ApiKey, OffsetDateTime) -> Result<Option<ApiKey>, AdminError>,
) -> Result<ApiKey, AdminError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let current = admin
            .store
            .get_api_key(caller.key.company_id, id.to_string())
            .await?;
        let now = clock::now();
        let Some(next) = change(&current, now)? else {
            return Ok(current);
        };
        let next = ApiKey {
            updated_at: now,
            ..next
        };
        match admin.store.replace_api_key(next, current.updated_at).await {
            Ok(written) => return Ok(admin.settled(written).await),
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// `DELETE /v1/keys/{keyId}` → 204: soft delete; the key stops working everywhere.
#[utoipa::path(delete, path = "/v1/keys/{keyId}", params(("keyId" = String, Path)), responses((status = 204, description = "soft-deleted: inactive everywhere"), (status = 404, description = "no such key", body = crate::admin::openapi::ErrorBody)))]
pub async fn delete_one(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    caller.require_company_wide()?;
    change_api_key(&admin, &caller, &id, |current, now| {
        Ok((current.status == ApiKeyStatus::Active).then(|| ApiKey {
            status: ApiKeyStatus::Inactive,
            deleted_at: Some(now),
            ..current.clone()
        }))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/keys?status&limit&startingAfter&endingBefore&offset`
#[utoipa::path(get, path = "/v1/keys", params(("status" = Option<String>, Query, description = "active (default) or inactive"), ("limit" = Option<usize>, Query, description = "1..100, default 25"), ("startingAfter" = Option<String>, Query), ("endingBefore" = Option<String>, Query), ("offset" = Option<usize>, Query)), responses((status = 200, description = "one page, newest first", body = crate::admin::openapi::ApiKeyPage), (status = 422, description = "a bad parameter", body = crate::admin::openapi::ErrorBody)))]
pub async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AdminError> {
    caller.require_company_wide()?;
    let request = PageRequest::parse(&query)?;
    let mut all = admin.store.list_api_keys(caller.key.company_id).await?;
    all.sort_by_key(|k| std::cmp::Reverse(sort_key(k)));
    let cursor = |id: &String, name: &str| {
        all.iter()
            .find(|k| &k.id == id)
            .map(|k| (k.created_at, k.id.clone()))
            .ok_or_else(|| AdminError::invalid(format!("{name}: no API key has the id `{id}`")))
    };
    let ending_before = request
        .ending_before
        .as_ref()
        .map(|id| cursor(id, "endingBefore"))
        .transpose()?;
    let starting_after = request
        .starting_after
        .as_ref()
        .map(|id| cursor(id, "startingAfter"))
        .transpose()?;
    let filtered: Vec<&ApiKey> = all.iter().filter(|k| k.status == request.status).collect();
    let (start, end) = page_bounds(&filtered, &request, ending_before, starting_after);
    let page = &filtered[start..end];
    let url = |cursor: &str, id: &str| {
        format!(
            "/v1/keys?status={}&limit={}&{cursor}={id}",
            status_name(request.status),
            request.limit
        )
    };
    let next_url = match page.last() {
        Some(last) if end < filtered.len() => Some(url("startingAfter", &last.id)),
        _ => None,
    };
    let previous_url = match page.first() {
        Some(first) if start > 0 => Some(url("endingBefore", &first.id)),
        _ => None,
    };
    Ok(Json(json!({
        "status": 200,
        "total": filtered.len(),
        "count": page.len(),
        "nextUrl": next_url,
        "previousUrl": previous_url,
        "data": page.iter().map(|k| view(k, None)).collect::<Vec<_>>(),
    })))
}

type SortKey = (OffsetDateTime, String);

fn sort_key(key: &ApiKey) -> SortKey {
    (key.created_at, key.id.clone())
}

/// The query of a list request, validated.
struct PageRequest {
    status: ApiKeyStatus,
    limit: usize,
    offset: usize,
    starting_after: Option<String>,
    ending_before: Option<String>,
}

impl PageRequest {
    fn parse(query: &HashMap<String, String>) -> Result<Self, AdminError> {
        let status = match query.get("status").map(String::as_str) {
            None | Some("active") => ApiKeyStatus::Active,
            Some("inactive") => ApiKeyStatus::Inactive,
            Some(_) => return Err(AdminError::invalid("status must be active or inactive")),
        };
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| AdminError::invalid("limit must be an integer from 1 to 100"))?,
        };
        let offset = match query.get("offset") {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| AdminError::invalid("offset must be a non-negative integer"))?,
        };
        let non_empty = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
        Ok(Self {
            status,
            limit,
            offset,
            starting_after: non_empty("startingAfter"),
            ending_before: non_empty("endingBefore"),
        })
    }
}

/// The slice of the newest-first list a request asks for. `endingBefore` wins over
/// `startingAfter`; `offset` skips from the cursor in the direction of travel.
fn page_bounds(
    list: &[&ApiKey],
    request: &PageRequest,
    ending_before: Option<SortKey>,
    starting_after: Option<SortKey>,
) -> (usize, usize) {
    if let Some(cursor) = ending_before {
        let end = list
            .partition_point(|k| sort_key(k) > cursor)
            .saturating_sub(request.offset);
        return (end.saturating_sub(request.limit), end);
    }
    let start = match starting_after {
        Some(cursor) => list.partition_point(|k| sort_key(k) >= cursor),
        None => 0,
    };
    let start = (start + request.offset).min(list.len());
    (start, (start + request.limit).min(list.len()))
}

/// `description`: absent (None), or 1..200 characters or null (Some).
fn description(object: &Map<String, Value>) -> Result<Option<Option<String>>, AdminError> {
    match object.get("description") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(text)) if (1..=MAX_DESCRIPTION).contains(&text.chars().count()) => {
            Ok(Some(Some(text.clone())))
        }
        Some(_) => Err(AdminError::invalid(
            "description must be 1 to 200 characters, or null",
        )),
    }
}

/// `whitelistedIPs`: absent, or an array of IPv4/IPv6 addresses and CIDR blocks.
fn whitelisted_ips(object: &Map<String, Value>) -> Result<Option<Vec<ipnet::IpNet>>, AdminError> {
    let items = match object.get("whitelistedIPs") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(AdminError::invalid(
                "whitelistedIPs must be an array of IP addresses or CIDR blocks",
            ))
        }
    };
    items
        .iter()
        .map(|item| {
            item.as_str().and_then(parse_cidr).ok_or_else(|| {
                AdminError::invalid(format!(
                    "whitelistedIPs: {item} is not a valid IPv4/IPv6 address or CIDR block"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `apiVersion`: absent, or `YYYY-MM-DD`, a real date, not after `today`.
fn api_version(object: &Map<String, Value>, today: Date) -> Result<Option<String>, AdminError> {
    let Some(value) = object.get("apiVersion") else {
        return Ok(None);
    };
    let text = value.as_str().unwrap_or_default();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format)
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| AdminError::invalid("apiVersion must be a real date written YYYY-MM-DD"))?;
    if date > today {
        return Err(AdminError::invalid("apiVersion must not be in the future"));
    }
    Ok(Some(text.to_string()))
}

/// Applies a new version: timestamps move on a change; going back to an older version
/// is refused once the downgrade window of the last change has passed.
fn change_api_version(
    key: &mut ApiKey,
    version: &str,
    now: OffsetDateTime,
) -> Result<(), AdminError> {
    if key.api_version.as_deref() == Some(version) {
        return Ok(());
    }
    let is_downgrade = key
        .api_version
        .as_deref()
        .is_some_and(|current| version < current);
    if is_downgrade {
        if let Some(after) = key.api_version_downgrade_not_allowed_after {
            if now > after {
                return Err(AdminError::invalid(format!(
                    "apiVersion cannot go back to an older version after {}",
                    format_millis(after)
                )));
            }
        }
    }
    key.api_version = Some(version.to_string());
    key.api_version_updated_at = Some(now);
    key.api_version_downgrade_not_allowed_after = Some(now + DOWNGRADE_WINDOW);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with_version(version: &str, changed: OffsetDateTime) -> ApiKey {
        let mut key = new_api_key_record(&secrets::new_api_key(), 1, None, "u".into());
        key.api_version = Some(version.into());
        key.api_version_updated_at = Some(changed);
        key.api_version_downgrade_not_allowed_after = Some(changed + DOWNGRADE_WINDOW);
        key
    }

    #[test]
    fn api_versions_must_be_real_past_dates() {
        let today = time::macros::date!(2026 - 11 - 27);
        let parse = |v: Value| api_version(json!({ "apiVersion": v }).as_object().unwrap(), today);
        assert_eq!(
            parse(json!("2026-11-27")).unwrap().as_deref(),
            Some("2026-11-27")
        );
        for bad in [
            json!("2026-11-28"),
            json!("2026-02-30"),
            json!("2026-1-5"),
            json!(20260101),
            json!(null),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn downgrades_close_72_hours_after_a_change() {
        let changed = clock::parse_iso8601("2026-11-01T00:00:00Z").unwrap();
        let mut key = key_with_version("2026-10-01", changed);
        let within = changed + TimeDuration::hours(71);
        assert!(change_api_version(&mut key, "2026-09-01", within).is_ok());
        let mut key = key_with_version("2026-10-01", changed);
        let after = changed + TimeDuration::hours(73);
        let error = change_api_version(&mut key, "2026-09-01", after).unwrap_err();
        assert!(error.to_string().contains("apiVersion"));
        assert!(change_api_version(&mut key, "2026-10-15", after).is_ok());
        assert_eq!(key.api_version_updated_at, Some(after));
        assert_eq!(
            key.api_version_downgrade_not_allowed_after,
            Some(after + DOWNGRADE_WINDOW)
        );
    }
}
