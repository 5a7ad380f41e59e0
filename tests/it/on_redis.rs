//! The Redis store and stream sink against real redis-server processes: Redis
//! outages, the stream sink, the spool, and crashes. Key sync across nodes is in
//! `sync.rs`.

use std::time::Duration;

use intake::config::{Config, SinkBackend, StoreBackend};
use serde_json::json;

use crate::load;
use crate::redis_server::RedisServer;
use crate::support::{eventually, send, TestApp};

pub fn on_redis(redis: &RedisServer, sink: SinkBackend) -> impl FnOnce(&mut Config) {
    let url = redis.url();
    move |c: &mut Config| {
        c.store.backend = StoreBackend::Redis;
        c.store.redis_url = url;
        c.sink.backend = sink;
    }
}

pub async fn accepts(app: &TestApp, key: &str) -> u16 {
    let body = json!({"userId": "u", "event": "e"});
    app.post_json("/v1/track", key, &body).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_keeps_serving_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    redis.kill();
    // Ingest goes on from the last index.
    assert_eq!(accepts(&app, &key).await, 200);
    // Admin writes and readiness say Redis is gone.
    let path = format!("/v1/connections/{conn}/event-write-keys");
    app.admin
        .call("POST", &path, Some(ws), None)
        .await
        .error(503, "ServiceUnavailable");
    let admin = app.admin.addr;
    eventually(
        "readyz reports the outage",
        Duration::from_secs(10),
        move || async move { send(admin, "GET", "/readyz", &[], "").await.status == 503 },
    )
    .await;
    assert_eq!(accepts(&app, &key).await, 200);
    redis.restart().await;
    eventually(
        "readyz recovers",
        Duration::from_secs(15),
        move || async move { send(admin, "GET", "/readyz", &[], "").await.status == 200 },
    )
    .await;
    let added = app.admin.call("POST", &path, Some(ws), None).await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    let new_key = added.json()["key"].as_str().unwrap().to_string();
    assert_eq!(accepts(&app, &new_key).await, 200);
    assert_eq!(app.events().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_sink_stores_envelopes() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Redis)).await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "one", "messageId": "m1"},
        {"type": "identify", "userId": "u", "messageId": "m2"}
    ]});
    assert_eq!(app.post_json("/v1/batch", &key, &body).await.status, 200);
    let envelopes = redis.stream_envelopes("intake:events").await;
    assert_eq!(envelopes.len(), 2);
    assert_eq!(envelopes[0]["workspaceId"], ws);
    assert_eq!(envelopes[0]["connectionId"], conn);
    assert_eq!(envelopes[0]["kind"], "sdk");
    assert_eq!(envelopes[0]["event"]["messageId"], "m1");
    assert_eq!(envelopes[1]["event"]["messageId"], "m2");
    assert!(app.events().is_empty(), "nothing in the local log");
}

/// Polls until the spool directory holds files (`true`) or none (`false`).
async fn spool_has_files(spool: std::path::PathBuf, wanted: bool) -> bool {
    let count = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    (count > 0) == wanted
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_redis_mid_load_loses_no_acknowledged_event() {
    let mut redis = RedisServer::start().await;
    // The store is embedded here so that the node needs Redis only as its sink.
    let app = TestApp::start_with(|c| {
        c.sink.backend = SinkBackend::Redis;
        c.store.redis_url = redis.url();
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    let (tally, clients) = load::start(app.ingest, &key, 6, 500, "k");
    let url = redis.url();
    eventually("the load is under way", Duration::from_secs(30), || {
        stream_len(url.clone(), 300)
    })
    .await;
    redis.kill();
    // The load goes on against the spool for a while; then Redis comes back.
    let spool = app.dir.path().join("spool");
    eventually("events are spooled", Duration::from_secs(30), || {
        spool_has_files(spool.clone(), true)
    })
    .await;
    // The gauge is process-wide and other tests' sinks set it too: poll it.
    let admin = app.admin.addr;
    eventually(
        "/metrics shows a spool depth",
        Duration::from_secs(30),
        move || async move {
            let metrics = send(admin, "GET", "/metrics", &[], "").await;
            String::from_utf8_lossy(&metrics.body)
                .lines()
                .find_map(|l| l.strip_prefix("intake_spool_depth "))
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|depth| depth > 0.0)
        },
    )
    .await;
    redis.restart().await;
    load::finish(clients).await;
    let acknowledged = tally.acknowledged();
    assert!(acknowledged.len() > 300);
    assert!(
        tally.refused.lock().unwrap().is_empty(),
        "the spool took every request"
    );
    eventually(
        "the spool is replayed and emptied",
        Duration::from_secs(30),
        || spool_has_files(spool.clone(), false),
    )
    .await;
    let stored = redis.stream_envelopes("intake:events").await;
    let duplicates = load::assert_none_lost(&acknowledged, &stored);
    println!(
        "acknowledged {}, in stream {}, duplicates {duplicates}",
        acknowledged.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_node_mid_load_loses_no_acknowledged_event() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let env = [
        ("INTAKE_STORE__BACKEND", "redis"),
        ("INTAKE_SINK__BACKEND", "redis"),
        ("INTAKE_STORE__REDIS_URL", url.as_str()),
    ];
    let node = crate::support::Binary::start(dir.path(), &env);
    let (_, _, key) = node.admin.sdk_key().await;
    let (tally, clients) = load::start(node.ingest, &key, 6, 100_000, "n");
    eventually("the load is under way", Duration::from_secs(30), || {
        stream_len(url.clone(), 500)
    })
    .await;
    node.signal("KILL");
    load::finish(clients).await;
    drop(node);
    // A restart replays anything the node had spooled.
    let node = crate::support::Binary::start(dir.path(), &env);
    let spool = dir.path().join("spool");
    eventually("the spool is empty", Duration::from_secs(30), || {
        spool_has_files(spool.clone(), false)
    })
    .await;
    load::assert_none_lost(
        &tally.acknowledged(),
        &redis.stream_envelopes("intake:events").await,
    );
    drop(node);
}

/// Whether the events stream holds at least `n` entries.
async fn stream_len(url: String, n: u64) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("XLEN")
        .arg("intake:events")
        .query_async::<u64>(&mut conn)
        .await
        .is_ok_and(|len| len >= n)
}
