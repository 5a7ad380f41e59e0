//! The ingest listener: a hyper 1 service for SDKs and webhook senders. Per request:
//! route → write key → index lookup (lock-free) → budget → body (bounded, decompressed)
//! → validate and enrich → sink (durable) → 200. Nothing here touches the store.

pub mod answer;
pub mod auth;
pub mod body;
pub mod events;
mod listener;
pub mod routes;
pub mod webhook;

pub use listener::{serve, ConnectionLimits};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request};
use hyper::body::Incoming;
use ipnet::IpNet;

use crate::index::{Admission, KeyIndex, KeyTarget};
use crate::limits::IpLimiter;
use crate::model::EventSource;
use crate::sink::{Batch, Sink};
use crate::telemetry::{IngestMetrics, ROUTES};
use crate::{clock, net};
use answer::{Answer, Cors, IngestError};
use routes::Route;

/// Everything a request needs, shared by all connections.
pub struct Ingest {
    /// Write key → target.
    pub index: Arc<KeyIndex>,
    /// Where accepted events go.
    pub sink: Arc<Sink>,
    /// Cap on a body after decompression.
    pub max_request_bytes: usize,
    /// Cap on one event.
    pub max_event_bytes: usize,
    /// Connection-level limits.
    pub limits: ConnectionLimits,
    /// Time allowed to send the body.
    pub body_timeout: Duration,
    /// CORS policy.
    pub cors: Cors,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Optional per-address budget.
    pub ip_limiter: Option<IpLimiter>,
    /// Pre-registered metric handles.
    pub metrics: IngestMetrics,
    /// Whether to log one line per request (target `intake::access`).
    pub access_log: bool,
}

/// One request, answered; CORS headers go on every answer; metrics and the access
/// log see every answer.
pub async fn handle(ingest: &Ingest, request: Request<Incoming>, peer: SocketAddr) -> Answer {
    let started = Instant::now();
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    let route = Route::parse(request.uri().path());
    let route_label = route_label(route.as_ref(), request.method());
    let method = request.method().clone();
    let mut answer = match respond(ingest, route, request, peer).await {
        Ok(answer) => answer,
        Err(error) => error.into_answer(),
    };
    ingest.cors.decorate(&mut answer, origin.as_ref());
    let status = answer.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    ingest.metrics.request(route_label, status, seconds);
    if ingest.access_log {
        tracing::info!(
            target: "intake::access",
            %method,
            route = ROUTES[route_label],
            status,
            duration_ms = seconds * 1e3,
            client = %peer.ip(),
            "request"
        );
    }
    answer
}

/// Index into `telemetry::ROUTES`.
fn route_label(route: Option<&Route>, method: &Method) -> usize {
    match route {
        _ if method == Method::OPTIONS => 4,
        Some(Route::Batch) => 0,
        Some(Route::Single(_)) => 1,
        Some(Route::Events) => 2,
        Some(Route::Webhook { .. }) => 3,
        None => 5,
    }
}

async fn respond(
    ingest: &Ingest,
    route: Option<Route>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Answer, IngestError> {
    let route = route.ok_or(IngestError::NotFound)?;
    match *request.method() {
        Method::POST => {}
        Method::OPTIONS => return Ok(ingest.cors.preflight()),
        _ => return Err(IngestError::MethodNotAllowed),
    }
    let received_at = clock::now();
    let client_ip = net::client_ip(peer.ip(), request.headers(), &ingest.trusted_proxies);
    if let Some(limiter) = &ingest.ip_limiter {
        limiter.check(client_ip).map_err(|t| {
            ingest.metrics.limited_ip.increment(1);
            IngestError::TooManyRequests(t)
        })?;
    }
    let (parts, body) = request.into_parts();
    let query = parts.uri.query();
    // A key outside the body is checked before the body is read.
    let early_key = match &route {
        Route::Webhook {
            path_key: Some(key),
        } => Some(key.clone()),
        Route::Webhook { path_key: None } => {
            auth::from_headers(&parts.headers)?.or_else(|| auth::from_query(query))
        }
        _ => auth::from_headers(&parts.headers)?,
    };
    let early_target = match &early_key {
        Some(key) => Some(authorise(ingest, key, &route)?),
        None if route.is_webhook() => return Err(no_key()),
        None => None,
    };
    let body = body::read(
        body,
        &parts.headers,
        ingest.max_request_bytes,
        ingest.body_timeout,
    )
    .await?;
    ingest.metrics.body_bytes.increment(body.len() as u64);
    let received_at_text = clock::format_millis(received_at);

    if route.is_webhook() {
        let target = early_target.ok_or_else(no_key)?;
        let batch = webhook::envelope(&body, &parts.headers, target, &received_at_text)?;
        write_to_sink(ingest, batch).await?;
        ingest.metrics.accepted.increment(1);
        return Ok(answer::accepted_answer(1, &[]));
    }

    let parsed = events::parse(&body, &route);
    let target = match early_target {
        Some(target) => target,
        None => {
            let body_key = parsed.as_ref().ok().and_then(|p| p.write_key.clone());
            let key = body_key
                .or_else(|| auth::from_query(query))
                .ok_or_else(no_key)?;
            authorise(ingest, &key, &route)?
        }
    };
    let client_ip_text = client_ip.to_string();
    let facts = events::RequestFacts {
        received_at,
        received_at_text: &received_at_text,
        client_ip: &client_ip_text,
        target,
        max_event_bytes: ingest.max_event_bytes,
    };
    let outcome = events::process(parsed?, &facts)?;
    for reject in &outcome.rejected {
        ingest.metrics.rejected(reject.code);
    }
    write_to_sink(ingest, outcome.batch).await?;
    ingest.metrics.accepted.increment(outcome.accepted as u64);
    Ok(answer::accepted_answer(outcome.accepted, &outcome.rejected))
}

/// Looks the key up, checks it may use this route, and takes one request from its
/// budget.
fn authorise(ingest: &Ingest, key: &str, route: &Route) -> Result<KeyTarget, IngestError> {
    let source = if route.is_webhook() {
        EventSource::Webhook
    } else {
        EventSource::Sdk
    };
    match ingest.index.admit(key, source) {
        Admission::Admitted(target) => Ok(target),
        Admission::Unknown => Err(IngestError::Unauthorized("unknown or revoked write key")),
        Admission::WrongSource(EventSource::Sdk) => Err(IngestError::Forbidden(
            "this write key belongs to an SDK connection; webhook routes need a webhook connection's key",
        )),
        Admission::WrongSource(EventSource::Webhook) => Err(IngestError::Forbidden(
            "this write key belongs to a webhook connection; post to /v1/webhook/{writeKey}",
        )),
        Admission::Throttled(throttled) => {
            ingest.metrics.limited_key.increment(1);
            Err(IngestError::TooManyRequests(throttled))
        }
    }
}

fn no_key() -> IngestError {
    IngestError::Unauthorized(
        "no write key: send it as Basic auth user name, a Bearer token, X-Write-Key, `writeKey` in the body or the query",
    )
}

async fn write_to_sink(ingest: &Ingest, batch: Batch) -> Result<(), IngestError> {
    let started = Instant::now();
    let result = ingest.sink.write(batch).await;
    ingest
        .metrics
        .sink_seconds
        .record(started.elapsed().as_secs_f64());
    result.map_err(|e| IngestError::Unavailable(e.to_string()))
}
