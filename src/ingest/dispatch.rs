//! Which endpoint answers a request (`dispatch`), the CORS preflight, and what every
//! endpoint checks before it reads anything: the client's address budget, the write
//! key (via `authorise`) and the page's origin against the key's connection's list.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request};
use hyper::body::Incoming;

use super::answer::{Answer, IngestError};
use super::origins::AllowedOrigins;
use super::routes::{Endpoint, Route};
use super::{auth, authorise, pixel, respond, settings, Ingest};
use crate::index::KeyTarget;
use crate::model::EventSource;
use crate::net;

/// What a request's CORS answer depends on: its `Origin`, and its key's connection's
/// allowed origins once the key is known.
pub struct OriginScope {
    /// The request's `Origin` header.
    pub origin: Option<http::HeaderValue>,
    /// The allowed origins of the key's connection, when it has a list.
    pub connection: Option<Arc<AllowedOrigins>>,
}

/// Answers a request on a known endpoint, or 404.
pub(super) async fn dispatch(
    ingest: &Ingest,
    endpoint: Option<Endpoint>,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut OriginScope,
) -> Answer {
    let Some(endpoint) = endpoint else {
        return IngestError::NotFound("no such route").into_answer();
    };
    if request.method() == Method::OPTIONS {
        return preflight(ingest, &endpoint, &request, scope);
    }
    let result = match endpoint {
        Endpoint::Pixel(kind) => return pixel::respond(ingest, kind, request, peer, scope).await,
        Endpoint::SegmentSettings(_) | Endpoint::SourceConfig => {
            settings::respond(ingest, &endpoint, request, peer, scope)
        }
        Endpoint::Events(route) => respond(ingest, route, false, request, peer, scope).await,
        Endpoint::Beacon => respond(ingest, Route::Batch, true, request, peer, scope).await,
    };
    result.unwrap_or_else(IngestError::into_answer)
}

/// A preflight carries no credentials: the connection's list comes from a key in the
/// path or the `writeKey` query parameter when there is one (looked up without
/// touching its budget), else `ingest.cors_origins` applies.
fn preflight(
    ingest: &Ingest,
    endpoint: &Endpoint,
    request: &Request<Incoming>,
    scope: &mut OriginScope,
) -> Answer {
    let key = match endpoint.path_key() {
        Some(key) => Some(key.to_string()),
        None => auth::from_query(request.uri().query()),
    };
    if let Some(target) = key.and_then(|key| ingest.index.lookup(&key)) {
        scope.connection = connection_origins(ingest, &target);
    }
    ingest
        .cors
        .preflight(request.headers(), scope.connection.as_deref())
}

/// The client's address, within its budget when `rate_limit.per_ip_per_second` is on.
pub(super) fn check_ip(
    ingest: &Ingest,
    peer: SocketAddr,
    headers: &http::HeaderMap,
) -> Result<IpAddr, IngestError> {
    let client_ip = net::client_ip(peer.ip(), headers, &ingest.trusted_proxies);
    if let Some(limiter) = &ingest.ip_limiter {
        limiter.check(client_ip).map_err(|t| {
            ingest.metrics.limited_ip.increment(1);
            IngestError::TooManyRequests(t)
        })?;
    }
    Ok(client_ip)
}

/// `authorise`, then the request's `Origin` against the key's connection's allowed
/// origins (403 when it is not allowed; no `Origin` is not checked).
pub(super) fn admit(
    ingest: &Ingest,
    key: &str,
    source: EventSource,
    scope: &mut OriginScope,
) -> Result<KeyTarget, IngestError> {
    let target = authorise(ingest, key, source)?;
    scope.connection = connection_origins(ingest, &target);
    if !ingest
        .cors
        .admits(scope.connection.as_deref(), scope.origin.as_ref())
    {
        return Err(IngestError::Forbidden(
            "this page's origin is not allowed to send events with this write key",
        ));
    }
    Ok(target)
}

/// The allowed origins of a key's connection, read from the key index (no store
/// access, no lock); `None` when the connection has no list of its own, so that
/// `ingest.cors_origins` applies.
///
/// Wiring point: the control plane's index carries connections' `allowedOrigins`;
/// until it is connected here, every connection defers to `ingest.cors_origins`.
fn connection_origins(_ingest: &Ingest, _target: &KeyTarget) -> Option<Arc<AllowedOrigins>> {
    None
}
