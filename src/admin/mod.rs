//! The admin listener (axum): key management for operators and tenants, plus health,
//! readiness, metrics and the OpenAPI document. Every `/v1` route is authenticated by
//! an API key; handlers parse typed bodies, hand the operation to the control layer
//! and render its result, so no rule lives here.

mod api_keys;
mod auth;
mod auth_failures;
mod companies;
mod connections;
mod error;
mod extract;
mod openapi;
mod ops;
mod server;
mod views;
mod workspaces;
mod write_keys;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::Router;
use ipnet::IpNet;

use crate::control::Control;
use crate::index::KeyIndex;
use crate::sink::Sink;

pub(crate) use auth_failures::AuthFailures;
pub(crate) use server::{serve, AdminLimits};

/// Shared state of the admin handlers.
pub(crate) struct Admin {
    /// Decides every operation.
    pub(crate) control: Arc<Control>,
    /// Authenticates API keys; readiness.
    pub(crate) index: Arc<KeyIndex>,
    /// For readiness.
    pub(crate) sink: Arc<Sink>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// Failed authentications per client (online guessing guard).
    pub(crate) auth_failures: AuthFailures,
    /// Time allowed to send a request body.
    pub(crate) body_timeout: Duration,
}

/// The admin routes.
pub(crate) fn router(admin: Arc<Admin>) -> Router {
    let api = Router::new()
        .route(
            "/v1/companies",
            post(companies::create).get(companies::list),
        )
        .route("/v1/keys", post(api_keys::create).get(api_keys::list))
        .route(
            "/v1/keys/{id}",
            get(api_keys::get_one)
                .put(api_keys::update)
                .delete(api_keys::delete_one),
        )
        .route(
            "/v1/workspaces",
            post(workspaces::create).get(workspaces::list),
        )
        .route(
            "/v1/workspaces/{id}",
            get(workspaces::get_one).delete(workspaces::delete_one),
        )
        .route(
            "/v1/connections",
            post(connections::create).get(connections::list),
        )
        .route(
            "/v1/connections/{id}",
            get(connections::get_one)
                .put(connections::update)
                .delete(connections::delete_one),
        )
        .route(
            "/v1/connections/{id}/event-write-keys",
            post(write_keys::add).get(write_keys::list),
        )
        .route(
            "/v1/connections/{id}/event-write-keys/{key}",
            delete(write_keys::delete_one),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/metrics", get(ops::metrics))
        .merge(api)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(admin)
}
