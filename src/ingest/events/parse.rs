//! The body shapes of the SDK routes: one event, a `{"batch":[…]}` object, or (on
//! `/v1/events`) a bare array. At most `max_events` events are ever collected: a
//! longer array stops the parse with 413.
//!
//! A body is first walked once ([`walk`]); only a body the walk leaves (malformed,
//! not strict, over the cap, ambiguous) is read with serde_json, whose answer is
//! then the request's.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::enrich::{iso_message, BatchFields};
use super::merge::Tree;
use super::scan::{self, CappedArray, Key, Member};
use super::strict;
use super::walk::{self, Walk};
use super::{Events, Parsed};
use crate::clock;
use crate::ingest::answer::IngestError;
use crate::ingest::routes::{EventType, Route};

/// Parses a body for an SDK route, collecting at most `max_events` events.
pub fn parse<'a>(
    body: &'a [u8],
    route: &Route,
    max_events: usize,
) -> Result<Parsed<'a>, IngestError> {
    let text = utf8(body)?;
    if let Some(parsed) = walked(text, route, max_events) {
        return parsed;
    }
    match route {
        Route::Single(kind) => single(text, Some(*kind)),
        Route::Batch => {
            let outer = outer(text, max_events)?;
            from_batch(outer, "`batch` is required and must be an array of events")
        }
        Route::Events => match first_byte(text) {
            Some(b'[') => {
                let mut events = Vec::new();
                let mut overflowed = false;
                let mut de = serde_json::Deserializer::from_str(text);
                CappedArray {
                    out: &mut events,
                    cap: max_events,
                    overflowed: &mut overflowed,
                }
                .deserialize(&mut de)
                .and_then(|()| de.end())
                .map_err(|e| {
                    too_many(overflowed, max_events)
                        .unwrap_or_else(|| not_json(&e, "the body must be an array of events"))
                })?;
                Ok(array_body(Events::Batch(events)))
            }
            _ => {
                let outer = outer(text, max_events)?;
                if outer.batch.is_some() {
                    from_batch(outer, "")
                } else {
                    single(text, None)
                }
            }
        },
        Route::Webhook { .. } => Err(IngestError::BadRequest("not an SDK route".into())),
    }
}

/// The fast path: the body as the walk found it; `None` when the walk left it to
/// the serde path.
fn walked<'a>(
    text: &'a str,
    route: &Route,
    max_events: usize,
) -> Option<Result<Parsed<'a>, IngestError>> {
    let (events_key, forced_type) = match route {
        Route::Single(kind) => (false, Some(*kind)),
        // A bare array is not a batch body: the serde path words the refusal.
        Route::Batch if first_byte(text) != Some(b'{') => return None,
        Route::Batch | Route::Events => (true, None),
        Route::Webhook { .. } => return None,
    };
    let walk = walk::walk(text, events_key, max_events)?;
    if !events_key {
        return Some(Ok(single_walked(text, &walk, forced_type)));
    }
    if walk.top.is_empty() && walk.events.is_some() {
        return Some(Ok(array_body(Events::Walked(text, walk))));
    }
    let (mut outer, batch_is_array) = walked_outer(text, &walk)?;
    if batch_is_array {
        outer.batch = Some(Events::Walked(text, walk));
    } else if let Route::Events = route {
        return Some(Ok(single_walked(text, &walk, None)));
    }
    Some(from_batch(
        outer,
        "`batch` is required and must be an array of events",
    ))
}

/// The batch fields of a walked object body, and whether `batch` is an array;
/// `None` when a field repeats or `batch` is neither an array nor null (the serde
/// path refuses those).
fn walked_outer<'a>(text: &'a str, walk: &Walk) -> Option<(Outer<'a>, bool)> {
    let mut outer = Outer::default();
    let mut seen = [false; OUTER_FIELDS.len()];
    let mut batch_is_array = false;
    for span in &walk.top {
        // Keys with escapes have left the walk: the text between the quotes is the key.
        let key = span.key_text(text);
        let Some(slot) = outer_field(&key[1..key.len() - 1]) else {
            continue;
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        let value = span.value_text(text);
        if slot == BATCH {
            batch_is_array = value.starts_with('[');
            if !batch_is_array && value != "null" {
                return None;
            }
        } else {
            *outer.text_field(slot) = Some(value);
        }
    }
    Some((outer, batch_is_array))
}

/// A walked single event: its members.
fn single_walked<'a>(text: &'a str, walk: &Walk, forced_type: Option<EventType>) -> Parsed<'a> {
    let mut members: Vec<Member<'a>> = walk.top.iter().map(|span| span.member(text)).collect();
    scan::mark_duplicates(&mut members);
    single_parsed(members, text.len(), forced_type)
}

fn single_parsed(
    members: Vec<Member<'_>>,
    size: usize,
    forced_type: Option<EventType>,
) -> Parsed<'_> {
    let write_key = scan::find(&members, "writeKey").and_then(|m| take_write_key(Some(m.value)));
    Parsed {
        events: Events::Single(members, size),
        write_key,
        batch: BatchFields::default(),
        forced_type,
    }
}

/// A bare array of events (`/v1/events`): no batch fields.
fn array_body(events: Events<'_>) -> Parsed<'_> {
    Parsed {
        events,
        write_key: None,
        batch: BatchFields::default(),
        forced_type: None,
    }
}

fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|b| !b.is_ascii_whitespace())
}

/// The outer object of a batch body, its members still raw.
#[derive(Default)]
struct Outer<'a> {
    batch: Option<Events<'a>>,
    sent_at: Option<&'a str>,
    context: Option<&'a str>,
    integrations: Option<&'a str>,
    write_key: Option<&'a str>,
}

/// The batch-level fields, by slot; each may appear once.
const OUTER_FIELDS: [&str; 5] = ["batch", "sentAt", "context", "integrations", "writeKey"];

/// The slot of `batch` in [`OUTER_FIELDS`].
const BATCH: usize = 0;

/// The slot of a batch-level field, if `key` names one.
fn outer_field(key: &str) -> Option<usize> {
    OUTER_FIELDS.iter().position(|field| *field == key)
}

impl<'a> Outer<'a> {
    /// Where the text of the batch-level field in `slot` (any but `batch`) goes.
    fn text_field(&mut self, slot: usize) -> &mut Option<&'a str> {
        match slot {
            1 => &mut self.sent_at,
            2 => &mut self.context,
            3 => &mut self.integrations,
            _ => &mut self.write_key,
        }
    }
}

fn outer(text: &str, max_events: usize) -> Result<Outer<'_>, IngestError> {
    let mut overflowed = false;
    // Read as text: the events' spans then need no UTF-8 check of their own.
    let mut de = serde_json::Deserializer::from_str(text);
    let result = OuterVisitor {
        cap: max_events,
        overflowed: &mut overflowed,
    }
    .deserialize(&mut de)
    .and_then(|outer| de.end().map(|()| outer));
    result.map_err(|e| {
        too_many(overflowed, max_events).unwrap_or_else(|| {
            not_json(
                &e,
                "the body must be a JSON object with a `batch` array of events",
            )
        })
    })
}

struct OuterVisitor<'v> {
    cap: usize,
    overflowed: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for OuterVisitor<'_> {
    type Value = Outer<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Outer<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OuterVisitor<'_> {
    type Value = Outer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outer<'de>, A::Error> {
        let mut outer = Outer::default();
        let mut seen = [false; OUTER_FIELDS.len()];
        while let Some(Key(key)) = map.next_key()? {
            let Some(slot) = outer_field(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            // A repeated batch-level field is ambiguous: refused, as serde refuses it.
            if std::mem::replace(&mut seen[slot], true) {
                return Err(de::Error::duplicate_field(OUTER_FIELDS[slot]));
            }
            if slot == BATCH {
                outer.batch = map.next_value_seed(OptionalEvents {
                    cap: self.cap,
                    overflowed: self.overflowed,
                })?;
            } else {
                let raw: Option<&RawValue> = map.next_value()?;
                *outer.text_field(slot) = raw.map(RawValue::get);
            }
        }
        Ok(outer)
    }
}

/// `batch`: null, or an array of at most `cap` events.
struct OptionalEvents<'v> {
    cap: usize,
    overflowed: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for OptionalEvents<'_> {
    type Value = Option<Events<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalEvents<'_> {
    type Value = Option<Events<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let mut events = Vec::new();
        CappedArray {
            out: &mut events,
            cap: self.cap,
            overflowed: self.overflowed,
        }
        .deserialize(deserializer)?;
        Ok(Some(Events::Batch(events)))
    }
}

fn single(text: &str, forced_type: Option<EventType>) -> Result<Parsed<'_>, IngestError> {
    const SHAPE: &str = "the body must be one event, a JSON object";
    let mut members = Vec::with_capacity(32);
    let mut de = serde_json::Deserializer::from_str(text);
    scan::MembersSeed(&mut members)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| not_json(&e, SHAPE))?;
    if !strict::members_are_strict(text, &members) {
        return Err(IngestError::BadRequest(format!(
            "the body is not valid JSON: {}",
            "an unpaired UTF-16 surrogate escape or a number out of range"
        )));
    }
    scan::mark_duplicates(&mut members);
    Ok(single_parsed(members, text.len(), forced_type))
}

fn from_batch<'a>(outer: Outer<'a>, missing: &str) -> Result<Parsed<'a>, IngestError> {
    let Some(events) = outer.batch else {
        return Err(IngestError::BadRequest(missing.into()));
    };
    for raw in [outer.context, outer.integrations, outer.write_key]
        .into_iter()
        .flatten()
    {
        if !strict::is_strict(raw.as_bytes()) {
            return Err(IngestError::BadRequest(
                "the body is not valid JSON: an unpaired UTF-16 surrogate escape or a number out of range".into(),
            ));
        }
    }
    let sent_at = match outer.sent_at {
        None | Some("null") => None,
        Some(raw) => match scan::string(raw).and_then(|text| clock::parse_iso8601(&text)) {
            Some(t) => Some((raw, t)),
            None => return Err(IngestError::BadRequest(iso_message("sentAt"))),
        },
    };
    Ok(Parsed {
        events,
        write_key: take_write_key(outer.write_key),
        batch: BatchFields {
            sent_at,
            context: batch_object(outer.context, "context")?,
            integrations: batch_object(outer.integrations, "integrations")?,
        },
        forced_type: None,
    })
}

fn batch_object<'a>(raw: Option<&'a str>, name: &str) -> Result<Option<Tree<'a>>, IngestError> {
    match raw {
        None | Some("null") => Ok(None),
        Some(text) if text.starts_with('{') => Tree::parse(text)
            .map(Some)
            .map_err(|e| IngestError::BadRequest(format!("the body is not valid JSON: {e}"))),
        Some(_) => Err(IngestError::BadRequest(format!(
            "the batch's `{name}` must be an object"
        ))),
    }
}

fn take_write_key(raw: Option<&str>) -> Option<String> {
    scan::string(raw?)
        .filter(|key| !key.is_empty())
        .map(|key| key.into_owned())
}

fn utf8(body: &[u8]) -> Result<&str, IngestError> {
    std::str::from_utf8(body).map_err(|e| {
        IngestError::BadRequest(format!("the body is not valid JSON: not UTF-8 ({e})"))
    })
}

fn too_many(overflowed: bool, max: usize) -> Option<IngestError> {
    overflowed.then(|| {
        IngestError::PayloadTooLarge(format!(
            "the request carries more than {max} events (ingest.max_events_per_request)"
        ))
    })
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
