//! `/v1/companies`: the operator company's keys create tenants, each with a first API
//! key (userId "owner"). Companies are never deleted over the API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{AdminError, ErrorBody};
use super::extract::Body;
use super::views::{ApiKeyView, CompanyList, CompanyView, CreatedCompanyView};
use super::Admin;
use crate::control::fields::Name;
use crate::control::Caller;

/// A company to create.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewCompany {
    name: Name,
}

/// `POST /v1/companies` → 201 with the first API key's secret.
#[utoipa::path(post, path = "/v1/companies", tag = "companies", request_body = NewCompany,
    responses((status = 201, description = "the company and its first API key, secret shown once", body = CreatedCompanyView),
        (status = 409, description = "the data kept changing; try again", body = ErrorBody)))]
pub(crate) async fn create(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
    Body(new): Body<NewCompany>,
) -> Result<(StatusCode, Json<CreatedCompanyView>), AdminError> {
    let created = admin.control.create_company(&caller, new.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCompanyView {
            company: CompanyView::from(&created.company),
            api_key: ApiKeyView::new(&created.key, Some(&created.secret)),
        }),
    ))
}

/// `GET /v1/companies`
#[utoipa::path(get, path = "/v1/companies", tag = "companies",
    responses((status = 200, description = "all companies, oldest first", body = CompanyList)))]
pub(crate) async fn list(
    State(admin): State<Arc<Admin>>,
    caller: Caller,
) -> Result<Json<CompanyList>, AdminError> {
    let all = admin.control.companies(&caller).await?;
    Ok(Json(CompanyList {
        companies: all.iter().map(CompanyView::from).collect(),
    }))
}
