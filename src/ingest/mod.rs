//! The ingest listener: a hyper 1 service for SDKs and webhook senders. Per request:
//! route → write key → index lookup (lock-free) → budget → body (bounded, decompressed)
//! → validate and enrich → sink (durable) → 200. Nothing here touches the store.

pub mod answer;
pub mod auth;
pub mod body;
pub mod events;
pub mod routes;
pub mod webhook;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::index::{Admission, KeyIndex, KeyTarget};
use crate::limits::{EventsRefused, IpLimiter};
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
    /// Cap on the events of one request (`ingest.max_events_per_request`).
    pub max_events_per_request: usize,
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

/// Limits applied to every ingest connection.
pub struct ConnectionLimits {
    /// Time allowed to send a request's headers; also bounds an idle keep-alive wait.
    pub header_timeout: Duration,
    /// Open connections at most; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Largest request head (HTTP/1) or header list (HTTP/2).
    pub max_header_bytes: usize,
}

/// Serves connections from `listener` (HTTP/1.1, and HTTP/2 with prior knowledge)
/// until `shutdown`, then lets in-flight requests finish (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builders = connection_builders(&ingest.limits);
    let slots = Arc::new(Semaphore::new(ingest.limits.max_connections));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "ingest accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ingest = ingest.clone();
        let timeout = ingest.limits.header_timeout;
        let service = service_fn(move |request| {
            let ingest = ingest.clone();
            async move { Ok::<_, Infallible>(handle(&ingest, request, peer).await) }
        });
        let (http1, http2) = (builders.0.clone(), builders.1.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // The protocol is told from the first bytes, within the header timeout, so
            // that a client sending nothing holds its slot no longer than a slow one.
            let result = match detect_protocol(&stream, timeout).await {
                Some(Protocol::Http1) => {
                    let io = TokioIo::new(stream);
                    watcher.watch(http1.serve_connection(io, service)).await
                }
                Some(Protocol::Http2) => {
                    let io = TokioIo::new(stream);
                    watcher.watch(http2.serve_connection(io, service)).await
                }
                None => Ok(()),
            };
            if let Err(error) = result {
                tracing::debug!(%error, "ingest connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("ingest connections still open after the grace period");
    }
}

fn connection_builders(
    limits: &ConnectionLimits,
) -> (http1::Builder, http2::Builder<TokioExecutor>) {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    (h1, h2)
}

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Peeks at the first bytes until they tell HTTP/2's preface from anything else;
/// `None` when the client closes or sends too little within `timeout`.
async fn detect_protocol(stream: &tokio::net::TcpStream, timeout: Duration) -> Option<Protocol> {
    let mut buf = [0u8; 24];
    let detect = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != H2_PREFACE[..n] {
                return Some(Protocol::Http1);
            }
            if n == H2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            // A partial preface: wait for more without spinning.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(timeout, detect).await.ok().flatten()
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
        return Ok(answer::accepted_answer(1, &[], 0));
    }

    let parsed = events::parse(&body, &route, ingest.max_events_per_request);
    let (target, key) = match (early_target, early_key) {
        (Some(target), Some(key)) => (target, key),
        _ => {
            let body_key = parsed.as_ref().ok().and_then(|p| p.write_key.clone());
            let key = body_key
                .or_else(|| auth::from_query(query))
                .ok_or_else(no_key)?;
            (authorise(ingest, &key, &route)?, key)
        }
    };
    let parsed = parsed?;
    charge_events(ingest, &key, parsed.event_count())?;
    let client_ip_text = client_ip.to_string();
    let facts = events::RequestFacts {
        received_at,
        received_at_text: &received_at_text,
        client_ip: &client_ip_text,
        target,
        max_event_bytes: ingest.max_event_bytes,
    };
    let outcome = events::process(parsed, &facts)?;
    for &(code, count) in &outcome.rejected_by_code {
        ingest.metrics.rejected(code, count as u64);
    }
    write_to_sink(ingest, outcome.batch).await?;
    ingest.metrics.accepted.increment(outcome.accepted as u64);
    Ok(answer::accepted_answer(
        outcome.accepted,
        &outcome.rejected,
        outcome.rejected_count,
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
