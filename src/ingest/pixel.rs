//! RudderStack's pixel: `GET /pixel/v1/track` and `GET /pixel/v1/page` with the write
//! key and the event's fields in the query string, for `<img>` tags and e-mails.
//!
//! The query becomes an event as RudderStack's gateway builds it
//! (`gateway/handle_http_pixel.go`): `channel` "web", `integrations` `{"All":true}`,
//! `originalTimestamp` and `sentAt` = now, then every parameter but `writeKey` (the
//! first value of a repeated one) as a string, a dot in its name nesting objects
//! (`properties.plan=pro` → `{"properties":{"plan":"pro"}}`), `anonymousId` without
//! surrounding quotes, `type` from the path, and an empty page `name` as
//! "Unknown Page". The event then goes through the same validation and enrichment as
//! any other. Every answer is a 1×1 transparent GIF, its status telling the outcome.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use super::answer::{Answer, IngestError};
use super::gate::{admit, check_ip, OriginScope};
use super::routes::{EventType, Route};
use super::{auth, deliver, events, Arrival, Ingest};
use crate::clock;
use crate::model::EventSource;

/// A 1×1 transparent GIF (the one RudderStack's gateway answers).
pub const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00\
\x21\xF9\x04\x01\x00\x00\x00\x00\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3B";
/// Most query parameters one pixel may carry.
const MAX_PARAMETERS: usize = 256;
/// Deepest nesting a dotted parameter name makes; deeper names are kept as flat keys.
const MAX_DEPTH: usize = 8;

/// Answers a pixel request: always the GIF, with the status of the outcome.
pub(super) async fn respond(
    ingest: &Ingest,
    kind: EventType,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut OriginScope,
) -> Answer {
    let answer = accept(ingest, kind, request, peer, scope)
        .await
        .unwrap_or_else(IngestError::into_answer);
    let (mut parts, _) = answer.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, Full::new(Bytes::from_static(GIF)))
}

async fn accept(
    ingest: &Ingest,
    kind: EventType,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut OriginScope,
) -> Result<Answer, IngestError> {
    if request.method() != Method::GET {
        return Err(IngestError::MethodNotAllowed("GET, OPTIONS"));
    }
    let received_at = clock::now();
    let client_ip = check_ip(ingest, peer, request.headers())?;
    let query = request.uri().query().unwrap_or_default();
    let key = auth::from_query(Some(query)).ok_or(IngestError::Unauthorized(
        "no write key: a pixel carries it as the `writeKey` query parameter",
    ))?;
    let target = admit(ingest, &key, EventSource::Sdk, scope)?;
    let received_at_text = clock::format_millis(received_at);
    let body = event_body(query, kind, &received_at_text)?;
    let parsed = events::parse(&body, &Route::Single(kind), ingest.max_events_per_request)?;
    let arrival = Arrival {
        at: received_at,
        at_text: &received_at_text,
        client_ip,
    };
    deliver(ingest, parsed, target, &key, &arrival).await
}

/// The event JSON a pixel's query string stands for.
fn event_body(query: &str, kind: EventType, now: &str) -> Result<Vec<u8>, IngestError> {
    let mut event = Map::new();
    event.insert("channel".into(), json!("web"));
    event.insert("integrations".into(), json!({"All": true}));
    event.insert("originalTimestamp".into(), json!(now));
    event.insert("sentAt".into(), json!(now));
    let mut seen: HashSet<Cow<'_, str>> = HashSet::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "writeKey" || seen.contains(&name) {
            continue;
        }
        if seen.len() == MAX_PARAMETERS {
            return Err(IngestError::BadRequest(format!(
                "a pixel carries at most {MAX_PARAMETERS} query parameters"
            )));
        }
        let value = match name.as_ref() {
            "anonymousId" => strip_quotes(&value).to_string(),
            _ => value.into_owned(),
        };
        set(&mut event, &name, Value::String(value));
        seen.insert(name);
    }
    event.insert("type".into(), json!(kind.as_str()));
    if kind == EventType::Page && event.get("name") == Some(&json!("")) {
        event.insert("name".into(), json!("Unknown Page"));
    }
    serde_json::to_vec(&event).map_err(|e| IngestError::BadRequest(e.to_string()))
}

/// `"abc"` → `abc` (RudderStack's pixel snippet may quote the anonymous id).
fn strip_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Sets `value` at a dotted path, making (or replacing non-objects with) objects on
/// the way; a name with an empty segment or more than `MAX_DEPTH` segments is one
/// flat key.
fn set(root: &mut Map<String, Value>, name: &str, value: Value) {
    let segments: Vec<&str> = name.split('.').collect();
    let nested = segments.len() <= MAX_DEPTH && segments.iter().all(|s| !s.is_empty());
    let Some((last, parents)) = segments.split_last().filter(|_| nested) else {
        root.insert(name.to_string(), value);
        return;
    };
    let mut node = root;
    for segment in parents {
        let slot = node
            .entry(*segment)
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Some(next) = slot.as_object_mut() else {
            return;
        };
        node = next;
    }
    node.insert((*last).to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(query: &str, kind: EventType) -> Value {
        serde_json::from_slice(&event_body(query, kind, "2026-01-01T00:00:00.000Z").unwrap())
            .unwrap()
    }

    #[test]
    fn the_query_becomes_rudderstacks_pixel_event() {
        let event = body(
            "writeKey=K&anonymousId=%22a-1%22&event=Opened+Email&properties.campaign=spring&properties.n=2&context.page.url=https%3A%2F%2Fx.example%2F&event=ignored&type=identify",
            EventType::Track,
        );
        assert_eq!(
            event,
            json!({
                "channel": "web",
                "integrations": {"All": true},
                "originalTimestamp": "2026-01-01T00:00:00.000Z",
                "sentAt": "2026-01-01T00:00:00.000Z",
                "anonymousId": "a-1",
                "event": "Opened Email",
                "properties": {"campaign": "spring", "n": "2"},
                "context": {"page": {"url": "https://x.example/"}},
                "type": "track",
            })
        );
    }

    #[test]
    fn an_empty_page_name_is_unknown_page() {
        let event = body("writeKey=K&anonymousId=a&name=", EventType::Page);
        assert_eq!(event["name"], "Unknown Page");
        assert_eq!(event["type"], "page");
        let event = body("writeKey=K&anonymousId=a&name=Home", EventType::Page);
        assert_eq!(event["name"], "Home");
    }

    #[test]
    fn odd_names_stay_flat_and_later_paths_replace_scalars() {
        let deep = ["a"; MAX_DEPTH + 1].join(".");
        let event = body(&format!("x..y=1&.z=2&{deep}=3&p=4&p.q=5"), EventType::Track);
        assert_eq!(event["x..y"], "1");
        assert_eq!(event[".z"], "2");
        assert_eq!(event[deep.as_str()], "3");
        assert_eq!(event["p"], json!({"q": "5"}));
    }

    #[test]
    fn parameters_are_bounded() {
        let query: String = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=&")).collect();
        assert!(event_body(&query, EventType::Track, "now").is_err());
        let repeated = "a=1&".repeat(MAX_PARAMETERS * 4);
        assert!(event_body(&repeated, EventType::Track, "now").is_ok());
    }

    #[test]
    fn the_gif_is_a_1x1_gif() {
        assert_eq!(GIF.len(), 43);
        assert!(GIF.starts_with(b"GIF89a\x01\x00\x01\x00"));
        assert_eq!(GIF.last(), Some(&b';'));
    }
}
