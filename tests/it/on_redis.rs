//! The Redis store and stream sink against real redis-server processes: key sync
//! across nodes, races on several nodes, Redis outages, reloads, and the spool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use intake::config::{Config, SinkBackend, StoreBackend};
use serde_json::json;

use crate::load;
use crate::redis_server::RedisServer;
use crate::support::{eventually, send, TestApp};

fn on_redis(redis: &RedisServer, sink: SinkBackend) -> impl FnOnce(&mut Config) {
    let url = redis.url();
    move |c: &mut Config| {
        c.store.backend = StoreBackend::Redis;
        c.store.redis_url = url;
        c.sink.backend = sink;
    }
}

async fn accepts(app: &TestApp, key: &str) -> u16 {
    let body = json!({"userId": "u", "event": "e"});
    app.post_json("/v1/track", key, &body).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_made_on_one_node_works_on_the_others_and_dies_everywhere() {
    let redis = RedisServer::start().await;
    let a = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let b = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let c = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let (ws, conn, key) = a.admin.sdk_key().await;
    assert_eq!(
        accepts(&a, &key).await,
        200,
        "read your writes on the writing node"
    );
    let key_ref = &key;
    for node in [&b, &c] {
        eventually(
            "the key reaches the other node",
            Duration::from_secs(5),
            move || async move { accepts(node, key_ref).await == 200 },
        )
        .await;
    }
    // The admin API of another node sees the same data.
    let listed = b
        .admin
        .call(
            "GET",
            &format!("/v1/connections/{conn}/event-write-keys"),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(listed.json(), json!({"keys": [key]}));
    // Revoke on B (a second key first, so the connection keeps one).
    let second = b
        .admin
        .call(
            "POST",
            &format!("/v1/connections/{conn}/event-write-keys"),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(second.status, 201);
    let deleted = b
        .admin
        .call(
            "DELETE",
            &format!("/v1/connections/{conn}/event-write-keys/{key}"),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(accepts(&b, &key).await, 401);
    for node in [&a, &c] {
        eventually(
            "the revocation reaches the other node",
            Duration::from_secs(5),
            move || async move { accepts(node, key_ref).await == 401 },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_cap_and_last_key_rule_hold_across_three_nodes() {
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(
            TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await,
        ));
    }
    let ws = nodes[0].admin.workspace().await;
    let (conn, _) = nodes[0].admin.connection(ws, "sdk").await;
    let path = format!("/v1/connections/{conn}/event-write-keys");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (node, path) = (nodes[i % 3].clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            node.admin.call("POST", &path, Some(ws), None).await.status
        }));
    }
    let mut statuses = HashMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&201), Some(&19), "{statuses:?}");
    assert_eq!(statuses.get(&422), Some(&31), "{statuses:?}");
    let keys: Vec<String> = nodes[1]
        .admin
        .call("GET", &path, Some(ws), None)
        .await
        .json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 20);
    let mut tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let (node, path) = (nodes[i % 3].clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            node.admin
                .call("DELETE", &format!("{path}/{key}"), Some(ws), None)
                .await
                .status
        }));
    }
    let mut statuses = HashMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&204), Some(&19), "{statuses:?}");
    assert_eq!(statuses.get(&422), Some(&1), "{statuses:?}");
    let left = nodes[2]
        .admin
        .call("GET", &path, Some(ws), None)
        .await
        .json();
    assert_eq!(left["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_work_on_the_redis_store() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let other = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let created = app
        .admin
        .call(
            "POST",
            "/v1/keys",
            None,
            Some(json!({"userId": "r", "whitelistedIPs": ["127.0.0.1"]})),
        )
        .await;
    assert_eq!(created.status, 201);
    let created = created.json();
    let secret = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let (other_ref, secret_ref) = (&other, &secret);
    eventually(
        "the new API key works on the other node",
        Duration::from_secs(5),
        move || async move {
            other_ref
                .admin
                .call_as(secret_ref, "GET", "/v1/workspaces", None, None)
                .await
                .status
                == 200
        },
    )
    .await;
    let reply = app
        .admin
        .call(
            "PUT",
            &format!("/v1/keys/{id}"),
            None,
            Some(json!({"apiVersion": "2025-01-01", "description": "r"})),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["apiVersion"], "2025-01-01");
    let page = other.admin.call("GET", "/v1/keys", None, None).await.json();
    assert_eq!(page["total"], 2);
    assert_eq!(page["data"][0]["id"], id.as_str());
    assert_eq!(
        app.admin
            .call("DELETE", &format!("/v1/keys/{id}"), None, None)
            .await
            .status,
        204
    );
    app.admin
        .call_as(&secret, "GET", "/v1/workspaces", None, None)
        .await
        .error(401, "Unauthorized");
    eventually(
        "the deleted API key stops on the other node",
        Duration::from_secs(5),
        move || async move {
            other_ref
                .admin
                .call_as(secret_ref, "GET", "/v1/workspaces", None, None)
                .await
                .status
                == 401
        },
    )
    .await;
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

/// Writes a write key straight into Redis, bypassing the scripts and the channel.
async fn plant_key(redis: &RedisServer, key: &str, connection: u32, workspace: u32) {
    let mut conn = redis.connection().await;
    let record = json!({"workspaceId": workspace, "connectionId": connection, "source": "sdk", "createdAt": "2026-01-01T00:00:00.000Z"});
    let _: () = redis::cmd("HSET")
        .arg("intake:write-keys")
        .arg(key)
        .arg(record.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_gap_triggers_a_full_reload() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let planted = "PlantedKey000000000000000000000A";
    plant_key(&redis, planted, 7, 1).await;
    assert_eq!(
        accepts(&app, planted).await,
        401,
        "not published, not known"
    );
    let mut conn = redis.connection().await;
    let version: u64 = redis::cmd("GET")
        .arg("intake:version")
        .query_async(&mut conn)
        .await
        .unwrap();
    let gapped = json!({"version": version + 5, "changes": []}).to_string();
    let _: () = redis::cmd("PUBLISH")
        .arg("intake:changes")
        .arg(gapped)
        .query_async(&mut conn)
        .await
        .unwrap();
    let app = &app;
    eventually(
        "the gap makes the node reload",
        Duration::from_secs(5),
        move || async move { accepts(app, planted).await == 200 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_resync_interval_reloads_the_index() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(|c| {
        on_redis(&redis, SinkBackend::Log)(c);
        c.store.resync_interval_secs = 1;
    })
    .await;
    let planted = "PlantedKey000000000000000000000B";
    plant_key(&redis, planted, 8, 1).await;
    let app = &app;
    eventually(
        "the periodic reload finds the key",
        Duration::from_secs(10),
        move || async move { accepts(app, planted).await == 200 },
    )
    .await;
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
