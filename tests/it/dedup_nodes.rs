//! messageId deduplication across nodes on one Redis (log sinks with the window in
//! Redis, and the Redis stream sink's script), retry storms, and the window in Redis
//! going down and coming back.

use std::sync::Arc;
use std::time::Duration;

use intake::config::SinkBackend;
use serde_json::json;

use crate::dedup::{assert_once, batch, copies, ids, with_prefix};
use crate::on_redis::on_redis;
use crate::redis_server::RedisServer;
use crate::support::{eventually, TestApp};

/// Two nodes on one Redis store, each with its own event log.
async fn two_nodes(redis: &RedisServer, sink: SinkBackend) -> (TestApp, TestApp, String) {
    let a = TestApp::start_with(on_redis(redis, sink)).await;
    let b = TestApp::start_with(on_redis(redis, sink)).await;
    let (_, _, key) = a.admin.sdk_key().await;
    let b_ref = &b;
    let key_ref = &key;
    eventually(
        "the key reaches node b",
        Duration::from_secs(10),
        move || async move { crate::on_redis::accepts(b_ref, key_ref).await == 200 },
    )
    .await;
    (a, b, key)
}

/// Sends 4 events to node `a`, then the same batch to node `b`, which must answer
/// that all 4 were duplicates; the ids sent.
async fn sent_to_a_and_retried_on_b(
    a: &TestApp,
    b: &TestApp,
    key: &str,
    prefix: &str,
) -> Vec<String> {
    let sent = ids(prefix, 4);
    let first = a.post_json("/v1/batch", key, &batch(&sent)).await;
    assert_eq!(first.status, 200);
    let again = b.post_json("/v1/batch", key, &batch(&sent)).await;
    assert_eq!(again.json(), json!({"success": true, "duplicates": 4}));
    sent
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_across_two_nodes_on_one_redis_are_stored_once() {
    let redis = RedisServer::start().await;
    // Log sinks, the window in Redis.
    let (a, b, key) = two_nodes(&redis, SinkBackend::Log).await;
    let sent = sent_to_a_and_retried_on_b(&a, &b, &key, "nodes").await;
    let mut both = a.events();
    both.extend(b.events());
    assert_once(&with_prefix(both, "nodes-"), &sent);
    // The window lives in Redis as compact integer sets.
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("intake:dedup:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(encoding, "intset");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_400 && ttl <= 86_400 + 10_800, "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_across_two_nodes_reach_the_redis_stream_once() {
    let redis = RedisServer::start().await;
    let (a, b, key) = two_nodes(&redis, SinkBackend::Redis).await;
    let sent = sent_to_a_and_retried_on_b(&a, &b, &key, "stream").await;
    let stored = redis.stream_envelopes("intake:events").await;
    assert_once(&with_prefix(stored, "stream-"), &sent);
}

/// 16 clients each send the same 1 000 messageIds, in batches of 50, in their own
/// order, spread over `nodes`; returns how many envelopes were stored per id.
async fn retry_storm(nodes: &[Arc<TestApp>], key: &str, prefix: &str) -> Vec<String> {
    let sent = ids(prefix, 1000);
    let mut clients = Vec::new();
    for client in 0..16usize {
        let node = nodes[client % nodes.len()].clone();
        let (key, mut order) = (key.to_string(), sent.clone());
        order.rotate_left(client * 61 % 1000);
        clients.push(tokio::spawn(async move {
            for chunk in order.chunks(50) {
                let reply = node.post_json("/v1/batch", &key, &batch(chunk)).await;
                assert_eq!(reply.status, 200, "{:?}", reply.json());
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    sent
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_storm_on_one_node_stores_each_message_id_once() {
    let app = Arc::new(TestApp::start().await);
    let (_, _, key) = app.admin.sdk_key().await;
    let sent = retry_storm(std::slice::from_ref(&app), &key, "storm").await;
    assert_once(&app.events(), &sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_storm_across_two_nodes_reaches_the_redis_stream_once() {
    let redis = RedisServer::start().await;
    let (a, b, key) = two_nodes(&redis, SinkBackend::Redis).await;
    let sent = retry_storm(&[Arc::new(a), Arc::new(b)], &key, "storm").await;
    let stored = redis.stream_envelopes("intake:events").await;
    assert_once(&with_prefix(stored, "storm-"), &sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_storm_across_two_logging_nodes_stays_within_the_documented_bound() {
    let redis = RedisServer::start().await;
    let (a, b, key) = two_nodes(&redis, SinkBackend::Log).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let sent = retry_storm(&[a.clone(), b.clone()], &key, "storm").await;
    let mut both = a.events();
    both.extend(b.events());
    let copies = copies(&with_prefix(both, "storm-"));
    // Every id is stored; an id is stored twice only when both nodes had a copy in
    // flight at once (checked before either recorded it): at most once per node.
    for id in &sent {
        let n = copies.get(id).copied().unwrap_or(0);
        assert!((1..=2).contains(&n), "{id}: {n}");
    }
    let doubled = copies.values().filter(|&&n| n == 2).count();
    eprintln!("retry storm over two log nodes: {doubled} of 1000 ids stored twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_window_in_redis_down_events_are_stored_and_dedup_resumes() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let before = ids("before", 2);
    let first = app.post_json("/v1/batch", &key, &batch(&before)).await;
    assert_eq!(first.json(), json!({"success": true}));
    redis.kill();
    // Redis down: nothing can be looked up, so events are stored (at least once).
    let during = ids("during", 2);
    for _ in 0..2 {
        let reply = app.post_json("/v1/batch", &key, &batch(&during)).await;
        assert_eq!(reply.status, 200);
    }
    let stored = copies(&app.events());
    for id in &during {
        assert!(matches!(stored.get(id), Some(1 | 2)), "{id}: {stored:?}");
    }
    redis.restart().await;
    // Once its backoff has passed, the window answers again: a retry is dropped.
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let (app, key, attempt) = (&app, &key, &attempt);
    eventually(
        "deduplication resumes",
        Duration::from_secs(20),
        || async move {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let fresh = vec![format!("after-{n}")];
            app.post_json("/v1/batch", key, &batch(&fresh)).await;
            let retry = app.post_json("/v1/batch", key, &batch(&fresh)).await;
            retry.json()["duplicates"] == 1
        },
    )
    .await;
    // What was recorded before the outage is still remembered (Redis kept it).
    let again = app.post_json("/v1/batch", key, &batch(&before)).await;
    assert_eq!(again.json(), json!({"success": true, "duplicates": 2}));
}
