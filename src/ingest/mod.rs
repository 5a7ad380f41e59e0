//! The ingest listener: a hyper 1 service for SDKs and webhook senders. Per request:
//! route → write key → index lookup (lock-free) → budget → origin → body (bounded,
//! decompressed) → validate and enrich → sink (durable) → 200. `dispatch` picks the
//! endpoint; browser SDKs also get CORS preflights (`cors`, `origins`), RudderStack's
//! pixel (`pixel`) and both vendors' settings documents (`settings`). Nothing here
//! touches the store.

pub mod answer;
pub mod auth;
pub mod body;
pub mod cors;
pub mod dispatch;
pub mod events;
mod gate;
mod listener;
pub mod pixel;
pub mod routes;
pub mod settings;
pub mod webhook;

pub use listener::{serve, ConnectionLimits};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request};
use hyper::body::Incoming;
use ipnet::IpNet;

use crate::clock;
use crate::index::{KeyIndex, KeyTarget};
use crate::limits::{EventsRefused, IpLimiter};
use crate::sink::{Batch, Sink, Written};
use crate::telemetry::{IngestMetrics, ROUTES};
use answer::{Answer, IngestError};
use cors::Cors;
use gate::{admit, check_ip, OriginScope};
use routes::{Endpoint, Route};

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
    /// Cap on the events of one request (`ingest.max_events_per_request`).
    pub max_events_per_request: usize,
    /// Connection-level limits.
    pub limits: ConnectionLimits,
    /// Time allowed to send the body.
    pub body_timeout: Duration,
    /// CORS policy (`ingest.cors_origins`).
    pub cors: Cors,
    /// Where browsers reach intake (`ingest.public_url`), for the settings documents;
    /// `None`: the request's `Host`.
    pub public_url: Option<settings::PublicUrl>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Optional per-address budget.
    pub ip_limiter: Option<IpLimiter>,
    /// Pre-registered metric handles.
    pub metrics: IngestMetrics,
    /// Whether to log one line per request (target `intake::access`).
    pub access_log: bool,
    /// `dedup.webhook_id_header`: where a webhook sender puts its delivery id.
    pub webhook_id_header: Option<http::HeaderName>,
}

/// One request, answered; CORS headers go on every answer; metrics and the access
/// log see every answer.
pub async fn handle(ingest: &Ingest, request: Request<Incoming>, peer: SocketAddr) -> Answer {
    let started = Instant::now();
    let endpoint = Endpoint::parse(request.uri().path());
    let route_label = route_label(endpoint.as_ref(), request.method());
    let method = request.method().clone();
    let mut scope = OriginScope::new(request.headers().get(http::header::ORIGIN).cloned());
    let mut answer = dispatch::dispatch(ingest, endpoint, request, peer, &mut scope).await;
    ingest
        .cors
        .decorate(&mut answer, scope.origin.as_ref(), scope.verdict);
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
fn route_label(endpoint: Option<&Endpoint>, method: &Method) -> usize {
    match endpoint {
        _ if method == Method::OPTIONS => 4,
        Some(Endpoint::Events(Route::Batch) | Endpoint::Beacon) => 0,
        Some(Endpoint::Events(Route::Single(_))) => 1,
        Some(Endpoint::Events(Route::Events)) => 2,
        Some(Endpoint::Events(Route::Webhook { .. })) => 3,
        None => 5,
        Some(Endpoint::Pixel(_)) => 6,
        Some(Endpoint::SegmentSettings(_) | Endpoint::SourceConfig) => 7,
    }
}

/// The event routes: SDK bodies and webhooks. `key_in_query` (RudderStack's beacon)
/// reads the `writeKey` query parameter before the body, as for webhooks.
async fn respond(
    ingest: &Ingest,
    route: Route,
    key_in_query: bool,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut OriginScope,
) -> Result<Answer, IngestError> {
    if request.method() != Method::POST {
        return Err(IngestError::MethodNotAllowed("POST, OPTIONS"));
    }
    let received_at = clock::now();
    let client_ip = check_ip(ingest, peer, request.headers())?;
    let (parts, body) = request.into_parts();
    let query = parts.uri.query();
    // A key outside the body is checked before the body is read.
    let early_key = match &route {
        Route::Webhook {
            path_key: Some(key),
        } => Some(key.clone()),
        _ if key_in_query || route.is_webhook() => {
            auth::from_headers(&parts.headers)?.or_else(|| auth::from_query(query))
        }
        _ => auth::from_headers(&parts.headers)?,
    };
    let early_target = match &early_key {
        Some(key) => Some(admit(ingest, key, route.source(), scope)?),
        None if route.is_webhook() || key_in_query => return Err(no_key()),
        None => None,
    };
    let body = body::read(
        body,
        &parts.headers,
        ingest.max_request_bytes,
        ingest.body_timeout,
    )
    .await?;
    ingest.metrics.body_bytes(body.len() as u64);
    let received_at_text = clock::MillisText::of(received_at);

    if route.is_webhook() {
        let target = early_target.ok_or_else(no_key)?;
        let batch = webhook::envelope(
            &body,
            &parts.headers,
            ingest.webhook_id_header.as_ref(),
            target,
            received_at_text.as_str(),
        )?;
        let written = write_to_sink(ingest, batch).await?;
        ingest.metrics.accepted(1);
        return Ok(answer::accepted_answer(1, &[], 0, written.duplicates));
    }

    let parsed = events::parse(&body, &route, ingest.max_events_per_request);
    let (target, key) = match (early_target, early_key) {
        (Some(target), Some(key)) => (target, key),
        _ => {
            let body_key = parsed.as_ref().ok().and_then(|p| p.write_key.clone());
            let key = body_key
                .or_else(|| auth::from_query(query))
                .ok_or_else(no_key)?;
            let target = admit(ingest, &key, route.source(), scope)?;
            (target, key)
        }
    };
    let arrival = Arrival {
        at: received_at,
        at_text: received_at_text.as_str(),
        client_ip,
    };
    deliver(ingest, parsed?, target, &key, &arrival).await
}

/// When and from where a request came, as enrichment needs it.
struct Arrival<'a> {
    at: time::OffsetDateTime,
    /// `at`, formatted once for every event and envelope.
    at_text: &'a str,
    client_ip: IpAddr,
}

/// Takes the events from the key's budget, validates, enriches and stores them; the
/// 200 answer.
async fn deliver(
    ingest: &Ingest,
    parsed: events::Parsed<'_>,
    target: KeyTarget,
    key: &str,
    arrival: &Arrival<'_>,
) -> Result<Answer, IngestError> {
    charge_events(ingest, key, parsed.event_count())?;
    let client_ip = crate::net::IpText::of(arrival.client_ip);
    let facts = events::RequestFacts {
        received_at: arrival.at,
        received_at_text: arrival.at_text,
        client_ip: client_ip.as_str(),
        target,
        max_event_bytes: ingest.max_event_bytes,
    };
    let outcome = events::process(parsed, &facts)?;
    for &(code, count) in &outcome.rejected_by_code {
        ingest.metrics.rejected(code, count as u64);
    }
    let written = write_to_sink(ingest, outcome.batch).await?;
    ingest.metrics.accepted(outcome.accepted as u64);
    Ok(answer::accepted_answer(
        outcome.accepted,
        &outcome.rejected,
        outcome.rejected_count,
        written.duplicates,
    ))
}

/// Takes the request's events from its key's events budget.
fn charge_events(ingest: &Ingest, key: &str, count: usize) -> Result<(), IngestError> {
    ingest.index.charge_events(key, count).map_err(|refused| {
        ingest.metrics.limited_key.increment(1);
        match refused {
            EventsRefused::Throttled(throttled) => IngestError::TooManyRequests(throttled),
            EventsRefused::OverBurst { burst } => IngestError::PayloadTooLarge(format!(
                "the request carries {count} events, more than this key may ever send at once ({burst})"
            )),
        }
    })
}

/// Request headers from `(name, value)` pairs, for unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            let name = http::HeaderName::from_static(name);
            (name, value.parse().expect("a valid header value"))
        })
        .collect()
}

fn no_key() -> IngestError {
    IngestError::Unauthorized(
        "no write key: send it as Basic auth user name, a Bearer token, X-Write-Key, `writeKey` in the body or the query",
    )
}

/// Stores a request's envelopes; the receipt says how many were duplicates.
async fn write_to_sink(ingest: &Ingest, batch: Batch) -> Result<Written, IngestError> {
    let started = Instant::now();
    let result = ingest.sink.write(batch).await;
    ingest.metrics.sink_write(started.elapsed().as_secs_f64());
    match result {
        Ok(written) => {
            if written.duplicates > 0 {
                ingest
                    .metrics
                    .deduplicated
                    .increment(written.duplicates as u64);
            }
            Ok(written)
        }
        Err(error) => {
            tracing::debug!(error = %crate::telemetry::cause_chain(&error), "answering 503: the sink refused");
            Err(IngestError::Unavailable(error))
        }
    }
}
