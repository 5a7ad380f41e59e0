//! Property tests of the ingest decoding and validation path: random bytes, random
//! gzip and random JSON never panic and never get past the limits.

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
    let Ok(parsed) = parse(body, route) else {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

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
