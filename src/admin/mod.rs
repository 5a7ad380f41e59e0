//! The admin listener (axum): key management for operators and tenants, plus health,
//! readiness and (later) metrics. Every `/v1` route is authenticated by an API key;
//! mutations answer once this node's index reflects them (read your writes).

pub mod api_keys;
pub mod auth;
pub mod companies;
pub mod connections;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod workspaces;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::Router;
use bytes::Bytes;
use ipnet::IpNet;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::index::KeyIndex;
use crate::limits::AuthFailures;
use crate::sink::Sink;
use crate::store::{Store, Written};
use error::AdminError;

/// How long a mutation waits for its own node's index before answering anyway.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared state of the admin handlers.
pub struct Admin {
    /// The source of truth.
    pub store: Arc<dyn Store>,
    /// For authentication and read-your-writes.
    pub index: Arc<KeyIndex>,
    /// For readiness.
    pub sink: Arc<Sink>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed authentications per client address (online guessing guard).
    pub auth_failures: AuthFailures,
}

impl Admin {
    /// Waits until the index reflects a mutation, then hands back its value.
    pub async fn settled<T>(&self, written: Written<T>) -> T {
        if !self
            .index
            .wait_for_version(written.version, READ_YOUR_WRITES_TIMEOUT)
            .await
        {
            tracing::warn!(
                version = written.version,
                "index did not reflect an admin write in time"
            );
        }
        written.value
    }
}

/// The admin routes.
pub fn router(admin: Arc<Admin>) -> Router {
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
            get(connections::get_one).delete(connections::delete_one),
        )
        .route(
            "/v1/connections/{id}/event-write-keys",
            post(connections::add_key).get(connections::list_keys),
        )
        .route(
            "/v1/connections/{id}/event-write-keys/{key}",
            delete(connections::delete_key),
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

/// Serves the admin API until `shutdown`.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: CancellationToken) {
    let app = router(admin).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(%error, "admin listener failed");
    }
}

/// Parses a JSON object body: 400 when it is not JSON or not an object.
pub fn json_object(body: &Bytes) -> Result<Map<String, Value>, AdminError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(AdminError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(AdminError::BadRequest(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A required string field of 1..=`max` characters (trimmed).
pub fn required_text(
    object: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<String, AdminError> {
    let text = match object.get(field) {
        None | Some(Value::Null) => {
            return Err(AdminError::invalid(format!("{field} is required")))
        }
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(AdminError::invalid(format!("{field} must be a string"))),
    };
    let count = text.chars().count();
    if count == 0 || count > max {
        return Err(AdminError::invalid(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(text.to_string())
}

/// A numeric path id; anything else is the named object not existing.
pub fn path_id(text: &str, what: &str) -> Result<crate::model::Id, AdminError> {
    text.parse()
        .map_err(|_| AdminError::NotFound(format!("{what} does not exist")))
}
