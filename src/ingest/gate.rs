//! What every ingest endpoint checks before it reads anything: the client's address
//! budget, the write key (known, right kind of connection, within its budget), and the
//! page's `Origin` against the key's connection's allowed origins — all from the key
//! index, without a lock or a store access.

use std::net::{IpAddr, SocketAddr};

use http::HeaderValue;

use super::answer::IngestError;
use super::Ingest;
use crate::index::{Admission, KeyTarget, OriginVerdict};
use crate::model::EventSource;
use crate::net;

/// What a request's CORS answer depends on: its `Origin`, and what its key's
/// connection says of that origin once the key is known.
pub(super) struct OriginScope {
    /// The request's `Origin` header.
    pub(super) origin: Option<HeaderValue>,
    /// The connection's verdict; `NoPolicy` until a key is known (and for connections
    /// without a list of their own), so that `ingest.cors_origins` applies.
    pub(super) verdict: OriginVerdict,
}

impl OriginScope {
    /// The scope of a request with this `Origin`, before its key is known.
    pub(super) fn new(origin: Option<HeaderValue>) -> Self {
        Self {
            origin,
            verdict: OriginVerdict::NoPolicy,
        }
    }

    /// Takes the verdict of the key's connection on this request's origin.
    pub(super) fn judge(&mut self, ingest: &Ingest, target: &KeyTarget) {
        if let Some(origin) = &self.origin {
            self.verdict = ingest
                .index
                .origin_verdict(target.connection_id, origin.as_bytes());
        }
    }
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

/// The key, then the request's `Origin` against the key's connection's allowed
/// origins (403 when it is not allowed; no `Origin`, a server, is not checked).
pub(super) fn admit(
    ingest: &Ingest,
    key: &str,
    source: EventSource,
    scope: &mut OriginScope,
) -> Result<KeyTarget, IngestError> {
    let target = authorise(ingest, key, source)?;
    scope.judge(ingest, &target);
    if !ingest.cors.admits(scope.verdict, scope.origin.as_ref()) {
        return Err(IngestError::Forbidden(
            "this page's origin is not allowed to send events with this write key",
        ));
    }
    Ok(target)
}

/// Looks the key up, checks it may use this kind of route, and takes one request from
/// its budget.
fn authorise(ingest: &Ingest, key: &str, source: EventSource) -> Result<KeyTarget, IngestError> {
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
