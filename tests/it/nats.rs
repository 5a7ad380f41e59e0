//! The NATS JetStream sink against real `nats-server -js` processes: what lands in the
//! stream (subject, `Nats-Msg-Id`, envelope), retries dropped by the duplicate window,
//! the stream check at start-up, and a full outage with spool and replay.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use intake::config::{Config, SinkBackend};
use serde_json::json;

use crate::load;
use crate::nats_server::{count_by_message_id, Nats, STREAM};
use crate::support::{eventually, send, test_config, Binary, TestApp};

fn on_nats(nats: &Nats) -> impl FnOnce(&mut Config) {
    let url = nats.url();
    move |c: &mut Config| {
        c.sink.backend = SinkBackend::Nats;
        c.sink.nats_url = url;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_lands_with_its_subject_id_and_envelope_and_a_retry_adds_nothing() {
    let nats = Nats::single().await;
    let app = TestApp::start_with(on_nats(&nats)).await;
    let (ws, conn, key) = app.admin.sdk_key().await;
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "one", "messageId": "m1"},
        {"type": "identify", "userId": "u", "messageId": "m2"},
        {"type": "track", "userId": "u", "event": "three", "messageId": "m3"}
    ]});
    assert_eq!(app.post_json("/v1/batch", &key, &body).await.status, 200);
    let stored = nats.messages().await;
    assert_eq!(stored.len(), 3);
    for (i, message) in stored.iter().enumerate() {
        let id = format!("m{}", i + 1);
        assert_eq!(message.subject, format!("intake.events.{ws}.{conn}"));
        assert_eq!(message.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(message.envelope["workspaceId"], ws);
        assert_eq!(message.envelope["connectionId"], conn);
        assert_eq!(message.envelope["kind"], "sdk");
        assert_eq!(message.envelope["event"]["messageId"], id.as_str());
        assert!(message.envelope["receivedAt"].is_string());
    }
    // An SDK retrying the same batch: acknowledged, and intake's window drops it.
    let retried = app.post_json("/v1/batch", &key, &body).await;
    assert_eq!(retried.json(), json!({"success": true, "duplicates": 3}));
    assert_eq!(nats.messages().await.len(), 3);

    // A webhook envelope is published with its own messageId.
    let hook_ws = app.admin.workspace().await;
    let (hook_conn, hook_key) = app.admin.connection(hook_ws, "webhook").await;
    let reply = app
        .post(
            &format!("/v1/webhook/{}", hook_key.unwrap()),
            &[("content-type", "application/json")],
            r#"{"action":"opened"}"#,
        )
        .await;
    assert_eq!(reply.status, 200);
    let stored = nats.messages().await;
    let hook = stored.last().unwrap();
    assert_eq!(hook.subject, format!("intake.events.{hook_ws}.{hook_conn}"));
    assert_eq!(hook.envelope["kind"], "webhook");
    assert_eq!(
        hook.message_id.as_deref(),
        hook.envelope["messageId"].as_str()
    );
    assert!(app.events().is_empty(), "nothing in the local log");
    let ready = send(app.admin.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.json()["sink"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_intakes_window_off_nats_drops_a_retry_by_its_msg_id() {
    let nats = Nats::single().await;
    let on_nats = on_nats(&nats);
    let app = TestApp::start_with(|c| {
        on_nats(c);
        c.dedup.window_secs = 0;
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "one", "messageId": "n1"},
        {"type": "track", "userId": "u", "event": "two", "messageId": "n2"}
    ]});
    assert_eq!(
        app.post_json("/v1/batch", &key, &body).await.json(),
        json!({"success": true})
    );
    let retried = app.post_json("/v1/batch", &key, &body).await;
    assert_eq!(retried.json(), json!({"success": true, "duplicates": 2}));
    assert_eq!(nats.messages().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_does_not_take_intakes_subjects_stops_the_start() {
    let nats = Nats::single().await;
    let js = nats.jetstream().await;
    js.create_stream(StreamConfig {
        name: STREAM.into(),
        subjects: vec!["other.>".into()],
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    on_nats(&nats)(&mut config);
    let error = intake::app::start(config.validate().unwrap())
        .await
        .err()
        .expect("the start fails");
    let text = format!("{error:#}");
    assert!(text.contains("sink.nats_stream"), "{text}");
    assert!(text.contains("intake.events.>"), "{text}");

    // A stream whose subjects cover intake's is used as it is.
    js.delete_stream(STREAM).await.unwrap();
    js.create_stream(StreamConfig {
        name: STREAM.into(),
        subjects: vec!["intake.>".into()],
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let app = TestApp::start_with(on_nats(&nats)).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = json!({"userId": "u", "event": "e"});
    assert_eq!(app.post_json("/v1/track", &key, &body).await.status, 200);
    let mut stream = js.get_stream(STREAM).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 1);
    assert_eq!(info.config.storage, StorageType::Memory, "left as it was");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_url_are_used_and_never_logged() {
    let password = "Pw-5f3a9c";
    let nats = Nats::single_with_password("intake", password).await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &node_env(&nats, "1"));
    let (_, _, key) = node.admin.sdk_key().await;
    let auth = crate::support::basic(&key);
    let body = json!({"userId": "u", "event": "e"}).to_string();
    let reply = send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("authorization", &auth)],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(ready_sink(node.admin.addr).await.as_deref(), Some("ok"));
    assert_eq!(
        nats.messages().await.len(),
        1,
        "published with the URL's credentials"
    );
    let log = node.log.lock().unwrap().join("\n");
    assert!(!log.contains(password), "{log}");
}

/// The value of an unlabelled metric of a node.
pub async fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let text = send(admin, "GET", "/metrics", &[], "").await;
    String::from_utf8_lossy(&text.body)
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
}

/// The `sink` field of a node's `/readyz` (None unless 200).
pub async fn ready_sink(admin: SocketAddr) -> Option<String> {
    let reply = send(admin, "GET", "/readyz", &[], "").await;
    (reply.status == 200).then(|| reply.json()["sink"].as_str().unwrap_or("").to_string())
}

fn node_env(nats: &Nats, replicas: &str) -> Vec<(&'static str, String)> {
    vec![
        ("INTAKE_SINK__BACKEND", "nats".into()),
        ("INTAKE_SINK__NATS_URL", nats.url()),
        ("INTAKE_SINK__NATS_REPLICAS", replicas.into()),
        ("INTAKE_RATE_LIMIT__PER_KEY_PER_SECOND", "0".into()),
    ]
}

/// Starts the binary with `env`.
pub fn start_node(dir: &std::path::Path, env: &[(&'static str, String)]) -> Binary {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Binary::start(dir, &env)
}

/// Waits until `more` further requests were acknowledged.
pub async fn progress(tally: &load::Tally, more: usize, what: &str) {
    let from = tally.acknowledged_count();
    eventually(what, Duration::from_secs(60), || {
        let n = tally.acknowledged_count();
        async move { n >= from + more }
    })
    .await;
}

/// Once the spool is replayed, stops the node (SIGTERM) and its clients, and checks
/// that every acknowledged event is in the stream exactly once; prints the counts.
pub async fn stop_and_check(
    node: Binary,
    dir: &std::path::Path,
    clients: Vec<tokio::task::JoinHandle<()>>,
    tally: &load::Tally,
    nats: &Nats,
) -> f64 {
    let admin = node.admin.addr;
    eventually(
        "the spool is replayed",
        Duration::from_secs(60),
        move || async move { ready_sink(admin).await.as_deref() == Some("ok") },
    )
    .await;
    let spooled = metric(admin, "intake_spool_envelopes_total")
        .await
        .unwrap_or(0.0);
    node.signal("TERM");
    load::finish(clients).await;
    assert_eq!(node.wait(Duration::from_secs(30)), Some(0));
    let left = std::fs::read_dir(dir.join("spool"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "spool files left after a clean stop");
    let acknowledged = tally.acknowledged();
    let stored = nats.messages().await;
    let repeated = load::assert_all_counted(&acknowledged, &count_by_message_id(&stored));
    assert_eq!(repeated, 0, "events stored more than once");
    let refused = tally.refused.lock().unwrap().clone();
    println!(
        "acknowledged {}, in stream {}, spooled {spooled}, refused {} {refused:?}",
        acknowledged.len(),
        stored.len(),
        refused.len()
    );
    spooled
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nats_down_requests_spool_and_a_restart_replays_them_all_once() {
    let mut nats = Nats::single().await;
    // NATS is down from the start: intake starts anyway, spooling.
    nats.servers[0].kill();
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &node_env(&nats, "1"));
    let (_, _, key) = node.admin.sdk_key().await;
    let (tally, clients) = load::start(node.ingest, &key, 4, 1_000_000, "d");
    progress(&tally, 200, "requests are acknowledged while NATS is down").await;
    assert_eq!(
        ready_sink(node.admin.addr).await.as_deref(),
        Some("spooling")
    );
    assert_eq!(
        metric(node.admin.addr, "intake_sink_state").await,
        Some(1.0)
    );
    assert!(metric(node.admin.addr, "intake_spool_depth").await.unwrap() > 0.0);

    nats.servers[0].start();
    nats.wait_for_jetstream().await;
    let admin = node.admin.addr;
    eventually(
        "the spool is replayed",
        Duration::from_secs(30),
        move || async move { ready_sink(admin).await.as_deref() == Some("ok") },
    )
    .await;
    progress(&tally, 100, "direct writes go on").await;
    let spooled = stop_and_check(node, dir.path(), clients, &tally, &nats).await;
    assert!(spooled >= 200.0);
}
