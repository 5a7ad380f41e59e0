//! Key sync across nodes on one Redis (SPEC §5): keys, API keys and allowed origins
//! reach every node; races on several nodes; version gaps, unreadable messages and
//! the resync interval reload the index; a failed start leaves no task behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use intake::config::SinkBackend;
use intake::index::OriginVerdict;
use serde_json::json;

use crate::on_redis::{accepts, on_redis};
use crate::redis_server::RedisServer;
use crate::support::{eventually, test_config, Binary, TestApp};

/// Waits until `node` answers a track event with `key` with `status`.
async fn until_answered(what: &str, node: &TestApp, key: &str, status: u16) {
    eventually(what, Duration::from_secs(5), || async move {
        accepts(node, key).await == status
    })
    .await;
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
    for node in [&b, &c] {
        until_answered("the key reaches the other node", node, &key, 200).await;
    }
    // The admin API of another node sees the same data.
    let on_b = b.admin().in_workspace(ws);
    assert_eq!(
        on_b.write_keys(conn).await.unwrap(),
        std::slice::from_ref(&key)
    );
    // Revoke on B (a second key first, so the connection keeps one).
    on_b.add_write_key(conn).await.unwrap();
    on_b.delete_write_key(conn, &key).await.unwrap();
    assert_eq!(accepts(&b, &key).await, 401);
    for node in [&a, &c] {
        until_answered("the revocation reaches the other node", node, &key, 401).await;
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
    until_answered("the gap makes the node reload", &app, planted, 200).await;
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
async fn allowed_origins_reach_every_node() {
    let redis = RedisServer::start().await;
    let a = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let b = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    let ws = a.admin().workspace().await;
    let conn = a
        .admin()
        .in_workspace(ws)
        .create_connection(
            json!({"name": "s", "type": "sdk", "allowedOrigins": ["https://shop.example"]}),
        )
        .await
        .unwrap();
    let verdict =
        |node: &TestApp, origin: &str| node.index().origin_verdict(conn.id, origin.as_bytes());
    let until = |node: &TestApp, origin: &'static str, wanted: OriginVerdict| {
        let now = verdict(node, origin);
        async move { now == wanted }
    };
    eventually("the origins reach B", Duration::from_secs(5), || {
        until(&b, "https://shop.example", OriginVerdict::Allowed)
    })
    .await;
    assert_eq!(verdict(&b, "https://evil.example"), OriginVerdict::Refused);
    a.admin()
        .in_workspace(ws)
        .update_connection(
            conn.id,
            json!({"allowedOrigins": ["https://*.shop.example"]}),
        )
        .await
        .unwrap();
    eventually("the change reaches B", Duration::from_secs(5), || {
        until(&b, "https://shop.example", OriginVerdict::Refused)
    })
    .await;
    assert_eq!(
        verdict(&b, "https://www.shop.example"),
        OriginVerdict::Allowed
    );
    // A node started later loads them in full.
    let c = TestApp::start_with(on_redis(&redis, SinkBackend::Log)).await;
    assert_eq!(
        verdict(&c, "https://www.shop.example"),
        OriginVerdict::Allowed
    );
    // Deleted on B: gone everywhere.
    b.admin()
        .in_workspace(ws)
        .delete_connection(conn.id)
        .await
        .unwrap();
    for node in [&a, &c] {
        eventually(
            "the deletion reaches every node",
            Duration::from_secs(5),
            || until(node, "https://evil.example", OriginVerdict::NoPolicy),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_change_message_is_logged_and_reloads_the_index() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let node = Binary::start(
        dir.path(),
        &[
            ("INTAKE_STORE__BACKEND", "redis"),
            ("INTAKE_STORE__REDIS_URL", url.as_str()),
        ],
    );
    let planted = "PlantedKey000000000000000000000C";
    plant_key(&redis, planted, 9, 1).await;
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("PUBLISH")
        .arg("intake:changes")
        .arg("{\"version\": \"not a message\"")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ingest = node.ingest;
    eventually(
        "the node reloads and knows the planted key",
        Duration::from_secs(10),
        || async move {
            let reply = crate::support::send(
                ingest,
                "POST",
                "/v1/track",
                &[("x-write-key", planted)],
                r#"{"userId":"u","event":"e"}"#,
            )
            .await;
            reply.status == 200
        },
    )
    .await;
    let log = node.log.lock().unwrap().join("\n");
    assert!(
        log.contains("unreadable message on intake:changes"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_start_leaves_no_task_behind() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The log sink cannot open its directory: a file stands there.
    std::fs::write(dir.path().join("events"), b"not a directory").unwrap();
    let mut config = test_config(dir.path());
    on_redis(&redis, SinkBackend::Log)(&mut config);
    let started = intake::app::start(config.validate().unwrap()).await;
    assert!(started.is_err());
    // The store's change feed and the index sync were stopped: nobody listens any more.
    let url = redis.url();
    eventually(
        "no subscriber is left on intake:changes",
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg("intake:changes")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                counts[0].1 == 0
            }
        },
    )
    .await;
}
