//! Operations routes: liveness, readiness, metrics, and the JSON 404/405 of the admin
//! listener.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use super::error::{AdminError, ErrorBody};
use super::views::{Health, Readiness};
use super::Admin;
use crate::sink::SinkState;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "the process is up", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`: the index is loaded, the store reachable, the sink takes writes. A
/// sink that spools (its backend unreachable) still takes writes durably: 200, with
/// `"sink":"spooling"`.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "index loaded, store reachable, sink writable", body = Readiness),
        (status = 503, description = "not ready; the message says why", body = ErrorBody)))]
pub(crate) async fn readyz(State(admin): State<Arc<Admin>>) -> Result<Json<Readiness>, AdminError> {
    if !admin.index.is_loaded() {
        return Err(AdminError::NotReady("the key index is not loaded yet"));
    }
    if !admin.control.store_is_healthy() {
        return Err(AdminError::NotReady(
            "the store is unreachable; serving the last key index, admin writes refused",
        ));
    }
    let sink = admin.sink.state();
    if sink == SinkState::Refusing {
        return Err(AdminError::NotReady("the event sink refuses writes"));
    }
    Ok(Json(Readiness {
        status: "ready",
        version: admin.index.version(),
        sink: sink.name(),
    }))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(admin): State<Arc<Admin>>) -> impl axum::response::IntoResponse {
    let body = crate::telemetry::render(admin.index.update_age().as_secs_f64());
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}

/// Unknown admin path.
pub(crate) async fn not_found() -> AdminError {
    AdminError::NotFound("no such route")
}

/// Known admin path, wrong method.
pub(crate) async fn method_not_allowed() -> AdminError {
    AdminError::MethodNotAllowed
}
