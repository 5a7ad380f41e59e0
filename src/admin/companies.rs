//! `/v1/companies`: the operator company's keys create tenants, each with a first API
//! key (userId "owner"). Companies are never deleted over the API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::api_keys;
use super::auth::Caller;
use super::error::AdminError;
use super::{json_object, required_text, Admin};
use crate::clock::format_millis;
use crate::model::Company;
use crate::secrets;
use crate::store::bootstrap::new_api_key_record;

/// Longest company name.
const MAX_NAME: usize = 100;

fn view(c: &Company) -> Value {
    json!({"id": c.id, "name": c.name, "createdAt": format_millis(c.created_at)})
}

/// `POST /v1/companies {"name"}` → 201 with the first API key's secret.
#[utoipa::path(post, path = "/v1/companies", request_body = crate::admin::openapi::NameBody, responses((status = 201, description = "the company and its first API key", body = crate::admin::openapi::CreatedCompany), (status = 403, description = "not an operator key", body = crate::admin::openapi::ErrorBody), (status = 422, description = "a field rule", body = crate::admin::openapi::ErrorBody)))]
pub async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    caller.require_operator()?;
    let name = required_text(&json_object(&body)?, "name", MAX_NAME)?;
    let secret = secrets::new_api_key();
    let key = new_api_key_record(&secret, 0, None, "owner".into());
    let written = admin
        .store
        .create_company(name, false, Some(key.clone()))
        .await?;
    let company = admin.settled(written).await;
    let key = crate::model::ApiKey {
        company_id: company.id,
        ..key
    };
    let mut body = view(&company);
    body["apiKey"] = api_keys::view(&key, Some(&secret));
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/companies`
#[utoipa::path(get, path = "/v1/companies", responses((status = 200, description = "all companies", body = crate::admin::openapi::CompanyList), (status = 403, description = "not an operator key", body = crate::admin::openapi::ErrorBody)))]
pub async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
) -> Result<Json<Value>, AdminError> {
    caller.require_operator()?;
    let all = admin.store.list_companies().await?;
    let shown: Vec<Value> = all.iter().map(view).collect();
    Ok(Json(json!({ "companies": shown })))
}
