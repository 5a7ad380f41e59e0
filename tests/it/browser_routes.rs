//! The browser SDKs' routes over plain HTTP (issue 11): Segment's short paths,
//! RudderStack's beacon and pixel, both settings documents, CORS preflights and
//! origin checks. (`browsers.rs` drives the real SDKs in Chromium.)

use serde_json::{json, Value};

use crate::support::{basic, send, Reply, TestApp};

const GIF_LEN: usize = 43;

fn assert_gif(reply: &Reply, status: u16) {
    assert_eq!(
        reply.status,
        status,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("image/gif"));
    assert_eq!(reply.body.len(), GIF_LEN);
    assert!(reply.body.starts_with(b"GIF89a"));
}

fn event_of(app: &TestApp, message_id: &str) -> Value {
    app.events()
        .into_iter()
        .find(|e| e["event"]["messageId"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} is not in the sink"))["event"]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_short_paths_store_each_type_and_batches() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "text/plain"),
    ];
    let events = [
        ("t", json!({"event": "Clicked"})),
        ("i", json!({"traits": {"plan": "pro"}})),
        ("p", json!({"name": "Home"})),
        ("s", json!({"name": "Cart"})),
        ("g", json!({"groupId": "g1"})),
        ("a", json!({"previousId": "anon-1"})),
    ];
    for (path, mut event) in events.clone() {
        event["userId"] = json!("u1");
        event["messageId"] = json!(format!("short-{path}"));
        let reply = app
            .post(&format!("/v1/{path}"), &headers, event.to_string())
            .await;
        assert_eq!(reply.status, 200, "/v1/{path}: {:?}", reply.body);
    }
    let batch = json!({"writeKey": key, "sentAt": "2026-01-01T00:00:01Z", "batch": [
        {"type": "track", "event": "A", "anonymousId": "x", "messageId": "short-b1", "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "page", "anonymousId": "x", "messageId": "short-b2"},
    ]});
    let reply = app
        .post(
            "/v1/b",
            &[("content-type", "text/plain")],
            batch.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    for (path, type_) in [
        ("t", "track"),
        ("i", "identify"),
        ("p", "page"),
        ("s", "screen"),
        ("g", "group"),
        ("a", "alias"),
    ] {
        assert_eq!(event_of(&app, &format!("short-{path}"))["type"], type_);
    }
    let first = event_of(&app, "short-b1");
    assert_eq!(first["sentAt"], "2026-01-01T00:00:01Z");
    assert_eq!(event_of(&app, "short-b2")["type"], "page");
}

#[tokio::test(flavor = "multi_thread")]
async fn rudderstacks_beacon_takes_the_key_from_the_query() {
    let app = TestApp::start().await;
    let (_, conn, key) = app.admin.sdk_key().await;
    let body = json!({"sentAt": "2026-01-01T00:00:01.000Z", "batch": [
        {"type": "track", "event": "Beacon", "anonymousId": "a1", "messageId": "beacon-1", "channel": "web"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "beacon-2"},
    ]})
    .to_string();
    let text = [("content-type", "text/plain;charset=UTF-8")];
    let reply = app
        .post(
            &format!("/beacon/v1/batch?writeKey={key}"),
            &text,
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["success"], true);
    let stored = event_of(&app, "beacon-1");
    assert_eq!(stored["event"], "Beacon");
    assert_eq!(app.events()[0]["connectionId"], conn);
    assert_eq!(event_of(&app, "beacon-2")["type"], "identify");

    app.post("/beacon/v1/batch", &text, body.clone())
        .await
        .error(401, "Unauthorized");
    app.post(
        "/beacon/v1/batch?writeKey=UnknownKeyUnknownKeyUnknownKey00",
        &text,
        body,
    )
    .await
    .error(401, "Unauthorized");
    assert_eq!(app.events().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pixel_turns_the_query_into_an_event_and_answers_a_gif() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let reply = send(
        app.ingest,
        "GET",
        &format!("/pixel/v1/track?writeKey={key}&anonymousId=%22anon-9%22&event=Email+Opened&messageId=px-1&properties.campaign=spring&context.campaign.source=mail"),
        &[],
        "",
    )
    .await;
    assert_gif(&reply, 200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let event = event_of(&app, "px-1");
    assert_eq!(event["type"], "track");
    assert_eq!(event["event"], "Email Opened");
    assert_eq!(event["anonymousId"], "anon-9");
    assert_eq!(event["channel"], "web");
    assert_eq!(event["integrations"], json!({"All": true}));
    assert_eq!(event["properties"], json!({"campaign": "spring"}));
    assert_eq!(event["context"]["campaign"]["source"], "mail");
    assert_eq!(event["context"]["ip"], "127.0.0.1");
    assert!(event.get("writeKey").is_none());
    assert!(event["receivedAt"].is_string() && event["timestamp"].is_string());

    let page = format!("/pixel/v1/page?writeKey={key}&anonymousId=a&name=&messageId=px-2");
    assert_gif(&send(app.ingest, "GET", &page, &[], "").await, 200);
    assert_eq!(event_of(&app, "px-2")["name"], "Unknown Page");
}

#[tokio::test(flavor = "multi_thread")]
async fn pixel_errors_are_gifs_whose_status_tells_the_error() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let get = |path: String| async move { send(app.ingest, "GET", &path, &[], "").await };
    assert_gif(
        &get("/pixel/v1/track?event=x&anonymousId=a".into()).await,
        401,
    );
    let unknown = "/pixel/v1/track?writeKey=UnknownKeyUnknownKeyUnknownKey00&event=x&anonymousId=a";
    assert_gif(&get(unknown.into()).await, 401);
    // No event name, no id, a bad timestamp: the contract's validation.
    for query in [
        "event=&anonymousId=a",
        "event=x",
        "event=x&anonymousId=a&timestamp=yesterday",
    ] {
        let reply = get(format!("/pixel/v1/track?writeKey={key}&{query}")).await;
        assert_gif(&reply, 400);
    }
    let reply = send(
        app.ingest,
        "POST",
        &format!("/pixel/v1/track?writeKey={key}&event=x&anonymousId=a"),
        &[],
        "",
    )
    .await;
    assert_gif(&reply, 405);
    assert_eq!(reply.header("allow"), Some("GET, OPTIONS"));
    assert!(app.events().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_of_every_browser_route_echo_the_sdks_headers() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let analytics_js = "authorization,x-retry-count";
    let rudderstack =
        "anonymousid,authorization,content-type,rsa-retry-attempt,rsa-retry-reason,rsa-since-first-attempt,rsa-since-last-attempt,sentat";
    let paths = [
        "/v1/t".to_string(),
        "/v1/i".into(),
        "/v1/p".into(),
        "/v1/s".into(),
        "/v1/g".into(),
        "/v1/a".into(),
        "/v1/b".into(),
        "/v1/track".into(),
        "/v1/batch".into(),
        format!("/beacon/v1/batch?writeKey={key}"),
        format!("/pixel/v1/track?writeKey={key}"),
        "/pixel/v1/page".into(),
        format!("/v1/projects/{key}/settings"),
        format!("/sourceConfig/?p=npm&writeKey={key}"),
    ];
    for path in &paths {
        for requested in [analytics_js, rudderstack] {
            let reply = send(
                app.ingest,
                "OPTIONS",
                path,
                &[
                    ("origin", "http://localhost:3000"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", requested),
                ],
                "",
            )
            .await;
            assert_eq!(reply.status, 204, "{path}");
            assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
            assert_eq!(
                reply.header("access-control-allow-headers"),
                Some(requested),
                "{path}"
            );
            assert_eq!(
                reply.header("access-control-allow-methods"),
                Some("GET, POST, OPTIONS")
            );
            assert_eq!(reply.header("access-control-max-age"), Some("86400"));
            assert_eq!(reply.header("access-control-allow-credentials"), None);
        }
    }
    // A list that is not all header names, or too long, is not echoed.
    let too_many = vec!["x-a"; 33].join(",");
    for requested in ["authorization, bad header", too_many.as_str()] {
        let reply = send(
            app.ingest,
            "OPTIONS",
            "/v1/t",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-headers", requested),
            ],
            "",
        )
        .await;
        assert_eq!(reply.status, 204);
        let allowed = reply.header("access-control-allow-headers").unwrap();
        assert!(
            !allowed.contains("bad") && !allowed.contains("x-a"),
            "{allowed}"
        );
    }
    let reply = send(app.ingest, "OPTIONS", "/pixel/v1/identify", &[], "").await;
    reply.error(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_origin_list_refuses_other_pages_but_not_servers() {
    let app = TestApp::start_with(|c| {
        c.ingest.cors_origins = vec![
            "https://shop.example".into(),
            "https://*.shop.example".into(),
        ]
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let app = &app;
    let post = |origin: Option<&'static str>, id: &'static str| {
        let auth = auth.clone();
        let body = json!({"userId": "u", "event": "E", "messageId": id}).to_string();
        async move {
            let mut headers = vec![("authorization", auth.as_str())];
            headers.extend(origin.map(|o| ("origin", o)));
            app.post("/v1/t", &headers, body).await
        }
    };
    for (origin, id) in [
        (Some("https://shop.example"), "o-1"),
        (Some("https://www.shop.example"), "o-2"),
        (Some("https://a.b.shop.example"), "o-3"),
    ] {
        let reply = post(origin, id).await;
        assert_eq!(reply.status, 200, "{origin:?}");
        assert_eq!(reply.header("access-control-allow-origin"), origin);
        assert_eq!(reply.header("vary"), Some("Origin"));
    }
    for origin in [
        "https://evilshop.example",
        "http://www.shop.example",
        "https://www.shop.example:8443",
        "null",
    ] {
        let reply = post(Some(origin), "refused").await;
        reply.error(403, "Forbidden");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    assert_eq!(
        post(None, "o-server").await.status,
        200,
        "no Origin: a server"
    );
    let preflight = send(
        app.ingest,
        "OPTIONS",
        "/v1/t",
        &[
            ("origin", "https://evilshop.example"),
            ("access-control-request-headers", "authorization"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-headers"), None);
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    let ids: Vec<Value> = app
        .events()
        .iter()
        .map(|e| e["event"]["messageId"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("o-1"), json!("o-2"), json!("o-3"), json!("o-server")]
    );
}
