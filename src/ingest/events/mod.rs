//! SDK events: parsing a request body into events, validating each against the
//! Segment spec, enriching the valid ones (messageId, receivedAt, sentAt, skew-corrected
//! timestamp, context.ip, batch context/integrations) and writing their envelopes.
//! A batch is accepted event by event; invalid events become rejects.
//!
//! No DOM is built: events are read as members borrowing from the body
//! ([`scan`]), and the envelope is written by copying untouched values as raw text
//! and inserting the enriched fields ([`enrich`]). `reference` (tests only) keeps the
//! straightforward `serde_json::Value` implementation the property tests compare to.

mod enrich;
mod merge;
mod parse;
mod scan;
mod strict;
mod walk;

#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use time::OffsetDateTime;

use super::answer::{IngestError, Reject};
use super::routes::EventType;
use crate::index::KeyTarget;
use crate::sink::Batch;
use enrich::{BatchFields, Shared};
use scan::Member;
use walk::Walk;

pub use parse::parse;

/// Rejects an answer lists at most (the rest are only counted).
pub const MAX_LISTED_REJECTS: usize = 100;

/// The events of a request, still unvalidated.
enum Events<'a> {
    /// Batch members, each still raw JSON (the serde path's).
    Batch(Vec<&'a str>),
    /// Batch members as the walk found them in the body.
    Walked(&'a str, Walk),
    /// A whole-body event (read already, to find its `writeKey`) and the body's size.
    Single(Vec<Member<'a>>, usize),
}

/// A parsed request body.
pub struct Parsed<'a> {
    events: Events<'a>,
    /// The body's `writeKey`, if any.
    pub write_key: Option<String>,
    batch: BatchFields<'a>,
    /// The type the route imposes.
    forced_type: Option<EventType>,
}

impl Parsed<'_> {
    /// How many events the request carries (valid or not): what the key's events
    /// budget is charged.
    pub fn event_count(&self) -> usize {
        match &self.events {
            Events::Batch(events) => events.len(),
            Events::Walked(_, walk) => walk.event_count(),
            Events::Single(..) => 1,
        }
    }
}

/// What enrichment takes from the request.
pub struct RequestFacts<'a> {
    /// When the request arrived.
    pub received_at: OffsetDateTime,
    /// The same, formatted.
    pub received_at_text: &'a str,
    /// The client's address.
    pub client_ip: &'a str,
    /// The write key's target.
    pub target: KeyTarget,
    /// `ingest.max_event_bytes`.
    pub max_event_bytes: usize,
}

/// The accepted events' envelopes and the rejects.
#[derive(Debug)]
pub struct Outcome {
    /// The accepted events' envelopes, ready for the sink.
    pub batch: Batch,
    /// How many events were accepted.
    pub accepted: usize,
    /// The first refused events (at most [`MAX_LISTED_REJECTS`]).
    pub rejected: Vec<Reject>,
    /// How many events were refused in all.
    pub rejected_count: usize,
    /// Refused events per code, for metrics.
    pub rejected_by_code: Vec<(&'static str, usize)>,
}

impl Outcome {
    fn count(&mut self, index: usize, result: Result<(), enrich::Refusal>) {
        match result {
            Ok(()) => self.accepted += 1,
            Err(refusal) => self.reject(index, refusal),
        }
    }

    fn reject(&mut self, index: usize, (code, message): enrich::Refusal) {
        self.rejected_count += 1;
        match self.rejected_by_code.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.rejected_by_code.push((code, 1)),
        }
        if self.rejected.len() < MAX_LISTED_REJECTS {
            self.rejected.push(Reject {
                index,
                code,
                message,
            });
        }
    }
}

/// Bytes of envelope reserved per event beyond the event's own size.
const ENVELOPE_OVERHEAD: usize = 256;

/// Validates and enriches every event; an error when none is valid.
pub fn process(parsed: Parsed<'_>, facts: &RequestFacts<'_>) -> Result<Outcome, IngestError> {
    let (count, body_bytes) = match &parsed.events {
        Events::Batch(events) => (events.len(), events.iter().map(|e| e.len()).sum()),
        Events::Walked(body, walk) => (
            walk.event_count(),
            walk.events().iter().map(|e| e.text(body).len()).sum(),
        ),
        Events::Single(_, size) => (1, *size),
    };
    if count == 0 {
        return Err(IngestError::BadRequest("the batch holds no event".into()));
    }
    let target = facts.target;
    let mut outcome = Outcome {
        batch: Batch::new(
            target.workspace_id,
            target.connection_id,
            body_bytes + count * ENVELOPE_OVERHEAD,
        ),
        accepted: 0,
        rejected: Vec::new(),
        rejected_count: 0,
        rejected_by_code: Vec::new(),
    };
    outcome.batch.reserve_events(count);
    let prefix = envelope_prefix(facts);
    let shared = Shared {
        batch: &parsed.batch,
        forced_type: parsed.forced_type,
        facts,
        prefix: &prefix,
    };
    // Reused by every event of the request; they allocate only when first used.
    let mut members = Vec::new();
    let mut scratch = Vec::new();
    match &parsed.events {
        Events::Single(event, size) => {
            let result = check_size(*size, facts.max_event_bytes)
                .and_then(|()| enrich::accept(event, &shared, &mut scratch, &mut outcome.batch));
            match result {
                Ok(()) => outcome.accepted += 1,
                Err(refusal) => {
                    return Err(match refusal {
                        ("PayloadTooLarge", message) => IngestError::PayloadTooLarge(message),
                        (_, message) => IngestError::BadRequest(message),
                    })
                }
            }
        }
        Events::Batch(events) => {
            for (index, raw) in events.iter().enumerate() {
                members.clear();
                let result = read_member(raw, facts.max_event_bytes, &mut members).and_then(|()| {
                    enrich::accept(&members, &shared, &mut scratch, &mut outcome.batch)
                });
                outcome.count(index, result);
            }
        }
        Events::Walked(body, walk) => {
            for (index, event) in walk.events().iter().enumerate() {
                let result =
                    check_size(event.text(body).len(), facts.max_event_bytes).and_then(|()| {
                        if !walk.event_members(body, event, &mut members) {
                            return Err(not_an_object());
                        }
                        scan::mark_duplicates(&mut members);
                        enrich::accept(&members, &shared, &mut scratch, &mut outcome.batch)
                    });
                outcome.count(index, result);
            }
        }
    }
    if outcome.accepted > 0 {
        return Ok(outcome);
    }
    let first = outcome.rejected.swap_remove(0);
    Err(IngestError::BadRequest(format!(
        "no valid event in the batch; event {}: {}",
        first.index, first.message
    )))
}

/// `{"workspaceId":…,"connectionId":…,"receivedAt":"…","kind":"sdk","event":` — the
/// same for every event of a request.
fn envelope_prefix(facts: &RequestFacts<'_>) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(128);
    prefix.extend_from_slice(b"{\"workspaceId\":");
    prefix.extend_from_slice(
        itoa::Buffer::new()
            .format(facts.target.workspace_id)
            .as_bytes(),
    );
    prefix.extend_from_slice(b",\"connectionId\":");
    prefix.extend_from_slice(
        itoa::Buffer::new()
            .format(facts.target.connection_id)
            .as_bytes(),
    );
    prefix.extend_from_slice(b",\"receivedAt\":\"");
    prefix.extend_from_slice(facts.received_at_text.as_bytes());
    prefix.extend_from_slice(b"\",\"kind\":\"sdk\",\"event\":");
    prefix
}

/// Sizes a batch member before reading it (an oversized event is never read), then
/// reads its members.
fn read_member<'a>(
    text: &'a str,
    max_event_bytes: usize,
    members: &mut Vec<Member<'a>>,
) -> Result<(), enrich::Refusal> {
    check_size(text.len(), max_event_bytes)?;
    if !text.starts_with('{') {
        return Err(not_an_object());
    }
    scan::object(text, members)
        .map_err(|e| ("BadRequest", format!("the event is not valid JSON: {e}")))?;
    if !strict::members_are_strict(text, members) {
        return Err(("BadRequest", NOT_STRICT.into()));
    }
    Ok(())
}

fn not_an_object() -> enrich::Refusal {
    ("BadRequest", "the event must be a JSON object".into())
}

/// Why an event whose JSON is well-formed is still refused.
const NOT_STRICT: &str =
    "the event is not valid JSON: an unpaired UTF-16 surrogate escape or a number out of range";

fn check_size(size: usize, max: usize) -> Result<(), enrich::Refusal> {
    if size > max {
        return Err((
            "PayloadTooLarge",
            format!("the event is {size} bytes; the limit is {max}"),
        ));
    }
    Ok(())
}
