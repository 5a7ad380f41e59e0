//! Production limits: metrics, HTTP/2, slow and flooding clients, header size,
//! keep-alive, access logs.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{basic, eventually, send, Binary, TestApp};

/// Parses Prometheus text: every non-comment line must be `name{labels} value`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels in {line}"
                );
            }
        }
        out.insert(series.to_string(), value);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_prometheus_text_with_bounded_labels() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = json!({"batch": [{"type": "track", "userId": "u", "event": "e"}, {"type": "track", "userId": "u"}]});
    assert_eq!(app.post_json("/v1/batch", &key, &body).await.status, 200);
    app.post_json("/v1/track", "0123456789abcdef0123456789abcdef", &json!({}))
        .await;
    let reply = send(app.admin.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let metrics = parse_metrics(&text);
    let get = |series: &str| {
        metrics
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(get(r#"intake_http_requests_total{route="batch",status="200"}"#) >= 1.0);
    assert!(get(r#"intake_http_requests_total{route="single",status="401"}"#) >= 1.0);
    assert!(get("intake_events_accepted_total") >= 1.0);
    assert!(get(r#"intake_events_rejected_total{reason="InvalidValue"}"#) >= 1.0);
    assert!(get("intake_request_body_bytes_total") > 0.0);
    // Gauges are process-wide, and other tests' gateways set them too.
    assert!(get("intake_index_write_keys") >= 0.0);
    assert!(get("intake_index_version") >= 1.0);
    assert!(get("intake_index_last_full_load_timestamp_seconds") > 1.7e9);
    assert!(metrics.contains_key("intake_index_last_update_age_seconds"));
    assert!(metrics
        .keys()
        .any(|k| k.starts_with("intake_http_request_duration_seconds_bucket")));
    assert!(metrics
        .keys()
        .any(|k| k.starts_with("intake_sink_write_duration_seconds_bucket")));
    // Histograms: every sample in +Inf, as many as the count says.
    let answered = get(r#"intake_http_request_duration_seconds_count{route="batch"}"#);
    assert!(answered >= 1.0);
    assert_eq!(
        get(r#"intake_http_request_duration_seconds_bucket{route="batch",le="+Inf"}"#),
        answered
    );
    assert!(get("intake_sink_write_duration_seconds_count") >= 1.0);
    assert!(get("intake_sink_write_duration_seconds_sum") > 0.0);
    // No key, address or id ever appears.
    assert!(!text.contains(&key));
    assert!(!text.contains("127.0.0.1"));
    for series in metrics.keys() {
        if let Some(labels) = series.split_once('{').map(|(_, l)| l) {
            for pair in labels.trim_end_matches('}').split(',') {
                let label = pair.split('=').next().unwrap();
                assert!(
                    ["route", "status", "reason", "scope", "le", "quantile"].contains(&label),
                    "{series}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_with_prior_knowledge_is_served() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let stream = TcpStream::connect(app.ingest).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for n in 0..3 {
        let request = http::Request::post(format!("http://{}/v1/track", app.ingest))
            .header("authorization", basic(&key))
            .body(Full::new(Bytes::from(
                json!({"userId": "u", "event": format!("h2-{n}")}).to_string(),
            )))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(app.events().len(), 3);
}

/// Reads until the server closes the connection; true if it did within `deadline`.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let result = tokio::time::timeout(deadline, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    result.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = TestApp::start_with(|c| c.ingest.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.ingest).await.unwrap();
    let head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let started = std::time::Instant::now();
    let mut cut = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        // One byte at a time, far slower than any real client.
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut probe)).await
        {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the server waited {:?} for a trickled head",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_flood_does_not_lock_out_real_clients() {
    let app = TestApp::start_with(|c| {
        c.ingest.header_read_timeout_secs = 1;
        c.ingest.max_connections = 20;
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    // 100 connections that never send a byte: more than the cap.
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(TcpStream::connect(app.ingest).await.unwrap());
    }
    // A real client gets through once the idle ones are cut.
    let key = &key;
    let ingest = app.ingest;
    eventually(
        "a real request succeeds during the flood",
        Duration::from_secs(20),
        move || async move {
            let auth = basic(key);
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                send(
                    ingest,
                    "POST",
                    "/v1/track",
                    &[("authorization", auth.as_str())],
                    r#"{"userId":"u","event":"e"}"#,
                ),
            )
            .await;
            matches!(attempt, Ok(reply) if reply.status == 200)
        },
    )
    .await;
    // The flood's connections were closed by the server.
    let mut closed = 0;
    for stream in flood.iter_mut().take(10) {
        if closed_within(stream, Duration::from_secs(10)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_are_refused() {
    let app = TestApp::start().await;
    let huge = "x".repeat(40_000);
    let mut stream = TcpStream::connect(app.ingest).await.unwrap();
    let request = format!(
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::start_with(|c| c.ingest.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.ingest).await.unwrap();
    stream
        .write_all(b"OPTIONS /v1/track HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 204"));
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn access_logs_are_one_json_line_per_request_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(dir.path(), &[("INTAKE_INGEST__ACCESS_LOG", "true")]);
    let (_, _, key) = node.admin.sdk_key().await;
    let auth = basic(&key);
    let reply = send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("authorization", auth.as_str())],
        r#"{"userId":"u","event":"e"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = send(node.ingest, "POST", "/v1/nowhere", &[], "{}").await;
    assert_eq!(reply.status, 404);
    let log = node.log.clone();
    eventually("two access lines", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("intake::access"))
                .count()
                >= 2
        }
    })
    .await;
    let lines = log.lock().unwrap().clone();
    let access: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.contains("intake::access"))
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    assert_eq!(access[0]["fields"]["status"], 200);
    assert_eq!(access[0]["fields"]["route"], "single");
    assert_eq!(access[0]["fields"]["method"], "POST");
    assert_eq!(access[1]["fields"]["status"], 404);
    for line in &lines {
        assert!(!line.contains(&key), "a write key was logged: {line}");
        assert!(
            !line.contains(crate::support::API_KEY),
            "an API key was logged: {line}"
        );
    }
}
