//! The settings documents browser SDKs load before sending, so that neither needs its
//! vendor's CDN: Segment's `GET /v1/projects/{writeKey}/settings` (analytics.js with
//! `cdnURL` = intake) and RudderStack's `GET /sourceConfig/?writeKey=…` (the JS SDK with
//! `configUrl` = intake).
//!
//! Each is a small, fixed document: the key (known, at most 32 bytes), ids, and
//! intake's own address, from `ingest.public_url`, else the request's `Host` (validated
//! as `host[:port]` and bounded), so an answer is never much larger than its request.
//! It names no destination, remote plugin or metrics endpoint, so the SDKs talk to
//! intake only. An unknown key, or a webhook connection's, is a 404.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::answer::{json_answer, Answer, IngestError};
use super::gate::{admit, check_ip, OriginScope};
use super::routes::Endpoint;
use super::{auth, Ingest};
pub use crate::config::PublicUrl;
use crate::index::KeyTarget;
use crate::model::EventSource;
use crate::net::canonical_ip;

/// Longest `Host` a settings document echoes (a DNS name and a port).
const MAX_HOST_LEN: usize = 260;

/// Answers a settings endpoint (GET only).
pub(super) fn respond(
    ingest: &Ingest,
    endpoint: &Endpoint,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut OriginScope,
) -> Result<Answer, IngestError> {
    if request.method() != Method::GET {
        return Err(IngestError::MethodNotAllowed(endpoint.methods()));
    }
    check_ip(ingest, peer, request.headers())?;
    let (parts, _) = request.into_parts();
    let key = match endpoint {
        Endpoint::SegmentSettings(key) => key.clone(),
        _ => auth::from_headers(&parts.headers)?
            .or_else(|| auth::from_query(parts.uri.query()))
            .ok_or(IngestError::Unauthorized(
                "no write key: send it as Basic auth user name or the `writeKey` query parameter",
            ))?,
    };
    let target = sdk_source(ingest, &key, scope)?;
    let document = match endpoint {
        Endpoint::SegmentSettings(_) => {
            let (scheme, host) = base_url(ingest, &parts, peer)?;
            segment_settings(&key, scheme, &host)
        }
        _ => rudderstack_source_config(&key, &target),
    };
    let mut answer = json_answer(StatusCode::OK, Bytes::from(document.to_string()));
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(answer)
}

/// The key's target when it is a known SDK connection's key (404 otherwise), within
/// its budget and its connection's allowed origins.
fn sdk_source(
    ingest: &Ingest,
    key: &str,
    scope: &mut OriginScope,
) -> Result<KeyTarget, IngestError> {
    const UNKNOWN: IngestError = IngestError::NotFound("no SDK source has this write key");
    let is_sdk = ingest
        .index
        .lookup(key)
        .is_some_and(|t| t.source == EventSource::Sdk);
    if !is_sdk {
        return Err(UNKNOWN);
    }
    admit(ingest, key, EventSource::Sdk, scope).map_err(|e| match e {
        // Revoked between the two lookups.
        IngestError::Unauthorized(_) => UNKNOWN,
        other => other,
    })
}

/// Scheme and `host[:port][/path]` browsers reach intake at.
fn base_url(
    ingest: &Ingest,
    parts: &Parts,
    peer: SocketAddr,
) -> Result<(&'static str, String), IngestError> {
    if let Some(url) = &ingest.public_url {
        return Ok((url.scheme(), url.host_and_path().to_string()));
    }
    let bad_host = || {
        IngestError::BadRequest(
            "the Host header must be host[:port] (or set ingest.public_url)".into(),
        )
    };
    let host = match parts.uri.authority() {
        Some(authority) => authority.as_str(),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(bad_host)?,
    };
    let valid = host.len() <= MAX_HOST_LEN
        && !host.contains('@')
        && host.parse::<http::uri::Authority>().is_ok();
    if !valid {
        return Err(bad_host());
    }
    Ok((forwarded_scheme(ingest, parts, peer), host.to_string()))
}

/// `https` when a trusted proxy says so with `X-Forwarded-Proto`, else `http` (the
/// ingest listener itself speaks plain HTTP).
fn forwarded_scheme(ingest: &Ingest, parts: &Parts, peer: SocketAddr) -> &'static str {
    let peer = canonical_ip(peer.ip());
    let trusted = ingest.trusted_proxies.iter().any(|n| n.contains(&peer));
    let https = parts
        .headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    if trusted && https {
        "https"
    } else {
        "http"
    }
}

/// The document analytics.js reads: only the Segment.io destination, pointed at
/// intake, with its metrics off (they would go to `apiHost/m`, which intake does not
/// serve).
fn segment_settings(key: &str, scheme: &str, host: &str) -> serde_json::Value {
    json!({
        "integrations": {
            "Segment.io": {
                "apiKey": key,
                "apiHost": format!("{host}/v1"),
                "protocol": scheme,
            }
        },
        "metrics": { "sampleRate": 0 },
        "remotePlugins": [],
    })
}

/// The source config RudderStack's JS SDK validates (`source.id`, `source.config`,
/// `source.destinations`): enabled, no destination, error and metrics reporting off.
fn rudderstack_source_config(key: &str, target: &KeyTarget) -> serde_json::Value {
    json!({
        "source": {
            "id": target.connection_id.to_string(),
            "name": "intake",
            "writeKey": key,
            "workspaceId": target.workspace_id.to_string(),
            "enabled": true,
            "config": {
                "statsCollection": {
                    "errors": { "enabled": false },
                    "metrics": { "enabled": false },
                }
            },
            "destinations": [],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_settings_point_analytics_js_at_intake() {
        let doc = segment_settings("KEY", "http", "127.0.0.1:8080");
        let segment = &doc["integrations"]["Segment.io"];
        assert_eq!(segment["apiKey"], "KEY");
        assert_eq!(segment["apiHost"], "127.0.0.1:8080/v1");
        assert_eq!(segment["protocol"], "http");
        assert_eq!(doc["integrations"].as_object().unwrap().len(), 1);
        assert_eq!(doc["metrics"]["sampleRate"], 0);
    }

    #[test]
    fn rudderstack_config_passes_the_sdks_validation() {
        let target = KeyTarget {
            workspace_id: 3,
            connection_id: 77,
            source: EventSource::Sdk,
        };
        let doc = rudderstack_source_config("KEY", &target);
        let source = &doc["source"];
        assert_eq!(source["id"], "77");
        assert_eq!(source["workspaceId"], "3");
        assert!(source["config"].is_object());
        assert_eq!(source["destinations"], json!([]));
        assert_eq!(source["enabled"], true);
    }
}
