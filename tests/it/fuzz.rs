//! Property tests of the ingest decoding and validation path: random bytes, random
//! gzip and random JSON never panic and never get past the limits; enrichment with
//! extreme dates never panics and computes only RFC 3339 times.

use std::io::Write;

use bytes::Bytes;
use intake::index::KeyTarget;
use intake::ingest::body::{decode, Encoding};
use intake::ingest::events::{parse, process, RequestFacts};
use intake::ingest::routes::{EventType, Route};
use intake::model::EventSource;
use proptest::prelude::*;

const MAX_EVENT: usize = 2048;
const MAX_BODY: usize = 16 * 1024;

fn facts() -> RequestFacts<'static> {
    RequestFacts {
        received_at: intake::clock::now(),
        received_at_text: "2026-11-22T10:00:00.000Z",
        client_ip: "203.0.113.1",
        target: KeyTarget {
            workspace_id: 1,
            connection_id: 2,
            source: EventSource::Sdk,
        },
        max_event_bytes: MAX_EVENT,
    }
}

fn routes() -> impl Strategy<Value = Route> {
    prop_oneof![
        Just(Route::Batch),
        Just(Route::Events),
        Just(Route::Single(EventType::Track)),
        Just(Route::Single(EventType::Alias)),
    ]
}

/// Arbitrary JSON values, nested a little.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z0-9 :.\\-]{0,24}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("track"),
            Just("identify"),
            Just("alias"),
            Just("group"),
            Just("2026-11-22T10:00:00Z")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("userId".to_string()),
                    Just("anonymousId".to_string()),
                    Just("event".to_string()),
                    Just("batch".to_string()),
                    Just("timestamp".to_string()),
                    Just("sentAt".to_string()),
                    Just("context".to_string()),
                    Just("previousId".to_string()),
                    Just("groupId".to_string()),
                    "[a-z]{1,6}".prop_map(|s| s),
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(body: &[u8], route: &Route) {
    let Ok(parsed) = parse(body, route, 2500) else {
        return;
    };
    let Ok(outcome) = process(parsed, &facts()) else {
        return;
    };
    assert_eq!(outcome.batch.len(), outcome.accepted);
    for entry in outcome.batch.entries() {
        let envelope: serde_json::Value =
            serde_json::from_slice(entry.line).expect("envelopes are JSON");
        let event = &envelope["event"];
        assert_eq!(event["messageId"], entry.message_id);
        assert!(event["userId"].is_string() || event["anonymousId"].is_string());
    }
}

/// ISO-8601 date-times from year 0 to 9999 with extreme offsets, and a few forms
/// beyond (extended years) that the parser may or may not take.
fn extreme_date() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0i32..=9999, 1u8..=12, 1u8..=28, 0u8..24, 0u16..1000,
              prop_oneof![Just("Z"), Just("+14:00"), Just("-14:00"), Just("+05:30"), Just("")])
            .prop_map(|(y, m, d, h, ms, off)| format!("{y:04}-{m:02}-{d:02}T{h:02}:59:59.{ms:03}{off}")),
        1 => (0i32..=9999).prop_map(|y| format!("{y:04}-01-01")),
        1 => prop_oneof![
            Just("-000001-01-01T00:00:00Z"), Just("+010000-01-01T00:00:00Z"),
            Just("0000-01-01T00:00:00+23:59"), Just("9999-12-31T23:59:59.999-23:59"),
        ].prop_map(String::from),
    ]
}

/// Whether a computed time is RFC 3339 UTC with milliseconds, years 0000–9999.
fn is_computed_form(text: &str) -> bool {
    text.len() == 24
        && text.ends_with('Z')
        && time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| (0..=9999).contains(&t.year()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn extreme_dates_never_panic_and_computed_times_are_rfc_3339(
        timestamp in prop::option::of(extreme_date()),
        sent_at in prop::option::of(extreme_date()),
        original in prop::option::of(extreme_date()),
        batch_sent_at in prop::option::of(extreme_date()),
    ) {
        let mut event = serde_json::json!({"type": "track", "userId": "u", "event": "e"});
        for (field, value) in [("timestamp", &timestamp), ("sentAt", &sent_at), ("originalTimestamp", &original)] {
            if let Some(value) = value {
                event[field] = value.clone().into();
            }
        }
        let mut body = serde_json::json!({"batch": [event.clone(), {"type": "page", "anonymousId": "a"}]});
        if let Some(sent) = &batch_sent_at {
            body["sentAt"] = sent.clone().into();
        }
        for (body, route) in [
            (event.to_string(), Route::Single(EventType::Track)),
            (body.to_string(), Route::Batch),
        ] {
            let Ok(parsed) = parse(body.as_bytes(), &route, 2500) else { continue };
            let Ok(outcome) = process(parsed, &facts()) else { continue };
            for entry in outcome.batch.entries() {
                let envelope: serde_json::Value = serde_json::from_slice(entry.line).unwrap();
                let stored = &envelope["event"]["timestamp"];
                let kept_as_sent = timestamp.as_deref().is_some_and(|t| stored == t);
                prop_assert!(kept_as_sent || is_computed_form(stored.as_str().unwrap()), "{}", stored);
                prop_assert!(is_computed_form(envelope["receivedAt"].as_str().unwrap()));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..4096), route in routes()) {
        check(&body, &route);
    }

    #[test]
    fn random_json_never_panics_and_stays_valid(value in json_value(), route in routes()) {
        check(value.to_string().as_bytes(), &route);
        let batch = serde_json::json!({"batch": [value.clone(), value]}).to_string();
        check(batch.as_bytes(), &Route::Batch);
    }

    #[test]
    fn random_compressed_bodies_stay_within_the_limit(
        data in prop::collection::vec(any::<u8>(), 0..8192),
        repeat in 1usize..64,
        corrupt in any::<Option<(usize, u8)>>(),
    ) {
        let plain = data.repeat(repeat);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&plain).unwrap();
        let mut gz = encoder.finish().unwrap();
        if let Some((at, byte)) = corrupt {
            let at = at % gz.len();
            gz[at] ^= byte;
        }
        if let Ok(out) = decode(Bytes::from(gz), Encoding::Gzip, MAX_BODY) {
            prop_assert!(out.len() <= MAX_BODY);
        }
        if let Ok(out) = decode(Bytes::from(data.clone()), Encoding::Deflate, MAX_BODY) {
            prop_assert!(out.len() <= MAX_BODY);
        }
    }
}
