//! The binary: CLI, configuration errors, restarts, SIGTERM and kill -9.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::{basic, logged_events, send, Binary};

fn intake() -> Command {
    Command::new(env!("CARGO_BIN_EXE_intake"))
}

#[test]
fn check_config_prints_the_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = intake()
        .arg("check-config")
        .current_dir(dir.path())
        .env("INTAKE_INGEST__LISTEN", "127.0.0.1:18080")
        .env("INTAKE_ADMIN__BOOTSTRAP_API_KEY", crate::support::API_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:18080\""), "{text}");
    assert!(text.contains("max_request_bytes = 512000"), "{text}");
    assert!(
        !text.contains(crate::support::API_KEY),
        "the key is redacted"
    );
}

#[test]
fn bad_config_exits_non_zero_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    for (toml_text, env, setting) in [
        ("[ingest]\nlisten = \"nowhere\"\n", None, "ingest.listen"),
        (
            "[store]\nredis_url = \"http://x\"\n",
            None,
            "store.redis_url",
        ),
        ("[sink]\nbogus = 1\n", None, "sink"),
        (
            "",
            Some(("INTAKE_RATE_LIMIT__PER_KEY_BURST", "\"many\"")),
            "rate_limit.per_key_burst",
        ),
    ] {
        std::fs::write(&file, toml_text).unwrap();
        let mut command = intake();
        command.arg("--config").arg(&file).arg("serve");
        if let Some((k, v)) = env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{toml_text}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(setting), "{stderr}");
    }
}

#[test]
fn a_busy_port_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = intake()
        .current_dir(dir.path())
        .env(
            "INTAKE_INGEST__LISTEN",
            taken.local_addr().unwrap().to_string(),
        )
        .env("INTAKE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("INTAKE_STORE__DATA_DIR", dir.path())
        .env("INTAKE_ADMIN__BOOTSTRAP_API_KEY", crate::support::API_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.listen"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(dir.path(), &[]);
    let (_, _, key) = node.admin.sdk_key().await;
    node.signal("TERM");
    assert_eq!(node.wait(Duration::from_secs(30)), Some(0));
    let node = Binary::start(dir.path(), &[]);
    let reply = send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("x-write-key", key.as_str())],
        r#"{"userId":"u","event":"e"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_after_200_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(dir.path(), &[]);
    let (_, _, key) = node.admin.sdk_key().await;
    let auth = basic(&key);
    let ingest = node.ingest;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..8 {
        let (auth, acknowledged) = (auth.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..1000 {
                let id = format!("c{client}-{n}");
                let body = json!({"userId": "u", "event": "e", "messageId": id}).to_string();
                let reply =
                    tokio::time::timeout(Duration::from_secs(5), try_send(ingest, &auth, body))
                        .await;
                match reply {
                    Ok(Some(200)) => acknowledged.lock().unwrap().push(id),
                    _ => return,
                }
            }
        }));
    }
    // Let the clients get going, then kill the node mid-load.
    crate::support::eventually("some events acknowledged", Duration::from_secs(30), || {
        let n = acknowledged.lock().unwrap().len();
        async move { n >= 200 }
    })
    .await;
    node.signal("KILL");
    for t in tasks {
        t.await.unwrap();
    }
    drop(node);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored: std::collections::HashSet<String> = logged_events(dir.path())
        .iter()
        .map(|e| e["event"]["messageId"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // And the node starts again on the same data.
    let node = Binary::start(dir.path(), &[]);
    let reply = send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("authorization", auth.as_str())],
        r#"{"userId":"u","event":"after"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
}

/// Sends a request, or None if the connection broke (the node was killed).
pub async fn try_send(addr: std::net::SocketAddr, auth: &str, body: String) -> Option<u16> {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(connection);
    let request = http::Request::post("/v1/track")
        .header("host", addr.to_string())
        .header("authorization", auth)
        .body(Full::new(bytes::Bytes::from(body)))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(dir.path(), &[]);
    let (_, _, key) = node.admin.sdk_key().await;
    let auth = basic(&key);
    let ingest = node.ingest;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..4 {
        let (auth, acknowledged) = (auth.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..100_000 {
                let id = format!("c{client}-{n}");
                let body = json!({"userId": "u", "event": "e", "messageId": id}).to_string();
                match try_send(ingest, &auth, body).await {
                    Some(200) => acknowledged.lock().unwrap().push(id),
                    Some(other) => panic!("unexpected status {other} during shutdown"),
                    None => return,
                }
            }
        }));
    }
    crate::support::eventually("some events acknowledged", Duration::from_secs(30), || {
        let n = acknowledged.lock().unwrap().len();
        async move { n >= 100 }
    })
    .await;
    node.signal("TERM");
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(node.wait(Duration::from_secs(30)), Some(0));
    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored: std::collections::HashSet<String> = logged_events(dir.path())
        .iter()
        .map(|e| e["event"]["messageId"].as_str().unwrap().to_string())
        .collect();
    assert!(acknowledged.iter().all(|id| stored.contains(id)));
}
