//! Test-only reference: the `serde_json::Value` implementation the lean path replaced,
//! kept to prove the two equivalent on random events. Changes from the code it was:
//! checked timestamp arithmetic (an out-of-range correction falls back to
//! receivedAt, as in the lean path) and a batch body must be a JSON object (serde's
//! sequence form of structs let a 5-element array pass as one).
#![allow(dead_code)]

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::RequestFacts;
use crate::clock;
use crate::ingest::answer::IngestError;
use crate::ingest::routes::{EventType, Route};

type Object = Map<String, Value>;

/// One event as it came in: still raw (batch members), or already parsed (a
/// single-event body, which had to be parsed to find its `writeKey`).
pub enum RawEvent<'a> {
    /// A batch member.
    Raw(&'a RawValue),
    /// A whole-body event and its size in bytes.
    Parsed(Value, usize),
}

/// Batch-level fields that apply to every event of the request.
#[derive(Default)]
pub struct BatchFields {
    sent_at: Option<(String, OffsetDateTime)>,
    context: Option<Object>,
    integrations: Option<Object>,
}

/// A parsed request body.
pub struct Parsed<'a> {
    /// The events, in order.
    pub events: Vec<RawEvent<'a>>,
    /// The body's `writeKey`, if any.
    pub write_key: Option<String>,
    batch: BatchFields,
    /// The type the route imposes.
    forced_type: Option<EventType>,
    /// Whether the route takes exactly one event (errors are then the event's own).
    single: bool,
}

/// The outer object of a batch body.
#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    context: Option<Value>,
    integrations: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

/// Parses a body for an SDK route.
pub fn parse<'a>(body: &'a [u8], route: &Route) -> Result<Parsed<'a>, IngestError> {
    match route {
        Route::Single(kind) => single(body, Some(*kind)),
        Route::Batch => {
            let outer = batch_body(body)?;
            from_batch(outer, "`batch` is required and must be an array of events")
        }
        Route::Events => match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Ok(Parsed {
                events: serde_json::from_slice::<Vec<&RawValue>>(body)
                    .map_err(|e| not_json(&e, "the body must be an array of events"))?
                    .into_iter()
                    .map(RawEvent::Raw)
                    .collect(),
                write_key: None,
                batch: BatchFields::default(),
                forced_type: None,
                single: false,
            }),
            _ => {
                let outer = batch_body(body)?;
                if outer.batch.is_some() {
                    from_batch(outer, "")
                } else {
                    single(body, None)
                }
            }
        },
        Route::Webhook { .. } => Err(IngestError::BadRequest("not an SDK route".into())),
    }
}

fn batch_body(body: &[u8]) -> Result<BatchBody<'_>, IngestError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(IngestError::BadRequest("not an object".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        not_json(
            &e,
            "the body must be a JSON object with a `batch` array of events",
        )
    })
}

fn single(body: &[u8], forced_type: Option<EventType>) -> Result<Parsed<'_>, IngestError> {
    let mut event: Value = serde_json::from_slice(body)
        .map_err(|e| not_json(&e, "the body must be one event, a JSON object"))?;
    let Some(object) = event.as_object_mut() else {
        return Err(IngestError::BadRequest(
            "the body must be one event, a JSON object".into(),
        ));
    };
    let write_key = take_write_key(object.remove("writeKey"));
    Ok(Parsed {
        events: vec![RawEvent::Parsed(event, body.len())],
        write_key,
        batch: BatchFields::default(),
        forced_type,
        single: true,
    })
}

fn from_batch<'a>(outer: BatchBody<'a>, missing: &str) -> Result<Parsed<'a>, IngestError> {
    let Some(events) = outer.batch else {
        return Err(IngestError::BadRequest(missing.into()));
    };
    let sent_at = match outer.sent_at {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match clock::parse_iso8601(&text) {
            Some(t) => Some((text, t)),
            None => return Err(IngestError::BadRequest(iso_message("sentAt"))),
        },
        Some(_) => return Err(IngestError::BadRequest(iso_message("sentAt"))),
    };
    Ok(Parsed {
        events: events.into_iter().map(RawEvent::Raw).collect(),
        write_key: take_write_key(outer.write_key),
        batch: BatchFields {
            sent_at,
            context: batch_object(outer.context, "context")?,
            integrations: batch_object(outer.integrations, "integrations")?,
        },
        forced_type: None,
        single: false,
    })
}

fn batch_object(value: Option<Value>, name: &str) -> Result<Option<Object>, IngestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(IngestError::BadRequest(format!(
            "the batch's `{name}` must be an object"
        ))),
    }
}

fn take_write_key(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn not_json(error: &serde_json::Error, shape: &str) -> IngestError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            IngestError::BadRequest(format!("the body is not valid JSON: {error}"))
        }
        Category::Data => IngestError::BadRequest(format!("{shape}: {error}")),
    }
}

/// The reference's result: enriched events (no envelopes) and rejects.
#[derive(Debug)]
pub struct Outcome {
    /// Accepted events, enriched.
    pub events: Vec<Object>,
    /// (index, code) of each refused event.
    pub rejected: Vec<(usize, &'static str)>,
}

/// Validates and enriches every event; an error when none is valid.
pub fn process(parsed: Parsed<'_>, facts: &RequestFacts<'_>) -> Result<Outcome, IngestError> {
    if parsed.events.is_empty() {
        return Err(IngestError::BadRequest("the batch holds no event".into()));
    }
    let mut outcome = Outcome {
        events: Vec::new(),
        rejected: Vec::new(),
    };
    let mut first_message = String::new();
    for (index, raw) in parsed.events.into_iter().enumerate() {
        match accept_one(raw, &parsed.batch, parsed.forced_type, facts) {
            Ok(event) => outcome.events.push(event),
            Err((code, message)) => {
                if outcome.rejected.is_empty() {
                    first_message = message;
                }
                outcome.rejected.push((index, code));
            }
        }
    }
    if !outcome.events.is_empty() {
        return Ok(outcome);
    }
    let (index, code) = outcome.rejected[0];
    Err(match (parsed.single, code) {
        (true, "PayloadTooLarge") => IngestError::PayloadTooLarge(first_message),
        (true, _) => IngestError::BadRequest(first_message),
        (false, _) => IngestError::BadRequest(format!(
            "no valid event in the batch; event {index}: {first_message}"
        )),
    })
}

/// A reject: contract code and message.
type Refusal = (&'static str, String);

fn accept_one(
    raw: RawEvent<'_>,
    batch: &BatchFields,
    forced_type: Option<EventType>,
    facts: &RequestFacts<'_>,
) -> Result<Object, Refusal> {
    // Sized before parsing, so that an oversized event is never parsed.
    let value = match raw {
        RawEvent::Raw(raw) => {
            check_size(raw.get().len(), facts.max_event_bytes)?;
            serde_json::from_str(raw.get())
                .map_err(|e| ("BadRequest", format!("the event is not valid JSON: {e}")))?
        }
        RawEvent::Parsed(value, size) => {
            check_size(size, facts.max_event_bytes)?;
            value
        }
    };
    let Value::Object(mut event) = value else {
        return Err(("BadRequest", "the event must be a JSON object".into()));
    };
    event.remove("writeKey");
    validate(&mut event, forced_type)?;
    enrich(&mut event, batch, facts)?;
    Ok(event)
}

fn check_size(size: usize, max: usize) -> Result<(), Refusal> {
    if size > max {
        return Err((
            "PayloadTooLarge",
            format!("the event is {size} bytes; the limit is {max}"),
        ));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Refusal {
    ("InvalidValue", message.into())
}

fn iso_message(field: &str) -> String {
    format!("`{field}` must be an ISO-8601 date-time")
}

/// Checks the Segment-spec rules and normalises id fields to strings.
fn validate(event: &mut Object, forced_type: Option<EventType>) -> Result<(), Refusal> {
    let kind = match forced_type {
        Some(kind) => kind,
        None => event
            .get("type")
            .and_then(Value::as_str)
            .and_then(EventType::parse)
            .ok_or_else(|| {
                invalid("`type` must be one of track, identify, page, screen, group, alias")
            })?,
    };
    event.insert("type".into(), Value::String(kind.as_str().into()));
    let has_user = normalise_id(event, "userId")?;
    let has_anonymous = normalise_id(event, "anonymousId")?;
    if !has_user && !has_anonymous {
        return Err(invalid("`userId` or `anonymousId` is required"));
    }
    let complete = match kind {
        EventType::Track => event
            .get("event")
            .and_then(Value::as_str)
            .is_some_and(|name| !name.is_empty()),
        EventType::Alias => has_user && normalise_id(event, "previousId")?,
        EventType::Group => normalise_id(event, "groupId")?,
        _ => true,
    };
    if !complete {
        return Err(invalid(super::enrich::incomplete(kind)));
    }
    for field in ["context", "integrations", "properties", "traits"] {
        if event
            .get(field)
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err(invalid(format!("`{field}` must be an object")));
        }
    }
    Ok(())
}

/// An id field: a non-empty string, or a number turned into one. Absent, null or empty
/// counts as missing; other types are refused.
fn normalise_id(event: &mut Object, field: &str) -> Result<bool, Refusal> {
    match event.get_mut(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) => Ok(!s.is_empty()),
        Some(value @ Value::Number(_)) => {
            *value = Value::String(value.to_string());
            Ok(true)
        }
        Some(_) => Err(invalid(format!("`{field}` must be a string or a number"))),
    }
}

/// A timestamp field, parsed; an error when present and not ISO-8601.
fn timestamp(event: &Object, field: &str) -> Result<Option<OffsetDateTime>, Refusal> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => clock::parse_iso8601(text)
            .map(Some)
            .ok_or_else(|| invalid(iso_message(field))),
        Some(_) => Err(invalid(iso_message(field))),
    }
}

fn enrich(
    event: &mut Object,
    batch: &BatchFields,
    facts: &RequestFacts<'_>,
) -> Result<(), Refusal> {
    let client_timestamp = timestamp(event, "timestamp")?;
    let original = timestamp(event, "originalTimestamp")?;
    let mut sent_at = timestamp(event, "sentAt")?;
    if sent_at.is_none() {
        if let Some((text, parsed)) = &batch.sent_at {
            event.insert("sentAt".into(), Value::String(text.clone()));
            sent_at = Some(*parsed);
        }
    }
    if !normalise_id(event, "messageId")? {
        let id = uuid::Uuid::new_v4().to_string();
        event.insert("messageId".into(), Value::String(id));
    }
    event.insert(
        "receivedAt".into(),
        Value::String(facts.received_at_text.into()),
    );
    let corrected = match (sent_at, client_timestamp.or(original)) {
        (Some(sent), Some(happened)) => {
            if original.is_none() {
                if let Some(ts) = event.get("timestamp").cloned() {
                    event.insert("originalTimestamp".into(), ts);
                }
            }
            Some(
                clock::skew_corrected(facts.received_at, sent, happened)
                    .map_or(facts.received_at, |(t, _)| t),
            )
        }
        // No sentAt: a client timestamp is kept as sent (historical imports).
        (None, Some(_)) if client_timestamp.is_some() => None,
        (None, Some(happened)) => Some(happened),
        (_, None) => Some(facts.received_at),
    };
    if let Some(t) = corrected {
        let t = match clock::millis_text(t) {
            Some(_) => t,
            None => facts.received_at,
        };
        event.insert("timestamp".into(), Value::String(clock::format_millis(t)));
    }
    let mut context = merged(batch.context.as_ref(), event.remove("context"));
    if !context.contains_key("ip") {
        context.insert("ip".into(), Value::String(facts.client_ip.into()));
    }
    event.insert("context".into(), Value::Object(context));
    if batch.integrations.is_some() || event.contains_key("integrations") {
        let integrations = merged(batch.integrations.as_ref(), event.remove("integrations"));
        event.insert("integrations".into(), Value::Object(integrations));
    }
    Ok(())
}

/// The batch-level object with the event's own laid over it (the event wins, nested
/// objects are merged key by key).
fn merged(batch: Option<&Object>, own: Option<Value>) -> Object {
    let own = match own {
        Some(Value::Object(o)) => o,
        _ => Object::new(),
    };
    match batch {
        None => own,
        Some(batch) => {
            let mut out = batch.clone();
            merge_into(&mut out, own);
            out
        }
    }
}

fn merge_into(base: &mut Object, over: Object) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(value)) => merge_into(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
