//! The binary: CLI, configuration errors, restarts, SIGTERM and kill -9.

use std::process::Command;
use std::time::Duration;

use crate::load;
use crate::support::{eventually, logged_events, send, Binary};

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
    let (tally, clients) = load::start(node.ingest, &key, 8, 1000, "k");
    // Let the clients get going, then kill the node mid-load.
    eventually("some events acknowledged", Duration::from_secs(30), || {
        let n = tally.acknowledged_count();
        async move { n >= 200 }
    })
    .await;
    node.signal("KILL");
    load::finish(clients).await;
    drop(node);
    load::assert_none_lost(&tally.acknowledged(), &logged_events(dir.path()));
    // And the node starts again on the same data.
    let node = Binary::start(dir.path(), &[]);
    let reply = send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("x-write-key", key.as_str())],
        r#"{"userId":"u","event":"after"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(dir.path(), &[]);
    let (_, _, key) = node.admin.sdk_key().await;
    let (tally, clients) = load::start(node.ingest, &key, 4, 100_000, "t");
    eventually("some events acknowledged", Duration::from_secs(30), || {
        let n = tally.acknowledged_count();
        async move { n >= 100 }
    })
    .await;
    node.signal("TERM");
    load::finish(clients).await;
    assert_eq!(node.wait(Duration::from_secs(30)), Some(0));
    assert_eq!(
        *tally.refused.lock().unwrap(),
        Vec::<u16>::new(),
        "no request was refused while draining"
    );
    load::assert_none_lost(&tally.acknowledged(), &logged_events(dir.path()));
}

#[test]
fn passwords_in_urls_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let redis_url = format!("redis://:hunter2secret@127.0.0.1:{port}/0");
    let nats_url = "nats://app:hunter2secret@127.0.0.1:4222";
    let with_urls = |command: &mut Command| {
        command
            .current_dir(dir.path())
            .env("INTAKE_STORE__DATA_DIR", dir.path())
            .env("INTAKE_STORE__REDIS_URL", &redis_url)
            .env("INTAKE_SINK__NATS_URL", nats_url)
            .env("INTAKE_INGEST__LISTEN", "127.0.0.1:0")
            .env("INTAKE_ADMIN__LISTEN", "127.0.0.1:0");
    };
    let mut check = intake();
    with_urls(&mut check);
    let out = check.arg("check-config").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{printed}"
    );
    assert!(
        printed.contains("nats://app:***@127.0.0.1:4222"),
        "{printed}"
    );
    // A store that cannot be reached: the start-up error and every log line.
    let mut serve = intake();
    with_urls(&mut serve);
    let out = serve
        .env("INTAKE_STORE__BACKEND", "redis")
        .env("RUST_LOG", "debug")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("store.redis_url"), "{stderr}");
    for text in [printed.as_str(), &stderr] {
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}
