//! Webhook deliveries: any JSON value, or a form (turned into an object; a repeated
//! field becomes an array), stored with the delivery's content type and user agent.

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
    let message_id = uuid::Uuid::new_v4().to_string();
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
        .push(&message_id, |buf| envelope.write_json(buf))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    Ok(batch)
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
}
