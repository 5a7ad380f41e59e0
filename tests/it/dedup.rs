//! messageId deduplication (issue 14) on one node: retries, a write that failed and
//! was retried, a restart inside the window, the window's end, webhook delivery ids,
//! and the window turned off. Several nodes and retry storms: `dedup_nodes.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use intake::config::{Config, SinkBackend};
use serde_json::{json, Value};

use crate::on_redis::on_redis;
use crate::redis_server::RedisServer;
use crate::support::{eventually, send, TestApp};

/// A batch of track events with these messageIds.
pub fn batch(ids: &[String]) -> Value {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "track", "userId": "u", "event": "e", "messageId": id}))
        .collect();
    json!({ "batch": events })
}

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// How many times each messageId was stored.
pub fn copies(envelopes: &[Value]) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for envelope in envelopes {
        let id = envelope["event"]["messageId"]
            .as_str()
            .or(envelope["messageId"].as_str())
            .unwrap()
            .to_string();
        *copies.entry(id).or_default() += 1;
    }
    copies
}

pub fn assert_once(envelopes: &[Value], wanted: &[String]) {
    let copies = copies(envelopes);
    for id in wanted {
        assert_eq!(copies.get(id), Some(&1), "{id}");
    }
    let extra: Vec<_> = copies.keys().filter(|id| !wanted.contains(id)).collect();
    assert!(extra.is_empty(), "stored but not sent: {extra:?}");
}

/// The envelopes whose messageId starts with `prefix` (not the probes that waited
/// for a key to reach a node).
pub fn with_prefix(envelopes: Vec<Value>, prefix: &str) -> Vec<Value> {
    envelopes
        .into_iter()
        .filter(|e| {
            e["event"]["messageId"]
                .as_str()
                .is_some_and(|id| id.starts_with(prefix))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_of_a_batch_on_one_node_are_stored_once_and_counted() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = ids("retry", 5);
    let first = app.post_json("/v1/batch", &key, &batch(&sent)).await;
    assert_eq!(
        (first.status, first.json()),
        (200, json!({"success": true}))
    );
    for _ in 0..2 {
        let again = app.post_json("/v1/batch", &key, &batch(&sent)).await;
        assert_eq!(again.status, 200, "a duplicate is acknowledged");
        assert_eq!(again.json(), json!({"success": true, "duplicates": 5}));
    }
    // A single-event route, and a batch with a repeat inside it.
    let single = json!({"userId": "u", "event": "e", "messageId": "retry-0"});
    let again = app.post_json("/v1/track", &key, &single).await;
    assert_eq!(again.json()["duplicates"], 1);
    let inner = vec![
        "inner".to_string(),
        "inner".to_string(),
        "other".to_string(),
    ];
    let reply = app.post_json("/v1/batch", &key, &batch(&inner)).await;
    assert_eq!(reply.json(), json!({"success": true, "duplicates": 1}));
    let mut wanted = sent.clone();
    wanted.extend(["inner".to_string(), "other".to_string()]);
    assert_once(&app.events(), &wanted);
    // Events without a messageId get a new one each time: never duplicates.
    let anonymous = json!({"userId": "u", "event": "e"});
    for _ in 0..2 {
        let reply = app.post_json("/v1/track", &key, &anonymous).await;
        assert_eq!(reply.json(), json!({"success": true}));
    }
    assert_eq!(app.events().len(), wanted.len() + 2);
    // The same messageId on another connection is another event.
    let (_, _, other_key) = app.admin.sdk_key().await;
    let reply = app.post_json("/v1/batch", &other_key, &batch(&sent)).await;
    assert_eq!(reply.json(), json!({"success": true}));
    let metrics = send(app.admin.addr, "GET", "/metrics", &[], "").await;
    let counted = String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|l| l.strip_prefix("intake_events_deduplicated_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(counted >= 12.0, "counted {counted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_embedded_node_still_drops_a_retry() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = ids("restart", 3);
    assert_eq!(
        app.post_json("/v1/batch", &key, &batch(&sent)).await.status,
        200
    );
    let (dir, _) = app.stop(Duration::from_secs(5)).await;
    let app = TestApp::start_in(dir, |_| {}).await;
    let again = app.post_json("/v1/batch", &key, &batch(&sent)).await;
    assert_eq!(again.json(), json!({"success": true, "duplicates": 3}));
    assert_once(&app.events(), &sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_is_accepted_again_once_the_window_has_passed() {
    let app = TestApp::start_with(|c| c.dedup.window_secs = 2).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let event = json!({"userId": "u", "event": "e", "messageId": "late"});
    let first_stored = Instant::now();
    assert_eq!(app.post_json("/v1/track", &key, &event).await.status, 200);
    assert_eq!(
        app.post_json("/v1/track", &key, &event).await.json()["duplicates"],
        1
    );
    let app = &app;
    let (key, event) = (&key, &event);
    eventually(
        "the id is stored again",
        Duration::from_secs(15),
        || async move {
            app.post_json("/v1/track", key, event).await;
            app.events().len() == 2
        },
    )
    .await;
    let elapsed = first_stored.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2),
        "remembered only {elapsed:?}"
    );
    // At most the window and one bucket (3 s), plus however slow the polls were.
    assert!(elapsed <= Duration::from_secs(12), "remembered {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_window_turns_deduplication_off() {
    let app = TestApp::start_with(|c| c.dedup.window_secs = 0).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = ids("off", 2);
    for _ in 0..2 {
        let reply = app.post_json("/v1/batch", &key, &batch(&sent)).await;
        assert_eq!(reply.json(), json!({"success": true}));
    }
    assert_eq!(app.events().len(), 4);
}

/// Swaps directory `path` for a file, so that writes under it fail, until `restore`.
struct Blocked(std::path::PathBuf, std::path::PathBuf);

impl Blocked {
    fn dir(path: std::path::PathBuf) -> Self {
        let aside = path.with_extension("aside");
        std::fs::rename(&path, &aside).unwrap();
        std::fs::write(&path, b"not a directory").unwrap();
        Self(path, aside)
    }

    fn restore(self) {
        std::fs::remove_file(&self.0).unwrap();
        std::fs::rename(&self.1, &self.0).unwrap();
    }
}

/// Retries the batch of `sent` until it is answered 200.
async fn retry_until_stored(app: &TestApp, key: &str, sent: &[String]) {
    eventually("the retry is stored", Duration::from_secs(15), || async {
        app.post_json("/v1/batch", key, &batch(sent)).await.status == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_failed_is_stored_when_retried_exactly_once() {
    // Segments of one byte roll on every write; the events directory swapped for a
    // file makes the next write fail (503).
    let app = TestApp::start_with(|c| c.sink.segment_bytes = 1).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = ids("failed", 3);
    let blocked = Blocked::dir(app.dir.path().join("events"));
    let refused = app.post_json("/v1/batch", &key, &batch(&sent)).await;
    assert_eq!(refused.status, 503);
    blocked.restore();
    retry_until_stored(&app, &key, &sent).await;
    let again = app.post_json("/v1/batch", &key, &batch(&sent)).await;
    assert_eq!(again.json()["duplicates"], 3);
    assert_once(&app.events(), &sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_to_the_redis_stream_is_stored_when_retried_exactly_once() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Redis)).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = ids("stream-failed", 3);
    // Redis down and the spool unusable: 503.
    redis.kill();
    let spool = app.dir.path().join("spool");
    let blocked = Blocked::dir(spool.clone());
    let refused = app.post_json("/v1/batch", &key, &batch(&sent)).await;
    assert_eq!(refused.status, 503);
    blocked.restore();
    redis.restart().await;
    retry_until_stored(&app, &key, &sent).await;
    let stored = redis.stream_envelopes("intake:events").await;
    eventually("the spool is replayed", Duration::from_secs(15), || async {
        redis.stream_envelopes("intake:events").await.len() >= stored.len()
            && std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(1) == 0
    })
    .await;
    assert_once(&redis.stream_envelopes("intake:events").await, &sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_redelivery_is_stored_once() {
    let app = TestApp::start_with(|c: &mut Config| {
        c.dedup.webhook_id_header = Some("X-Delivery-Id".into());
    })
    .await;
    let ws = app.admin.workspace().await;
    let (_, key) = app.admin.connection(ws, "webhook").await;
    let key = key.unwrap();
    let path = format!("/v1/webhook/{key}");
    let deliveries: [(&[(&str, &str)], &str); 3] = [
        (&[("x-github-delivery", "gh-1")], r#"{"action":"opened"}"#),
        (
            &[],
            r#"{"id":"evt_1","object":"event","type":"charge.succeeded"}"#,
        ),
        (&[("x-delivery-id", "custom-1")], r#"{"n":1}"#),
    ];
    for (headers, body) in deliveries {
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/json"));
        for duplicates in [None, Some(1)] {
            let reply = app.post(&path, &headers, body.to_string()).await;
            assert_eq!(reply.status, 200);
            assert_eq!(
                reply.json().get("duplicates").and_then(Value::as_u64),
                duplicates
            );
        }
    }
    let stored = app.events();
    let wanted = ["gh-1", "evt_1", "custom-1"].map(String::from);
    assert_once(&stored, &wanted);
    // Without a delivery id, each delivery is stored.
    for _ in 0..2 {
        app.post(&path, &[("content-type", "application/json")], "{}")
            .await;
    }
    assert_eq!(app.events().len(), 5);
}
