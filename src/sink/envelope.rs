//! The envelope every sink stores, one JSON object per event (SPEC §3).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::Id;

/// One stored event with where it came from.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a, E: Serialize> {
    /// Workspace of the write key.
    pub workspace_id: Id,
    /// Connection of the write key.
    pub connection_id: Id,
    /// When intake received the request, RFC 3339 with milliseconds.
    pub received_at: &'a str,
    /// `sdk` or `webhook`.
    pub kind: &'static str,
    /// Webhook envelopes carry their own id (SDK events have it inside `event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    /// The enriched event, or the webhook's payload and headers.
    pub event: &'a E,
}

impl<E: Serialize> Envelope<'_, E> {
    /// Appends the envelope's JSON to `buf`.
    pub fn write_json(&self, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(buf, self)
    }
}

/// What is read back from a stored envelope (a spool replay, the dedup window's
/// rebuild): where it belongs, when it came and its messageId, borrowed from the line.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeHead<'a> {
    /// Workspace of the write key.
    pub workspace_id: Id,
    /// Connection of the write key.
    pub connection_id: Id,
    /// When intake received it.
    #[serde(borrow, default)]
    pub received_at: Option<Cow<'a, str>>,
    /// A webhook envelope's own id.
    #[serde(borrow, default)]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: EventHead<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventHead<'a> {
    #[serde(borrow, default)]
    message_id: Option<Cow<'a, str>>,
}

impl EnvelopeHead<'_> {
    /// The webhook envelope's id, or the SDK event's.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id
            .as_deref()
            .or(self.event.message_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_envelope_has_the_contract_fields() {
        let event = serde_json::json!({"type":"track"});
        let mut buf = Vec::new();
        Envelope {
            workspace_id: 1,
            connection_id: 1371036433,
            received_at: "2026-11-22T10:00:00.123Z",
            kind: "sdk",
            message_id: None,
            event: &event,
        }
        .write_json(&mut buf)
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"workspaceId\":1,\"connectionId\":1371036433,\"receivedAt\":\"2026-11-22T10:00:00.123Z\",\"kind\":\"sdk\",\"event\":{\"type\":\"track\"}}"
        );
    }
}
