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
use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::index::{KeyEntry, KeyIndex};
use crate::limits::IpLimiter;
use crate::model::EventSource;
use crate::sink::Sink;
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
    /// Time allowed to send the headers.
    pub header_timeout: Duration,
    /// Time allowed to send the body.
    pub body_timeout: Duration,
    /// CORS policy.
    pub cors: Cors,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Optional per-address budget.
    pub ip_limiter: Option<IpLimiter>,
}

/// Serves connections from `listener` until `shutdown`, then lets in-flight requests
/// finish (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ingest.header_timeout)
        .keep_alive(true);
    loop {
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
        let service = service_fn(move |request| {
            let ingest = ingest.clone();
            async move { Ok::<_, Infallible>(handle(&ingest, request, peer).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "ingest connection ended with an error");
            }
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

/// One request, answered; CORS headers go on every answer.
pub async fn handle(ingest: &Ingest, request: Request<Incoming>, peer: SocketAddr) -> Answer {
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    let mut answer = match respond(ingest, request, peer).await {
        Ok(answer) => answer,
        Err(error) => error.into_answer(),
    };
    ingest.cors.decorate(&mut answer, origin.as_ref());
    answer
}

async fn respond(
    ingest: &Ingest,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Answer, IngestError> {
    let route = Route::parse(request.uri().path()).ok_or(IngestError::NotFound)?;
    match *request.method() {
        Method::POST => {}
        Method::OPTIONS => return Ok(ingest.cors.preflight()),
        _ => return Err(IngestError::MethodNotAllowed),
    }
    let received_at = clock::now();
    let client_ip = net::client_ip(peer.ip(), request.headers(), &ingest.trusted_proxies);
    if let Some(limiter) = &ingest.ip_limiter {
        limiter
            .check(client_ip)
            .map_err(IngestError::TooManyRequests)?;
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
    let early_entry = match &early_key {
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
    let received_at_text = clock::format_millis(received_at);

    if route.is_webhook() {
        let entry = early_entry.ok_or_else(no_key)?;
        let line = webhook::envelope_line(&body, &parts.headers, entry.target, &received_at_text)?;
        ingest.sink.write(line).await.map_err(unavailable)?;
        return Ok(answer::accepted_answer(1, &[]));
    }

    let parsed = events::parse(&body, &route);
    let entry = match early_entry {
        Some(entry) => entry,
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
        target: entry.target,
        max_event_bytes: ingest.max_event_bytes,
    };
    let outcome = events::process(parsed?, &facts)?;
    ingest
        .sink
        .write(outcome.lines)
        .await
        .map_err(unavailable)?;
    Ok(answer::accepted_answer(outcome.accepted, &outcome.rejected))
}

/// Looks the key up, checks it may use this route, and takes one request from its
/// budget.
fn authorise(ingest: &Ingest, key: &str, route: &Route) -> Result<Arc<KeyEntry>, IngestError> {
    let entry = ingest
        .index
        .lookup(key)
        .ok_or(IngestError::Unauthorized("unknown or revoked write key"))?;
    match (entry.target.source, route.is_webhook()) {
        (EventSource::Sdk, true) => {
            return Err(IngestError::Forbidden(
                "this write key belongs to an SDK connection; webhook routes need a webhook connection's key",
            ))
        }
        (EventSource::Webhook, false) => {
            return Err(IngestError::Forbidden(
                "this write key belongs to a webhook connection; post to /v1/webhook/{writeKey}",
            ))
        }
        _ => {}
    }
    ingest
        .index
        .take_budget(&entry)
        .map_err(IngestError::TooManyRequests)?;
    Ok(entry)
}

fn no_key() -> IngestError {
    IngestError::Unauthorized(
        "no write key: send it as Basic auth user name, a Bearer token, X-Write-Key, `writeKey` in the body or the query",
    )
}

fn unavailable(error: crate::sink::SinkError) -> IngestError {
    IngestError::Unavailable(error.to_string())
}
