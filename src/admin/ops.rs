//! Operations routes: liveness, readiness, and the JSON 404/405 of the admin listener.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::AdminError;
use super::Admin;
use crate::sink::SinkState;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "the process is up", body = crate::admin::openapi::StatusBody)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the index is loaded and the sink takes writes. A sink that spools
/// (its backend unreachable) still takes writes durably: 200, with `"sink":"spooling"`.
#[utoipa::path(get, path = "/readyz", security(()), responses((status = 200, description = "index loaded, sink writable", body = crate::admin::openapi::StatusBody), (status = 503, description = "not ready", body = crate::admin::openapi::ErrorBody)))]
pub async fn readyz(State(admin): State<Arc<Admin>>) -> Result<Json<Value>, AdminError> {
    if !admin.index.is_loaded() {
        return Err(AdminError::Unavailable(
            "the key index is not loaded yet".into(),
        ));
    }
    if !admin.store.is_healthy() {
        return Err(AdminError::Unavailable(
            "the store is unreachable; serving the last key index, admin writes refused".into(),
        ));
    }
    let sink = admin.sink.state();
    if sink == SinkState::Refusing {
        return Err(AdminError::Unavailable(
            "the event sink refuses writes".into(),
        ));
    }
    Ok(Json(
        json!({"status": "ready", "version": admin.index.version(), "sink": sink.name()}),
    ))
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(admin): State<Arc<Admin>>) -> impl axum::response::IntoResponse {
    let body = crate::telemetry::render(admin.index.update_age().as_secs_f64());
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}

/// Unknown admin path.
pub async fn not_found() -> AdminError {
    AdminError::NotFound("no such route".into())
}

/// Known admin path, wrong method.
pub async fn method_not_allowed() -> AdminError {
    AdminError::MethodNotAllowed
}
