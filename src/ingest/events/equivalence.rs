//! The lean path against the `Value` reference on random bodies: the same status or
//! the same accepted events (as JSON values; key order and number spelling aside),
//! the same rejects, and envelopes every strict parser reads.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::reference;
use super::tests::{facts, RECEIVED};
use super::{parse, process};
use crate::clock;
use crate::ingest::answer::IngestError;
use crate::ingest::routes::{EventType, Route};

/// A JSON string literal: plain, unicode, escapes, surrogate pairs, rarely a lone one.
fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[a-zA-Z0-9 _.:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        4 => "[a-zé€😀\u{0}-\u{1f}\"\\\\/]{0,6}".prop_map(|s| Value::String(s).to_string()),
        2 => Just(r#""\ud83d\ude00 \u00e9\t\"q\"""#.to_string()),
        2 => Just(r#""a\/b\\c\u0000""#.to_string()),
        2 => Just(String::new()).prop_map(|_| "\"\"".to_string()),
        1 => prop_oneof![Just(r#""\ud800""#), Just(r#""x\udc00""#)].prop_map(String::from),
    ]
}

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => any::<i64>().prop_map(|n| n.to_string()),
        4 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        4 => prop_oneof![
            Just("1.50"), Just("-0"), Just("1e2"), Just("2.5E-3"), Just("12345678901234567890123"),
            Just("18446744073709551615"), Just("-9223372036854775809"), Just("0e999"),
        ].prop_map(String::from),
        1 => Just("1e400".to_string()),
    ]
}

fn date_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"2026-11-22T09:59:58.000Z\""),
        Just("\"2026-11-22T10:00:00Z\""),
        Just("\"2026-11-22T11:00:00+01:00\""),
        Just("\"2026-11-22\""),
        Just("\"0001-01-01T00:00:00Z\""),
        Just("\"8000-01-01T00:00:00Z\""),
        Just("\"9999-12-31T23:59:59.999Z\""),
        Just("\"0000-01-01T00:00:00+05:00\""),
        Just("\"9999-12-31T23:00:00-05:00\""),
        Just("\"yesterday\""),
        Just("null"),
        Just("1700000000"),
    ]
    .prop_map(String::from)
}

/// Keys, sometimes spelled with escapes, sometimes the contract's own.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,3}".prop_map(|k| format!("\"{k}\"")),
        1 => Just("\"ip\"".to_string()),
        1 => Just("\"library\"".to_string()),
        1 => Just("\"n\\u0061me\"".to_string()),
        1 => Just("\"q\\\"k\"".to_string()),
    ]
}

/// Any JSON value as text, objects with possibly repeated keys.
fn value_literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        string_literal(),
        number_literal(),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            object_of(key(), inner),
        ]
    })
}

fn object_of(
    keys: impl Strategy<Value = String>,
    values: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    prop::collection::vec((keys, values), 0..5).prop_map(|members| {
        let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{ {} }}", members.join(" , "))
    })
}

fn id_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9-]{1,10}".prop_map(|s| format!("\"{s}\"")),
        2 => number_literal(),
        1 => Just("\"\"".to_string()),
        1 => Just("null".to_string()),
        1 => Just("{}".to_string()),
        1 => Just("\"us\\u00e9r\"".to_string()),
    ]
}

/// A member of an event: mostly the contract's fields, with plausible values.
fn event_member() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => id_literal().prop_map(|v| ("\"userId\"".into(), v)),
        2 => id_literal().prop_map(|v| ("\"anonymousId\"".into(), v)),
        2 => id_literal().prop_map(|v| ("\"messageId\"".into(), v)),
        1 => id_literal().prop_map(|v| ("\"previousId\"".into(), v)),
        1 => id_literal().prop_map(|v| ("\"groupId\"".into(), v)),
        1 => id_literal().prop_map(|v| ("\"user\\u0049d\"".into(), v)),
        3 => prop_oneof![Just("\"Order Completed\""), Just("\"\""), Just("3")]
            .prop_map(|v| ("\"event\"".into(), v.to_string())),
        2 => prop_oneof![Just("\"track\""), Just("\"identify\""), Just("\"alias\""),
                Just("\"group\""), Just("\"page\""), Just("\"tr\\u0061ck\""), Just("\"click\"")]
            .prop_map(|v| ("\"type\"".into(), v.to_string())),
        2 => date_literal().prop_map(|v| ("\"timestamp\"".into(), v)),
        2 => date_literal().prop_map(|v| ("\"sentAt\"".into(), v)),
        1 => date_literal().prop_map(|v| ("\"originalTimestamp\"".into(), v)),
        1 => date_literal().prop_map(|v| ("\"receivedAt\"".into(), v)),
        3 => context().prop_map(|v| ("\"context\"".into(), v)),
        2 => context().prop_map(|v| ("\"integrations\"".into(), v)),
        2 => value_literal().prop_map(|v| ("\"properties\"".into(), v)),
        1 => value_literal().prop_map(|v| ("\"traits\"".into(), v)),
        1 => Just(("\"writeKey\"".into(), "\"k\"".into())),
        2 => (key(), value_literal()),
    ]
}

/// A context-like value: usually an object with nested objects to merge.
fn context() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => object_of(key(), value_literal()),
        1 => Just("null".to_string()),
        1 => Just("[1]".to_string()),
        1 => Just(r#"{"library":{"name":"x","version":"1"},"ip":"1.1.1.1"}"#.to_string()),
    ]
}

/// The members a valid event of each type needs, so that most generated events reach
/// enrichment before the random members added to them break or override them.
fn valid_core() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    prop_oneof![
        Just(vec![
            pair("\"type\"", "\"track\""),
            pair("\"userId\"", "\"u1\""),
            pair("\"event\"", "\"Order Completed\"")
        ]),
        Just(vec![
            pair("\"type\"", "\"identify\""),
            pair("\"anonymousId\"", "\"a1\"")
        ]),
        Just(vec![pair("\"type\"", "\"page\""), pair("\"userId\"", "42")]),
        Just(vec![
            pair("\"type\"", "\"alias\""),
            pair("\"userId\"", "\"u1\""),
            pair("\"previousId\"", "7")
        ]),
        Just(vec![
            pair("\"type\"", "\"group\""),
            pair("\"userId\"", "\"u1\""),
            pair("\"groupId\"", "1.5")
        ]),
    ]
}

fn event_literal() -> impl Strategy<Value = String> {
    let event = (valid_core(), prop::collection::vec(event_member(), 0..8))
        .prop_map(|(mut members, extra)| {
            members.extend(extra);
            members
        })
        .prop_shuffle()
        .prop_map(|members| {
            let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", members.join(","))
        });
    prop_oneof![12 => event, 1 => value_literal()]
}

/// A body for one of the routes.
fn body() -> impl Strategy<Value = (String, Route)> {
    let batch_member = prop_oneof![
        2 => date_literal().prop_map(|v| format!("\"sentAt\":{v}")),
        3 => context().prop_map(|v| format!("\"context\":{v}")),
        2 => context().prop_map(|v| format!("\"integrations\":{v}")),
        1 => Just("\"writeKey\":\"k\"".to_string()),
        1 => value_literal().prop_map(|v| format!("\"other\":{v}")),
    ];
    let batch = (
        prop::collection::vec(batch_member, 0..4),
        prop::collection::vec(event_literal(), 0..5),
    )
        .prop_map(|(fields, events)| {
            let mut members = fields;
            members.push(format!("\"batch\":[{}]", events.join(",")));
            format!("{{{}}}", members.join(","))
        });
    prop_oneof![
        3 => (batch, prop_oneof![Just(Route::Batch), Just(Route::Events)]),
        3 => (event_literal(), prop_oneof![
            Just(Route::Single(EventType::Track)),
            Just(Route::Single(EventType::Identify)),
            Just(Route::Single(EventType::Alias)),
            Just(Route::Single(EventType::Group)),
            Just(Route::Events),
        ]),
        1 => prop::collection::vec(event_literal(), 0..4)
            .prop_map(|events| (format!("[{}]", events.join(",")), Route::Events)),
    ]
}

fn status(error: &IngestError) -> u16 {
    error.status_and_code().0.as_u16()
}

/// A generated messageId differs run to run: both must be UUIDs, then they count
/// as equal.
fn same_message_id(lean: &Value, reference: &Value) -> bool {
    let uuid = |v: &Value| v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok());
    lean == reference || (uuid(lean).is_some() && uuid(reference).is_some())
}

/// How the compared cases ended, to see that the generator reaches enrichment.
static ACCEPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static REFUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn compare(body: &str, route: &Route) -> Result<(), TestCaseError> {
    let facts = facts();
    let lean = parse(body.as_bytes(), route, 2500).and_then(|p| {
        let key = p.write_key.clone();
        process(p, &facts).map(|o| (o, key))
    });
    let reference = reference::parse(body.as_bytes(), route).and_then(|p| {
        let key = p.write_key.clone();
        reference::process(p, &facts).map(|o| (o, key))
    });
    let ((lean, lean_key), (reference, reference_key)) = match (lean, reference) {
        (Err(a), Err(b)) => {
            REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            prop_assert_eq!(status(&a), status(&b), "{} / {}", a, b);
            return Ok(());
        }
        (Ok(_), Err(e)) => {
            return Err(TestCaseError::fail(format!(
                "only the reference failed: {e}"
            )))
        }
        (Err(e), Ok(_)) => {
            return Err(TestCaseError::fail(format!(
                "only the lean path failed: {e}"
            )))
        }
        (Ok(a), Ok(b)) => (a, b),
    };
    prop_assert_eq!(lean_key, reference_key);
    ACCEPTED.fetch_add(lean.accepted, std::sync::atomic::Ordering::Relaxed);
    let lean_rejects: Vec<(usize, &str)> =
        lean.rejected.iter().map(|r| (r.index, r.code)).collect();
    prop_assert_eq!(lean_rejects, reference.rejected.clone());
    prop_assert_eq!(lean.accepted, reference.events.len());
    for (entry, expected) in lean.batch.entries().zip(&reference.events) {
        let envelope: Value = serde_json::from_slice(entry.line).map_err(|e| {
            TestCaseError::fail(format!(
                "envelope is not JSON ({e}): {:?}",
                String::from_utf8_lossy(entry.line)
            ))
        })?;
        prop_assert_eq!(&envelope["workspaceId"], 1);
        prop_assert_eq!(&envelope["connectionId"], 7);
        prop_assert_eq!(&envelope["receivedAt"], RECEIVED);
        prop_assert_eq!(&envelope["kind"], "sdk");
        let mut event: Map<String, Value> =
            envelope["event"].as_object().cloned().unwrap_or_default();
        prop_assert_eq!(
            event.get("messageId").and_then(Value::as_str),
            Some(entry.message_id)
        );
        let mut expected = expected.clone();
        prop_assert!(same_message_id(&event["messageId"], &expected["messageId"]));
        event.remove("messageId");
        expected.remove("messageId");
        prop_assert_eq!(
            Value::Object(event),
            Value::Object(expected),
            "line {}",
            String::from_utf8_lossy(entry.line)
        );
        for key in ["timestamp", "receivedAt"] {
            if let Some(text) = envelope["event"][key].as_str() {
                prop_assert!(clock::parse_iso8601(text).is_some(), "{}", text);
            }
        }
    }
    Ok(())
}

/// Characters that break or bend JSON where they land.
const MUTATIONS: &[char] = &[
    '"', '\\', '{', '}', '[', ']', ',', ':', '0', '1', '-', '.', 'e', 'E', '+', 'u', 'd', '8', 'n',
    't', ' ', '\n', '\u{1}', 'x', '\u{e9}',
];

/// A body with a few characters inserted, deleted or replaced.
fn mutated_body() -> impl Strategy<Value = (String, Route)> {
    let edit = (
        any::<prop::sample::Index>(),
        0..3u8,
        prop::sample::select(MUTATIONS),
    );
    (body(), prop::collection::vec(edit, 1..4)).prop_map(|((body, route), edits)| {
        let mut chars: Vec<char> = body.chars().collect();
        for (at, how, c) in edits {
            let at = at.index(chars.len() + 1);
            match how {
                0 => chars.insert(at, c),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        (chars.into_iter().collect(), route)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_lean_path_writes_what_the_reference_builds((body, route) in body()) {
        compare(&body, &route)?;
    }

    /// The fast walk accepts exactly what a full, strict parse accepts (an object
    /// body), and never more (any body); damaged bodies get the reference's answer.
    #[test]
    fn the_walk_accepts_only_strict_json((body, route) in mutated_body()) {
        let strict = serde_json::from_str::<Value>(&body).is_ok();
        let plain_object = body.starts_with('{');
        let walked = super::walk::walk(&body, false, usize::MAX).is_some();
        if plain_object {
            prop_assert_eq!(walked, strict, "{}", body);
        } else {
            prop_assert!(strict || !walked, "{}", body);
        }
        prop_assert!(strict || super::walk::walk(&body, true, usize::MAX).is_none(), "{}", body);
        compare(&body, &route)?;
    }
}

#[test]
fn random_bodies_reach_enrichment_often() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    for _ in 0..500 {
        let (body, route) = body().new_tree(&mut runner).unwrap().current();
        compare(&body, &route).unwrap();
    }
    let accepted = ACCEPTED.load(std::sync::atomic::Ordering::Relaxed);
    let refused = REFUSED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("events accepted: {accepted}; requests refused: {refused}");
    assert!(accepted >= 100, "only {accepted} events accepted");
}

#[test]
fn known_corner_cases_agree() {
    for (body, route) in [
        (
            r#"{"userId":1.0,"event":"e","context":null,"integrations":null}"#,
            Route::Single(EventType::Track),
        ),
        (
            r#"{"batch":[{"type":"alias","userId":"","previousId":{}}],"context":{"ip":"1"}}"#,
            Route::Batch,
        ),
        (
            r#"{"batch":null,"type":"page","userId":"u"}"#,
            Route::Events,
        ),
        (r#"{"batch":[],"batch":[]}"#, Route::Batch),
        (
            r#"[[{"type":"page","userId":"u"}],null,null,null,null]"#,
            Route::Batch,
        ),
        (
            r#"{"userId":"u","event":"e","context":{"library":1},"context":{"library":{"a":1}}}"#,
            Route::Single(EventType::Track),
        ),
        (
            r#"{"sentAt":"2026-11-22T10:00:00Z","context":{"library":{"name":"n","v":{"x":1}}},"integrations":{"All":true},"batch":[{"type":"track","userId":"u","event":"e","sentAt":null,"context":{"library":{"v":{"y":2}}},"integrations":null}]}"#,
            Route::Batch,
        ),
    ] {
        compare(body, &route).unwrap();
    }
}
