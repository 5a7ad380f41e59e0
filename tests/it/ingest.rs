//! The ingest listener, route by route and status by status (SPEC §2).

use serde_json::{json, Value};

use crate::support::{basic, send, TestApp};

pub fn track(user: &str) -> Value {
    json!({"userId": user, "event": "Signed Up", "properties": {"plan": "pro"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn track_is_stored_durably_as_an_enriched_envelope() {
    let app = TestApp::start().await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    let reply = app
        .post_json(
            "/v1/track",
            &key,
            &json!({"userId": 7, "event": "Signed Up", "messageId": "m-1"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"success": true}));
    let events = app.events();
    assert_eq!(events.len(), 1);
    let env = &events[0];
    assert_eq!(env["workspaceId"], ws);
    assert_eq!(env["connectionId"], conn);
    assert_eq!(env["kind"], "sdk");
    let event = &env["event"];
    assert_eq!(event["type"], "track");
    assert_eq!(event["userId"], "7");
    assert_eq!(event["messageId"], "m-1");
    assert_eq!(event["context"]["ip"], "127.0.0.1");
    assert_eq!(event["receivedAt"], env["receivedAt"]);
    assert_eq!(event["timestamp"], env["receivedAt"]);
    assert_eq!(env["receivedAt"].as_str().unwrap().len(), 24);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_of_passing_the_write_key_works() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = track("u").to_string();
    let bearer = format!("Bearer {key}");
    let basic = basic(&key);
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            "/v1/track".into(),
            vec![("authorization", basic.as_str())],
            body.clone(),
        ),
        (
            "/v1/track".into(),
            vec![("authorization", bearer.as_str())],
            body.clone(),
        ),
        (
            "/v1/track".into(),
            vec![("x-write-key", key.as_str())],
            body.clone(),
        ),
        (
            "/v1/track".into(),
            vec![("content-type", "text/plain")],
            json!({"userId": "u", "event": "e", "writeKey": key}).to_string(),
        ),
        (format!("/v1/track?writeKey={key}"), vec![], body.clone()),
        (
            "/v1/batch".into(),
            vec![("content-type", "text/plain;charset=UTF-8")],
            json!({"writeKey": key, "batch": [{"type": "page", "anonymousId": "a"}]}).to_string(),
        ),
    ];
    for (path, headers, body) in &cases {
        let reply = app.post(path, headers, body.clone()).await;
        assert_eq!(reply.status, 200, "{path} {headers:?}: {:?}", reply.body);
    }
    let events = app.events();
    assert_eq!(events.len(), cases.len());
    assert!(events.iter().all(|e| e["event"].get("writeKey").is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_key_found_wins() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    // A valid key in the body does not rescue an unknown key in the header.
    let body = json!({"userId": "u", "event": "e", "writeKey": key}).to_string();
    let reply = app
        .post("/v1/track", &[("x-write-key", "nope")], body)
        .await;
    reply.error(401, "Unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_single_event_route_sets_its_type() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let bodies = [
        ("/v1/track", json!({"userId": "u", "event": "E"})),
        (
            "/v1/identify",
            json!({"userId": "u", "traits": {"email": "a@b.c"}}),
        ),
        ("/v1/page", json!({"anonymousId": "a", "name": "Home"})),
        ("/v1/screen", json!({"anonymousId": "a", "name": "Home"})),
        ("/v1/group", json!({"userId": "u", "groupId": 12})),
        ("/v1/alias", json!({"userId": "u", "previousId": "a"})),
        ("/v1/events/track", json!({"userId": "u", "event": "E"})),
        (
            "/v1/events/identify",
            json!({"userId": "u", "type": "track"}),
        ),
    ];
    for (path, body) in &bodies {
        let reply = app.post_json(path, &key, body).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
    let types: Vec<String> = app
        .events()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["track", "identify", "page", "screen", "group", "alias", "track", "identify"]
    );
    assert_eq!(app.events()[4]["event"]["groupId"], "12");
}

#[tokio::test(flavor = "multi_thread")]
async fn meergo_events_route_takes_batch_array_or_one_event() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let bodies = [
        json!({"batch": [{"type": "track", "userId": "u", "event": "E"}]}),
        json!([{"type": "page", "userId": "u"}, {"type": "screen", "userId": "u"}]),
        json!({"type": "identify", "userId": "u"}),
    ];
    for body in &bodies {
        let reply = app.post_json("/v1/events", &key, body).await;
        assert_eq!(reply.status, 200, "{body}: {:?}", reply.body);
    }
    assert_eq!(app.events().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_keeps_valid_events_and_lists_the_rejects() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let big = "x".repeat(33 * 1024);
    let body = json!({
        "sentAt": "2026-11-22T10:00:00.000Z",
        "context": {"library": {"name": "analytics-python"}},
        "batch": [
            {"type": "track", "userId": "u", "event": "ok-1"},
            {"type": "track", "userId": "u"},
            {"type": "track", "userId": "u", "event": "huge", "properties": {"pad": big}},
            {"type": "identify", "userId": ["wrong type"]},
            {"type": "track", "anonymousId": "a", "event": "ok-2"},
        ]
    });
    let reply = app.post_json("/v1/batch", &key, &body).await;
    assert_eq!(reply.status, 200);
    let answer = reply.json();
    assert_eq!(answer["success"], true);
    assert_eq!(answer["accepted"], 2);
    let rejected = answer["rejected"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "InvalidValue"),
            (2, "PayloadTooLarge"),
            (3, "InvalidValue")
        ]
    );
    assert!(rejected[0]["message"].as_str().unwrap().contains("event"));
    assert!(rejected[2]["message"].as_str().unwrap().contains("userId"));
    let events = app.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ok-1", "ok-2"]);
    assert_eq!(events[0]["event"]["sentAt"], "2026-11-22T10:00:00.000Z");
    assert_eq!(
        events[0]["event"]["context"]["library"]["name"],
        "analytics-python"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_get_400_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let cases = [
        ("/v1/track", "{not json"),
        ("/v1/track", "[1,2]"),
        ("/v1/track", "\"a string\""),
        ("/v1/track", r#"{"userId":"u"}"#),
        ("/v1/track", r#"{"event":"e"}"#),
        (
            "/v1/track",
            r#"{"userId":"u","event":"e","timestamp":"last tuesday"}"#,
        ),
        ("/v1/alias", r#"{"userId":"u"}"#),
        ("/v1/group", r#"{"userId":"u"}"#),
        ("/v1/batch", r#"{"batch":"nope"}"#),
        ("/v1/batch", r#"{"batch":[]}"#),
        ("/v1/batch", r#"{"batch":[{"type":"track","userId":"u"}]}"#),
        ("/v1/batch", r#"[{"type":"track"}]"#),
        ("/v1/events", r#"{"userId":"u"}"#),
    ];
    for (path, body) in cases {
        let reply = app.post(path, &[("authorization", &auth)], body).await;
        let message = reply.error(400, "BadRequest");
        assert!(!message.is_empty(), "{path} {body}");
    }
    assert!(app.events().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_unknown_and_revoked_keys_get_401() {
    let app = TestApp::start().await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    let body = track("u").to_string();
    let reply = app.post("/v1/track", &[], body.clone()).await;
    assert!(reply.error(401, "Unauthorized").contains("no write key"));
    let reply = app
        .post_json("/v1/track", "0123456789abcdef0123456789abcdef", &track("u"))
        .await;
    reply.error(401, "Unauthorized");
    let reply = app
        .post("/v1/track", &[("authorization", "Basic ***")], body.clone())
        .await;
    reply.error(401, "Unauthorized");

    // Revocation: a second key is created, the first deleted; the very next request
    // with the deleted key is refused.
    let second = app
        .admin
        .call(
            "POST",
            &format!("/v1/connections/{conn}/event-write-keys"),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(second.status, 201);
    let second = second.json()["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.post_json("/v1/track", &key, &track("u")).await.status,
        200
    );
    let deleted = app
        .admin
        .call(
            "DELETE",
            &format!("/v1/connections/{conn}/event-write-keys/{key}"),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    app.post_json("/v1/track", &key, &track("u"))
        .await
        .error(401, "Unauthorized");
    assert_eq!(
        app.post_json("/v1/track", &second, &track("u"))
            .await
            .status,
        200
    );

    // Deleting the connection revokes its remaining key at once.
    let gone = app
        .admin
        .call("DELETE", &format!("/v1/connections/{conn}"), Some(ws), None)
        .await;
    assert_eq!(gone.status, 204);
    app.post_json("/v1/track", &second, &track("u"))
        .await
        .error(401, "Unauthorized");
    assert_eq!(app.events().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_of_the_wrong_connection_kind_get_403() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let (_, sdk) = app.admin.connection(ws, "sdk").await;
    let (_, hook) = app.admin.connection(ws, "webhook").await;
    let (sdk, hook) = (sdk.unwrap(), hook.unwrap());
    let reply = app.post_json("/v1/track", &hook, &track("u")).await;
    assert!(reply.error(403, "Forbidden").contains("webhook"));
    let reply = app.post(&format!("/v1/webhook/{sdk}"), &[], "{}").await;
    reply.error(403, "Forbidden");
    assert!(app.events().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_404_and_wrong_methods_405() {
    let app = TestApp::start().await;
    let reply = send(app.ingest, "POST", "/v1/nothing", &[], "{}").await;
    reply.error(404, "NotFound");
    let reply = send(app.ingest, "POST", "/v1/events/click", &[], "{}").await;
    reply.error(404, "NotFound");
    let reply = send(app.ingest, "GET", "/v1/track", &[], "").await;
    reply.error(405, "MethodNotAllowed");
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
    let reply = send(app.ingest, "PUT", "/v1/batch", &[], "").await;
    reply.error(405, "MethodNotAllowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_store_json_and_form_payloads() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let (conn, key) = app.admin.connection(ws, "webhook").await;
    let key = key.unwrap();
    let reply = app
        .post(
            &format!("/v1/webhook/{key}"),
            &[
                ("content-type", "application/json"),
                ("user-agent", "Stripe/1.0"),
            ],
            r#"{"id":"evt_1","type":"charge.succeeded"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = app
        .post(
            &format!("/v1/webhook?writeKey={key}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            "name=Ada+Lovelace&tag=a&tag=b",
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = app.post("/v1/webhook", &[], "{}").await;
    reply.error(401, "Unauthorized");
    let reply = app
        .post(&format!("/v1/webhook/{key}"), &[], "{broken")
        .await;
    reply.error(400, "BadRequest");

    let events = app.events();
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first["kind"], "webhook");
    assert_eq!(first["connectionId"], conn);
    assert_eq!(first["messageId"].as_str().unwrap().len(), 36);
    assert_eq!(first["event"]["payload"]["type"], "charge.succeeded");
    assert_eq!(first["event"]["headers"]["user-agent"], "Stripe/1.0");
    assert_eq!(
        first["event"]["headers"]["content-type"],
        "application/json"
    );
    assert_eq!(
        events[1]["event"]["payload"],
        json!({"name": "Ada Lovelace", "tag": ["a", "b"]})
    );
}
