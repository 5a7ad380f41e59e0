use serde_json::Value;

use super::*;
use crate::clock;
use crate::ingest::routes::Route;
use crate::model::EventSource;

/// When the test requests arrive.
pub(super) const RECEIVED: &str = "2026-11-22T10:00:10.000Z";

/// Request facts for workspace 1, connection 7, events of at most 1 000 bytes.
pub(super) fn facts() -> RequestFacts<'static> {
    RequestFacts {
        received_at: clock::parse_iso8601(RECEIVED).unwrap(),
        received_at_text: RECEIVED,
        client_ip: "203.0.113.5",
        target: KeyTarget {
            workspace_id: 1,
            connection_id: 7,
            source: EventSource::Sdk,
        },
        max_event_bytes: 1000,
    }
}

fn run(body: &str, route: Route) -> Result<Outcome, IngestError> {
    let parsed = parse(body.as_bytes(), &route, 2500)?;
    process(parsed, &facts())
}

fn envelopes(outcome: &Outcome) -> Vec<Value> {
    outcome
        .batch
        .entries()
        .map(|entry| {
            let envelope: Value = serde_json::from_slice(entry.line).unwrap();
            assert_eq!(envelope["event"]["messageId"], entry.message_id);
            envelope
        })
        .collect()
}

#[test]
fn track_is_enriched() {
    let out = run(
        r#"{"event":"Signed Up","userId":42,"timestamp":"2026-11-22T09:00:00Z","sentAt":"2026-11-22T09:00:05Z","writeKey":"k"}"#,
        Route::Single(EventType::Track),
    )
    .unwrap();
    let env = &envelopes(&out)[0];
    assert_eq!(env["workspaceId"], 1);
    assert_eq!(env["connectionId"], 7);
    assert_eq!(env["kind"], "sdk");
    assert_eq!(env["receivedAt"], RECEIVED);
    let e = &env["event"];
    assert_eq!(e["type"], "track");
    assert_eq!(e["userId"], "42");
    assert_eq!(e["receivedAt"], RECEIVED);
    // receivedAt - (sentAt - timestamp) = 10:00:10 - 5 s
    assert_eq!(e["timestamp"], "2026-11-22T10:00:05.000Z");
    assert_eq!(e["originalTimestamp"], "2026-11-22T09:00:00Z");
    assert_eq!(e["context"]["ip"], "203.0.113.5");
    assert!(e.get("writeKey").is_none());
    assert_eq!(e["messageId"].as_str().unwrap().len(), 36);
}

#[test]
fn timestamp_defaults_to_received_at_and_client_ip_is_not_overwritten() {
    let out = run(
        r#"{"anonymousId":"a","context":{"ip":"1.1.1.1"},"messageId":"m1"}"#,
        Route::Single(EventType::Page),
    )
    .unwrap();
    let e = &envelopes(&out)[0]["event"];
    assert_eq!(e["timestamp"], RECEIVED);
    assert_eq!(e["context"]["ip"], "1.1.1.1");
    assert_eq!(e["messageId"], "m1");
}

#[test]
fn historical_timestamp_without_sent_at_is_kept() {
    let out = run(
        r#"{"userId":"u","timestamp":"2020-01-01T00:00:00Z"}"#,
        Route::Single(EventType::Identify),
    )
    .unwrap();
    assert_eq!(
        envelopes(&out)[0]["event"]["timestamp"],
        "2020-01-01T00:00:00Z"
    );
}

#[test]
fn batch_fields_apply_under_the_events_own() {
    let body = r#"{"sentAt":"2026-11-22T10:00:00Z","context":{"library":{"name":"x","version":"1"},"locale":"en"},
        "integrations":{"All":true},
        "batch":[{"type":"identify","userId":"u","timestamp":"2026-11-22T09:59:59Z","context":{"library":{"version":"2"}}},
                 {"type":"track","userId":"u","event":"E","sentAt":"2026-11-22T10:00:10Z","integrations":{"All":false}}]}"#;
    let out = run(body, Route::Batch).unwrap();
    let envs = envelopes(&out);
    let first = &envs[0]["event"];
    assert_eq!(first["sentAt"], "2026-11-22T10:00:00Z");
    assert_eq!(first["timestamp"], "2026-11-22T10:00:09.000Z");
    assert_eq!(first["context"]["library"]["name"], "x");
    assert_eq!(first["context"]["library"]["version"], "2");
    assert_eq!(first["context"]["locale"], "en");
    assert_eq!(first["integrations"]["All"], true);
    let second = &envs[1]["event"];
    assert_eq!(second["sentAt"], "2026-11-22T10:00:10Z");
    assert_eq!(second["integrations"]["All"], false);
}

#[test]
fn invalid_events_are_rejected_one_by_one() {
    let big = "x".repeat(2000);
    let body = format!(
        r#"{{"batch":[
        {{"type":"track","userId":"u","event":"ok"}},
        {{"type":"track","userId":"u"}},
        {{"type":"click","userId":"u"}},
        {{"type":"identify"}},
        {{"type":"alias","userId":"u"}},
        {{"type":"group","userId":"u"}},
        {{"type":"page","userId":"u","timestamp":"yesterday"}},
        {{"type":"page","userId":{{}}}},
        "not an object",
        {{"type":"page","userId":"u","pad":"{big}"}},
        {{"type":"page","userId":"u","context":[]}}
    ]}}"#
    );
    let out = run(&body, Route::Batch).unwrap();
    assert_eq!(out.accepted, 1);
    let codes: Vec<(usize, &str)> = out.rejected.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        codes,
        vec![
            (1, "InvalidValue"),
            (2, "InvalidValue"),
            (3, "InvalidValue"),
            (4, "InvalidValue"),
            (5, "InvalidValue"),
            (6, "InvalidValue"),
            (7, "InvalidValue"),
            (8, "BadRequest"),
            (9, "PayloadTooLarge"),
            (10, "InvalidValue"),
        ]
    );
    assert!(out.rejected[0].message.contains("`event`"));
    assert!(out.rejected[5].message.contains("`timestamp`"));
}

#[test]
fn batch_without_valid_event_is_a_bad_request() {
    let err = run(r#"{"batch":[{"type":"track"}]}"#, Route::Batch).unwrap_err();
    assert!(matches!(err, IngestError::BadRequest(m) if m.contains("event 0")));
    let err = run(r#"{"batch":[]}"#, Route::Batch).unwrap_err();
    assert!(matches!(err, IngestError::BadRequest(_)));
}

#[test]
fn malformed_bodies_are_bad_requests() {
    for (body, route) in [
        ("{", Route::Batch),
        ("[]", Route::Batch),
        (r#"{"batch":{}}"#, Route::Batch),
        (r#"{"nobatch":[]}"#, Route::Batch),
        (r#"{"batch":[],"context":3}"#, Route::Batch),
        (r#"{"batch":[],"sentAt":"nope"}"#, Route::Batch),
        ("[1", Route::Events),
        ("42", Route::Single(EventType::Track)),
        ("", Route::Single(EventType::Track)),
    ] {
        assert!(
            matches!(
                parse(body.as_bytes(), &route, 2500),
                Err(IngestError::BadRequest(_))
            ),
            "{body}"
        );
    }
}

#[test]
fn oversized_single_event_is_payload_too_large() {
    let body = format!(
        r#"{{"userId":"u","event":"e","pad":"{}"}}"#,
        "x".repeat(2000)
    );
    let err = run(&body, Route::Single(EventType::Track)).unwrap_err();
    assert!(matches!(err, IngestError::PayloadTooLarge(_)));
}

#[test]
fn meergo_events_route_takes_three_shapes() {
    let array = r#"[{"type":"track","userId":"u","event":"a"},{"type":"page","userId":"u"}]"#;
    assert_eq!(run(array, Route::Events).unwrap().accepted, 2);
    let batch = r#"{"batch":[{"type":"screen","userId":"u"}],"writeKey":"k"}"#;
    let parsed = parse(batch.as_bytes(), &Route::Events, 2500).unwrap();
    assert_eq!(parsed.write_key.as_deref(), Some("k"));
    let one = r#"{"type":"identify","userId":"u"}"#;
    assert_eq!(run(one, Route::Events).unwrap().accepted, 1);
    let untyped = r#"{"userId":"u"}"#;
    assert!(run(untyped, Route::Events).is_err());
}

#[test]
fn the_issues_extreme_timestamps_fall_back_to_received_at() {
    // Issue 10 point 3: this request panicked the handler (year 10025).
    let out = run(
        r#"{"userId":"1","event":"x","sentAt":"0001-01-01T00:00:00Z","timestamp":"8000-01-01T00:00:00Z"}"#,
        Route::Single(EventType::Track),
    )
    .unwrap();
    let e = &envelopes(&out)[0]["event"];
    assert_eq!(e["timestamp"], RECEIVED);
    assert_eq!(e["originalTimestamp"], "8000-01-01T00:00:00Z");
    // The reverse stored "-7974-11-27T…".
    let out = run(
        r#"{"userId":"1","event":"x","sentAt":"9999-01-01T00:00:00Z","timestamp":"0000-01-01T00:00:00Z"}"#,
        Route::Single(EventType::Track),
    )
    .unwrap();
    assert_eq!(envelopes(&out)[0]["event"]["timestamp"], RECEIVED);
    // An originalTimestamp alone that is out of range in UTC.
    let out = run(
        r#"{"userId":"1","event":"x","originalTimestamp":"0000-01-01T00:00:00+05:00"}"#,
        Route::Single(EventType::Track),
    )
    .unwrap();
    assert_eq!(envelopes(&out)[0]["event"]["timestamp"], RECEIVED);
}

#[test]
fn more_events_than_the_cap_is_payload_too_large() {
    let event = r#"{"type":"track","userId":"u","event":"e"}"#;
    let body = |n: usize| format!("{{\"batch\":[{}]}}", vec![event; n].join(","));
    assert!(parse(body(3).as_bytes(), &Route::Batch, 3).is_ok());
    for route in [Route::Batch, Route::Events] {
        let err = parse(body(4).as_bytes(), &route, 3).err().unwrap();
        assert!(matches!(err, IngestError::PayloadTooLarge(_)), "{route:?}");
    }
    let array = format!("[{}]", [event; 4].join(","));
    let err = parse(array.as_bytes(), &Route::Events, 3).err().unwrap();
    assert!(matches!(err, IngestError::PayloadTooLarge(_)));
}

#[test]
fn the_answer_lists_the_first_100_rejects_and_counts_all() {
    let mut events = vec![r#"{"type":"track","userId":"u","event":"ok"}"#.to_string()];
    events.extend((0..2000).map(|_| "0".to_string()));
    let body = format!("{{\"batch\":[{}]}}", events.join(","));
    let out = run(&body, Route::Batch).unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.len(), MAX_LISTED_REJECTS);
    assert_eq!(out.rejected_count, 2000);
    assert_eq!(out.rejected[99].index, 100);
    assert_eq!(out.rejected_by_code, vec![("BadRequest", 2000)]);
}

#[test]
fn untouched_values_are_copied_as_sent() {
    let body = r#"{"userId":"u","event":"e","properties":{"price":1.50,"big":12345678901234567890123,"s":"\u00e9\n"},"writeKey":"k","userId":"v"}"#;
    let out = run(body, Route::Single(EventType::Track)).unwrap();
    let line = std::str::from_utf8(out.batch.entries().next().unwrap().line).unwrap();
    assert!(
        line.contains(
            r#""properties":{"price":1.50,"big":12345678901234567890123,"s":"\u00e9\n"}"#
        ),
        "{line}"
    );
    assert!(!line.contains("writeKey"));
    // Duplicate keys: the last one wins and is written once.
    assert_eq!(line.matches("\"userId\"").count(), 1);
    assert_eq!(envelopes(&out)[0]["event"]["userId"], "v");
}

#[test]
fn unpaired_surrogates_and_huge_numbers_are_refused() {
    let body = r#"{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":"\ud800"}},
        {"type":"track","userId":"u","event":"e","properties":{"a":1e400}},
        {"type":"track","userId":"u","event":"\ud83d\ude00"}]}"#;
    let out = run(body, Route::Batch).unwrap();
    assert_eq!(out.accepted, 1);
    let codes: Vec<_> = out.rejected.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(codes, [(0, "BadRequest"), (1, "BadRequest")]);
    let single = r#"{"userId":"u","event":"\udc00"}"#;
    assert!(matches!(
        parse(single.as_bytes(), &Route::Single(EventType::Track), 1),
        Err(IngestError::BadRequest(_))
    ));
    assert_eq!(
        clock::parse_iso8601("2026-11-22T10:00:00Z").map(clock::format_millis),
        Some("2026-11-22T10:00:00.000Z".into())
    );
}

#[test]
fn events_of_many_tiny_members_take_the_serde_path_with_the_same_result() {
    let tiny: String = (0..120).map(|n| format!(",\"{n}\":0")).collect();
    let event = format!(r#"{{"type":"track","userId":"u","event":"e"{tiny}}}"#);
    let body = format!(r#"{{"batch":[{event},{event}]}}"#);
    assert!(super::walk::walk(&body, true, 2500).is_none());
    let out = run(&body, Route::Batch).unwrap();
    assert_eq!(out.accepted, 2);
    let sent: Value = serde_json::from_str(&event).unwrap();
    for envelope in envelopes(&out) {
        assert_eq!(envelope["event"]["119"], 0);
        assert_eq!(
            envelope["event"].as_object().unwrap().len(),
            sent.as_object().unwrap().len() + 4
        );
    }
}
