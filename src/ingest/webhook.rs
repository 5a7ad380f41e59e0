//! Webhook deliveries: any JSON value, or a form (turned into an object; a repeated
//! field becomes an array), stored with the delivery's content type and user agent.
//! The envelope's messageId is the sender's delivery id when it gives one (so a
//! redelivery is deduplicated like an SDK retry), else a new UUID.

use http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};

use super::answer::IngestError;
use crate::index::KeyTarget;
use crate::sink::envelope::Envelope;
use crate::sink::Batch;

#[derive(Serialize)]
struct WebhookEvent<'a> {
    payload: Value,
    headers: WebhookHeaders<'a>,
}

#[derive(Serialize)]
struct WebhookHeaders<'a> {
    #[serde(rename = "content-type")]
    content_type: Option<&'a str>,
    #[serde(rename = "user-agent")]
    user_agent: Option<&'a str>,
}

/// The envelope of one delivery, as a batch of one.
pub fn envelope(
    body: &[u8],
    headers: &HeaderMap,
    id_header: Option<&http::HeaderName>,
    target: KeyTarget,
    received_at: &str,
) -> Result<Batch, IngestError> {
    let content_type = header(headers, http::header::CONTENT_TYPE);
    let is_form = content_type.is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let payload = if is_form {
        form_to_object(body)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::BadRequest("the webhook body is empty".into()));
    } else {
        serde_json::from_slice(body).map_err(|e| {
            IngestError::BadRequest(format!(
                "the webhook body must be JSON or application/x-www-form-urlencoded: {e}"
            ))
        })?
    };
    let delivery_id = delivery_id(headers, id_header, &payload);
    let sender_id = delivery_id.is_some();
    let message_id = delivery_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let event = WebhookEvent {
        payload,
        headers: WebhookHeaders {
            content_type,
            user_agent: header(headers, http::header::USER_AGENT),
        },
    };
    let envelope = Envelope {
        workspace_id: target.workspace_id,
        connection_id: target.connection_id,
        received_at,
        kind: "webhook",
        message_id: Some(&message_id),
        event: &event,
    };
    let mut batch = Batch::new(target.workspace_id, target.connection_id, body.len() + 256);
    batch
        .push(&message_id, sender_id, |buf| envelope.write_json(buf))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    Ok(batch)
}

/// Longest delivery id taken from a sender; a longer one is not used (the delivery
/// then gets a new id and is not deduplicated).
const MAX_DELIVERY_ID: usize = 200;

/// The sender's id of this delivery: the configured header (`dedup.webhook_id_header`),
/// GitHub's `X-GitHub-Delivery`, or a Stripe event's `id`.
fn delivery_id(
    headers: &HeaderMap,
    id_header: Option<&http::HeaderName>,
    payload: &Value,
) -> Option<String> {
    let usable = |id: &&str| !id.is_empty() && id.len() <= MAX_DELIVERY_ID;
    let configured = id_header.and_then(|name| header(headers, name.clone()));
    let github = || header(headers, http::HeaderName::from_static("x-github-delivery"));
    let stripe_event = || {
        let is_event = payload.get("object").and_then(Value::as_str) == Some("event");
        let id = payload.get("id").and_then(Value::as_str)?;
        (is_event && id.starts_with("evt_")).then_some(id)
    };
    configured
        .filter(usable)
        .or_else(|| github().filter(usable))
        .or_else(|| stripe_event().filter(usable))
        .map(str::to_string)
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn form_to_object(body: &[u8]) -> Value {
    let mut object = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                object.insert(name.into_owned(), value);
            }
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_an_object_and_repeats_an_array() {
        let v = form_to_object(b"a=1&b=x+y&a=2&c=%26");
        assert_eq!(v, serde_json::json!({"a":["1","2"],"b":"x y","c":"&"}));
    }

    #[test]
    fn delivery_ids_come_from_github_stripe_or_the_configured_header() {
        let mut headers = HeaderMap::new();
        let payload = serde_json::json!({"id":"evt_1","object":"event"});
        assert_eq!(
            delivery_id(&headers, None, &payload).as_deref(),
            Some("evt_1")
        );
        headers.insert("x-github-delivery", "gh-1".parse().unwrap());
        assert_eq!(
            delivery_id(&headers, None, &payload).as_deref(),
            Some("gh-1")
        );
        let custom = http::HeaderName::from_static("x-delivery");
        headers.insert("x-delivery", "c-1".parse().unwrap());
        assert_eq!(
            delivery_id(&headers, Some(&custom), &payload).as_deref(),
            Some("c-1")
        );
        let plain = serde_json::json!({"id":"evt_1"});
        assert_eq!(delivery_id(&HeaderMap::new(), None, &plain), None);
        headers.insert("x-delivery", "x".repeat(201).parse().unwrap());
        let empty = serde_json::json!({});
        assert_eq!(
            delivery_id(&headers, Some(&custom), &empty).as_deref(),
            Some("gh-1")
        );
    }
}
