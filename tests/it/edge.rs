//! The ingest listener's edges: CORS, client addresses behind proxies, a failing
//! sink, slow clients and concurrency (SPEC §2).

use std::time::Duration;

use serde_json::{json, Value};

use crate::ingest::track;
use crate::support::{basic, send, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_and_answers() {
    let app = TestApp::start().await;
    let reply = send(
        app.ingest,
        "OPTIONS",
        "/v1/batch",
        &[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "content-encoding",
        "x-write-key",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert_eq!(reply.header("access-control-max-age"), Some("86400"));
    // Error answers carry it too.
    let reply = send(
        app.ingest,
        "POST",
        "/v1/track",
        &[("origin", "https://x.example")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_with_a_list_echoes_only_allowed_origins() {
    let app =
        TestApp::start_with(|c| c.ingest.cors_origins = vec!["https://shop.example".into()]).await;
    let ok = send(
        app.ingest,
        "OPTIONS",
        "/v1/track",
        &[("origin", "https://shop.example")],
        "",
    )
    .await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(ok.header("vary"), Some("Origin"));
    let other = send(
        app.ingest,
        "OPTIONS",
        "/v1/track",
        &[("origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(other.status, 204);
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_ip_comes_from_trusted_proxies_only() {
    let app = TestApp::start_with(|c| c.ingest.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let body = track("u").to_string();
    let reply = app
        .post(
            "/v1/track",
            &[
                ("authorization", &auth),
                ("x-forwarded-for", "198.51.100.4, 127.0.0.1"),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.events()[0]["event"]["context"]["ip"], "198.51.100.4");

    let untrusted = TestApp::start().await;
    let (_, _, key) = untrusted.admin.sdk_key().await;
    let auth = basic(&key);
    let reply = untrusted
        .post(
            "/v1/track",
            &[
                ("authorization", &auth),
                ("x-forwarded-for", "198.51.100.4"),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(untrusted.events()[0]["event"]["context"]["ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_failure_gets_503_and_recovers() {
    // An in-memory sink told to refuse: the answer, not the fault, is the point here
    // (real disk faults are in sink_faults.rs).
    let sink = intake::sink::memory::MemorySink::new();
    let app = TestApp::start_with_sink(sink.clone()).await;
    let (_, _, key) = app.admin.sdk_key().await;
    assert_eq!(
        app.post_json("/v1/track", &key, &track("a")).await.status,
        200
    );
    sink.refuse(true);
    let reply = app.post_json("/v1/track", &key, &track("b")).await;
    reply.error(503, "ServiceUnavailable");
    assert!(reply.header("retry-after").is_some());
    let ready = send(app.admin.addr, "GET", "/readyz", &[], "").await;
    ready.error(503, "ServiceUnavailable");

    sink.refuse(false);
    assert_eq!(
        app.post_json("/v1/track", &key, &track("c")).await.status,
        200
    );
    let users: Vec<String> = sink
        .envelopes()
        .iter()
        .map(|line| serde_json::from_slice::<Value>(line).unwrap())
        .map(|e| e["event"]["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["a", "c"]);
    assert_eq!(
        send(app.admin.addr, "GET", "/readyz", &[], "").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::start_with(|c| c.ingest.header_read_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(app.ingest).await.unwrap();
    stream
        .write_all(b"POST /v1/track HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (with or without a 408); reading ends.
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server kept a slow client's connection open"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_all_land() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let (_, _, key) = app.admin.sdk_key().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"batch": [
                {"type": "track", "userId": "u", "event": "e", "messageId": format!("a{i}")},
                {"type": "track", "userId": "u", "event": "e", "messageId": format!("b{i}")}
            ]});
            app.post_json("/v1/batch", &key, &body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let mut ids: Vec<String> = app
        .events()
        .iter()
        .map(|e| e["event"]["messageId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 80);
}
