//! Which endpoint answers a request (`dispatch`), and the CORS preflight.

use std::net::SocketAddr;

use http::{Method, Request};
use hyper::body::Incoming;

use super::answer::{Answer, IngestError};
use super::gate::OriginScope;
use super::routes::{Endpoint, Route};
use super::{auth, pixel, respond, settings, Ingest};

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
        scope.judge(ingest, &target);
    }
    ingest.cors.preflight(request.headers(), scope.verdict)
}
