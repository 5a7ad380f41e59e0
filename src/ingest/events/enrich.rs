//! One event: the contract's checks, then the enriched event written straight into
//! the request's envelope buffer. Untouched members are copied as raw text; only the
//! enriched fields are written anew (`type`, `messageId`, `receivedAt`, `sentAt`,
//! `timestamp`, `originalTimestamp`, `context`, `integrations`, ids given as numbers),
//! and `writeKey` is dropped.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::merge::{self, Tree};
use super::scan::{self, Member};
use super::RequestFacts;
use crate::clock;
use crate::ingest::routes::EventType;
use crate::sink::Batch;

/// A reject: contract code and message.
pub type Refusal = (&'static str, String);

/// Batch-level fields that apply to every event of the request.
#[derive(Default)]
pub struct BatchFields<'a> {
    /// `sentAt`: its JSON text and the time it names.
    pub sent_at: Option<(&'a str, OffsetDateTime)>,
    /// `context`, laid under each event's own.
    pub context: Option<Tree<'a>>,
    /// `integrations`, laid under each event's own.
    pub integrations: Option<Tree<'a>>,
}

/// What a request's events share: batch fields, the route's type, the facts, and the
/// envelope's opening (`{"workspaceId":…,"event":`), written once.
pub struct Shared<'r, 'a> {
    /// Batch-level fields.
    pub batch: &'r BatchFields<'a>,
    /// The type the route imposes.
    pub forced_type: Option<EventType>,
    /// Time, address, target.
    pub facts: &'r RequestFacts<'r>,
    /// The envelope up to the event.
    pub prefix: &'r [u8],
}

/// The members the contract looks at (the live ones: the last of duplicates).
#[derive(Default)]
struct Known<'m, 'a> {
    kind: Option<&'m Member<'a>>,
    user_id: Option<&'m Member<'a>>,
    anonymous_id: Option<&'m Member<'a>>,
    event: Option<&'m Member<'a>>,
    previous_id: Option<&'m Member<'a>>,
    group_id: Option<&'m Member<'a>>,
    message_id: Option<&'m Member<'a>>,
    timestamp: Option<&'m Member<'a>>,
    original_timestamp: Option<&'m Member<'a>>,
    sent_at: Option<&'m Member<'a>>,
    context: Option<&'m Member<'a>>,
    integrations: Option<&'m Member<'a>>,
    properties: Option<&'m Member<'a>>,
    traits: Option<&'m Member<'a>>,
}

impl<'m, 'a> Known<'m, 'a> {
    fn of(members: &'m [Member<'a>]) -> Self {
        let mut known = Known::default();
        for member in members.iter().filter(|m| m.live) {
            let slot = match &*member.key {
                "type" => &mut known.kind,
                "userId" => &mut known.user_id,
                "anonymousId" => &mut known.anonymous_id,
                "event" => &mut known.event,
                "previousId" => &mut known.previous_id,
                "groupId" => &mut known.group_id,
                "messageId" => &mut known.message_id,
                "timestamp" => &mut known.timestamp,
                "originalTimestamp" => &mut known.original_timestamp,
                "sentAt" => &mut known.sent_at,
                "context" => &mut known.context,
                "integrations" => &mut known.integrations,
                "properties" => &mut known.properties,
                "traits" => &mut known.traits,
                _ => continue,
            };
            *slot = Some(member);
        }
        known
    }
}

/// An id field as it will be written.
#[derive(Debug, Clone, PartialEq)]
enum Id<'a> {
    /// Absent.
    Missing,
    /// Kept as sent (a string, possibly empty, or null).
    Kept(&'a str),
    /// A number, turned into a string.
    Number(String),
}

/// An id field: a non-empty string, or a number turned into one. Absent, null or
/// empty counts as missing; other types are refused. Returns (present, how to write).
fn id<'a>(member: Option<&Member<'a>>, field: &str) -> Result<(bool, Id<'a>), Refusal> {
    let Some(member) = member else {
        return Ok((false, Id::Missing));
    };
    let raw = member.value;
    match raw.as_bytes()[0] {
        b'n' => Ok((false, Id::Kept(raw))),
        b'"' => Ok((raw != "\"\"", Id::Kept(raw))),
        b'-' | b'0'..=b'9' => {
            let number: serde_json::Value = serde_json::from_str(raw)
                .map_err(|_| invalid(format!("`{field}` must be a string or a number")))?;
            Ok((true, Id::Number(number.to_string())))
        }
        _ => Err(invalid(format!("`{field}` must be a string or a number"))),
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    ("InvalidValue", message.into())
}

/// The message for a timestamp that is not ISO-8601.
pub fn iso_message(field: &str) -> String {
    format!("`{field}` must be an ISO-8601 date-time")
}

/// A timestamp field, parsed; an error when present, not null and not ISO-8601.
fn timestamp(member: Option<&Member<'_>>, field: &str) -> Result<Option<OffsetDateTime>, Refusal> {
    let Some(member) = member.filter(|m| m.raw() != "null") else {
        return Ok(None);
    };
    scan::string(member.raw())
        .and_then(|text| clock::parse_iso8601(&text))
        .map(Some)
        .ok_or_else(|| invalid(iso_message(field)))
}

/// Everything decided about an event before a byte of it is written.
struct Plan<'m, 'a> {
    known: Known<'m, 'a>,
    kind: EventType,
    ids: Ids<'a>,
    message_id: MessageId<'a>,
    /// The corrected `timestamp`, when it is rewritten.
    timestamp: Option<[u8; 24]>,
    /// `originalTimestamp` copied from the client's `timestamp`.
    original_from_timestamp: bool,
    /// `sentAt` taken from the batch.
    sent_at_from_batch: Option<&'a str>,
}

/// The event's messageId: the client's, or a new UUID v4.
enum MessageId<'a> {
    Kept(&'a str, Cow<'a, str>),
    Number(String),
    New([u8; 36]),
}

impl MessageId<'_> {
    fn text(&self) -> &str {
        match self {
            Self::Kept(_, text) => text,
            Self::Number(text) => text,
            // Hyphenated lower-case hex: always ASCII.
            Self::New(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
        }
    }
}

/// Validates an event and appends its envelope to `out`.
pub fn accept<'a>(
    members: &[Member<'a>],
    shared: &Shared<'_, 'a>,
    scratch: &mut Vec<Member<'a>>,
    out: &mut Batch,
) -> Result<(), Refusal> {
    let plan = plan(members, shared)?;
    let message_id = plan.message_id.text();
    let sender_id = !matches!(plan.message_id, MessageId::New(_));
    out.push(message_id, sender_id, |buf| {
        buf.extend_from_slice(shared.prefix);
        write_event(buf, members, &plan, shared, scratch)?;
        buf.push(b'}');
        Ok::<_, serde_json::Error>(())
    })
    .map_err(|e| ("BadRequest", format!("the event is not valid JSON: {e}")))
}

/// The contract's checks, in the order the answer reports them.
fn plan<'m, 'a>(
    members: &'m [Member<'a>],
    shared: &Shared<'_, 'a>,
) -> Result<Plan<'m, 'a>, Refusal> {
    let known = Known::of(members);
    let (kind, ids) = validate(&known, shared.forced_type)?;
    let times = times(&known, shared)?;
    let message_id = match id(known.message_id, "messageId")? {
        (true, Id::Kept(raw)) => MessageId::Kept(raw, scan::string(raw).unwrap_or_default()),
        (true, Id::Number(text)) => MessageId::Number(text),
        _ => {
            let mut bytes = [0u8; 36];
            uuid::Uuid::new_v4().hyphenated().encode_lower(&mut bytes);
            MessageId::New(bytes)
        }
    };
    Ok(Plan {
        known,
        kind,
        ids,
        message_id,
        timestamp: times.timestamp,
        original_from_timestamp: times.original_from_timestamp,
        sent_at_from_batch: times.sent_at_from_batch,
    })
}

/// Each id field with how it will be written.
type Ids<'a> = [(&'static str, Id<'a>); 4];

/// The Segment-spec rules: the type, the ids each type needs (numbers become
/// strings), object fields.
fn validate<'a>(
    known: &Known<'_, 'a>,
    forced_type: Option<EventType>,
) -> Result<(EventType, Ids<'a>), Refusal> {
    let kind = match forced_type {
        Some(kind) => kind,
        None => known
            .kind
            .and_then(|m| scan::string(m.raw()))
            .and_then(|name| EventType::parse(&name))
            .ok_or_else(|| {
                invalid("`type` must be one of track, identify, page, screen, group, alias")
            })?,
    };
    let (has_user, user) = id(known.user_id, "userId")?;
    let (has_anonymous, anonymous) = id(known.anonymous_id, "anonymousId")?;
    if !has_user && !has_anonymous {
        return Err(invalid("`userId` or `anonymousId` is required"));
    }
    let mut previous = Id::Missing;
    let mut group = Id::Missing;
    let complete = match kind {
        EventType::Track => known
            .event
            .is_some_and(|m| m.raw().starts_with('"') && m.raw() != "\"\""),
        EventType::Alias => {
            has_user && {
                let (has, value) = id(known.previous_id, "previousId")?;
                previous = value;
                has
            }
        }
        EventType::Group => {
            let (has, value) = id(known.group_id, "groupId")?;
            group = value;
            has
        }
        _ => true,
    };
    if !complete {
        return Err(invalid(incomplete(kind)));
    }
    for (field, member) in [
        ("context", known.context),
        ("integrations", known.integrations),
        ("properties", known.properties),
        ("traits", known.traits),
    ] {
        if member.is_some_and(|m| !m.raw().starts_with('{') && m.raw() != "null") {
            return Err(invalid(format!("`{field}` must be an object")));
        }
    }
    let ids = [
        ("userId", user),
        ("anonymousId", anonymous),
        ("previousId", previous),
        ("groupId", group),
    ];
    Ok((kind, ids))
}

/// What enrichment writes about time.
struct Times<'a> {
    timestamp: Option<[u8; 24]>,
    original_from_timestamp: bool,
    sent_at_from_batch: Option<&'a str>,
}

/// The timestamps, parsed, and the skew-corrected `timestamp` (README, "Timestamps").
fn times<'a>(known: &Known<'_, 'a>, shared: &Shared<'_, 'a>) -> Result<Times<'a>, Refusal> {
    let client_timestamp = timestamp(known.timestamp, "timestamp")?;
    let original = timestamp(known.original_timestamp, "originalTimestamp")?;
    let mut sent_at = timestamp(known.sent_at, "sentAt")?;
    let mut sent_at_from_batch = None;
    if sent_at.is_none() {
        if let Some((text, parsed)) = shared.batch.sent_at {
            sent_at_from_batch = Some(text);
            sent_at = Some(parsed);
        }
    }
    let received = shared.facts.received_at;
    // A time RFC 3339 cannot express falls back to receivedAt.
    let received_text = || clock::millis_text(received).unwrap_or(*b"0000-01-01T00:00:00.000Z");
    let mut original_from_timestamp = false;
    let timestamp = match (sent_at, client_timestamp.or(original)) {
        (Some(sent), Some(happened)) => {
            original_from_timestamp = original.is_none();
            Some(
                clock::skew_corrected(received, sent, happened)
                    .map_or_else(received_text, |(_, text)| text),
            )
        }
        // No sentAt: a client timestamp is kept as sent (historical imports).
        (None, Some(_)) if client_timestamp.is_some() => None,
        (None, Some(happened)) => Some(clock::millis_text(happened).unwrap_or_else(received_text)),
        (_, None) => Some(received_text()),
    };
    Ok(Times {
        timestamp,
        original_from_timestamp,
        sent_at_from_batch,
    })
}

fn write_event<'a>(
    buf: &mut Vec<u8>,
    members: &[Member<'a>],
    plan: &Plan<'_, 'a>,
    shared: &Shared<'_, 'a>,
    scratch: &mut Vec<Member<'a>>,
) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(plan.kind.as_str().as_bytes());
    buf.push(b'"');
    for member in members.iter().filter(|m| m.live) {
        let rewritten = match &*member.key {
            "writeKey" | "type" | "receivedAt" | "context" | "integrations" | "messageId" => {
                continue
            }
            "timestamp" if plan.timestamp.is_some() => continue,
            "originalTimestamp" if plan.original_from_timestamp => continue,
            "sentAt" if plan.sent_at_from_batch.is_some() => continue,
            key => plan.ids.iter().find_map(|(field, id)| match id {
                Id::Number(text) if *field == key => Some(text.as_str()),
                _ => None,
            }),
        };
        buf.push(b',');
        merge::write_member_key(buf, member)?;
        match rewritten {
            Some(text) => quoted(buf, text),
            None => buf.extend_from_slice(member.raw().as_bytes()),
        }
    }
    buf.extend_from_slice(b",\"messageId\":");
    match &plan.message_id {
        MessageId::Kept(raw, _) => buf.extend_from_slice(raw.as_bytes()),
        other => quoted(buf, other.text()),
    }
    buf.extend_from_slice(b",\"receivedAt\":");
    quoted(buf, shared.facts.received_at_text);
    if let Some(text) = &plan.timestamp {
        buf.extend_from_slice(b",\"timestamp\":\"");
        buf.extend_from_slice(text);
        buf.push(b'"');
    }
    if plan.original_from_timestamp {
        if let Some(member) = plan.known.timestamp {
            buf.extend_from_slice(b",\"originalTimestamp\":");
            buf.extend_from_slice(member.raw().as_bytes());
        }
    }
    if let Some(raw) = plan.sent_at_from_batch {
        buf.extend_from_slice(b",\"sentAt\":");
        buf.extend_from_slice(raw.as_bytes());
    }
    buf.extend_from_slice(b",\"context\":");
    let ip = shared.facts.client_ip;
    let context = plan.known.context.map(Member::raw);
    if shared.batch.context.is_some() || !copy_with_ip(buf, context, ip) {
        let own = nested(plan.known.context, scratch)?;
        let has_ip = own.iter().any(|m| m.live && m.key == "ip")
            || shared
                .batch
                .context
                .as_ref()
                .is_some_and(|c| c.contains("ip"));
        let ip = (!has_ip).then_some(("ip", ip));
        merge::write_object(buf, shared.batch.context.as_ref(), own, ip)?;
    }
    if shared.batch.integrations.is_some() || plan.known.integrations.is_some() {
        buf.extend_from_slice(b",\"integrations\":");
        match plan.known.integrations.map(Member::raw) {
            Some(raw) if shared.batch.integrations.is_none() && raw.starts_with('{') => {
                buf.extend_from_slice(raw.as_bytes());
            }
            _ => {
                let own = nested(plan.known.integrations, scratch)?;
                merge::write_object(buf, shared.batch.integrations.as_ref(), own, None)?;
            }
        }
    }
    buf.push(b'}');
    Ok(())
}

/// The common case of `context` without a batch-level one: copied as sent with
/// `ip` appended, when the text shows it has no `ip` key (no `"ip"` anywhere and no
/// escape that could spell one). False when the members must be read instead.
fn copy_with_ip(buf: &mut Vec<u8>, context: Option<&str>, ip: &str) -> bool {
    let raw = match context {
        None | Some("null") => "{}",
        Some(raw) => raw,
    };
    // Built once: a finder's set-up costs more than searching a context.
    static IP_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"ip\""));
    let bytes = raw.as_bytes();
    if IP_KEY.find(bytes).is_some() || memchr::memchr(b'\\', bytes).is_some() {
        return false;
    }
    let open = &raw[..raw.len() - 1];
    buf.extend_from_slice(open.as_bytes());
    if !open[1..].trim_start().is_empty() {
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"ip\":");
    quoted(buf, ip);
    buf.push(b'}');
    true
}

/// The members of an event's object field (`context`, `integrations`); none when it
/// is absent or null.
fn nested<'s, 'a>(
    member: Option<&Member<'a>>,
    scratch: &'s mut Vec<Member<'a>>,
) -> Result<&'s [Member<'a>], serde_json::Error> {
    scratch.clear();
    if let Some(member) = member.filter(|m| m.raw().starts_with('{')) {
        scan::object(member.value, scratch)?;
    }
    Ok(scratch)
}

/// A string known to need no escaping (ids made of digits, times, addresses).
fn quoted(buf: &mut Vec<u8>, text: &str) {
    buf.push(b'"');
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'"');
}

/// Why an event of `kind` lacks what its type needs (the one sentence for it).
pub(super) fn incomplete(kind: EventType) -> &'static str {
    match kind {
        EventType::Track => "`event` must be a non-empty string for track",
        EventType::Alias => "alias needs `userId` and `previousId`",
        _ => "`groupId` is required for group",
    }
}
