//! The admin listener against misbehaving clients and a failing disk (issue 10, admin
//! side): header and idle timeouts, the connection cap, the body limit with the JSON
//! error, the bootstrap key after a lock-out, the key file and database modes, and a
//! full disk answered with 503.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{eventually, send, TestApp, API_KEY};

/// Reads until the server closes the connection; false if it stays open `deadline`.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(deadline, read_to_end).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_admin_connections_are_closed() {
    let app = TestApp::start_with(|c| c.ingest.header_read_timeout_secs = 1).await;
    // Trickling a request head.
    let mut trickle = TcpStream::connect(app.admin.addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Connecting and sending nothing.
    let mut silent = TcpStream::connect(app.admin.addr).await.unwrap();
    // Idle after a complete request on a kept-alive connection.
    let mut idle = TcpStream::connect(app.admin.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (what, stream) in [
        ("trickling", &mut trickle),
        ("silent", &mut silent),
        ("idle", &mut idle),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(20)).await,
            "{what} connection kept open"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_caps_its_connections() {
    let app = TestApp::start_with(|c| c.admin.max_connections = 2).await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(app.admin.addr).await.unwrap(),
        TcpStream::connect(app.admin.addr).await.unwrap(),
    ];
    // Both slots are taken: a third client is not served...
    let mut third = TcpStream::connect(app.admin.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut answer)).await;
    assert!(early.is_err(), "served past the cap");
    // ...until a slot frees.
    drop(held);
    tokio::time::timeout(Duration::from_secs(20), third.read_exact(&mut answer))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_admin_bodies_get_the_json_413() {
    let app = TestApp::start().await;
    let auth = format!("Bearer {API_KEY}");
    for size in [100 * 1024, 3 * 1024 * 1024] {
        let body = json!({"name": "x".repeat(size)}).to_string();
        let reply = send(
            app.admin.addr,
            "POST",
            "/v1/workspaces",
            &[("authorization", &auth)],
            body,
        )
        .await;
        assert!(reply.error(413, "PayloadTooLarge").contains("bytes"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_bootstrap_key_is_made_active_again_at_start_up() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let second = admin
        .create_api_key(json!({"userId": "second"}))
        .await
        .unwrap();
    let bootstrap = admin
        .api_keys("/v1/keys")
        .await
        .unwrap()
        .data
        .last()
        .unwrap()
        .id
        .clone();
    admin.delete_api_key(&bootstrap).await.unwrap();
    admin
        .workspaces()
        .await
        .unwrap_err()
        .is(401, "Unauthorized");
    // A restart with the same configured key makes it active again.
    let (dir, stopped) = app.stop(Duration::from_secs(30)).await;
    assert!(stopped.is_clean(), "{stopped:?}");
    let app = TestApp::start_in(dir, |_| {}).await;
    let admin = app.admin();
    admin.workspaces().await.unwrap();
    assert_eq!(admin.api_key(&bootstrap).await.unwrap().status, "active");
    admin.as_key(&second.key).workspaces().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_key_file_is_fresh_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap-api-key");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "untouched").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let app = TestApp::start_in(dir, |c| c.admin.bootstrap_api_key = None).await;
    let written = std::fs::symlink_metadata(&path).unwrap();
    assert!(
        written.file_type().is_file(),
        "the symlink was replaced, not followed"
    );
    assert_eq!(written.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "untouched");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    app.admin().as_key(&key).companies().await.unwrap();
    let db = std::fs::metadata(app.dir.path().join("intake.redb")).unwrap();
    assert_eq!(db.permissions().mode() & 0o777, 0o600);
    // The configured test key was not created.
    app.admin()
        .workspaces()
        .await
        .unwrap_err()
        .is(401, "Unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_admin_writes_with_503() {
    // intake runs with a file size limit (SIGXFSZ ignored, so writes past it fail with
    // EFBIG as on a full disk) just above its database's size after a first start.
    let dir = tempfile::tempdir().unwrap();
    let first = crate::support::Binary::start(dir.path(), &[]);
    first.signal("TERM");
    assert_eq!(first.wait(Duration::from_secs(30)), Some(0));
    let size = std::fs::metadata(dir.path().join("intake.redb"))
        .unwrap()
        .len();
    let node = crate::support::Binary::start_limited(dir.path(), size + 64 * 1024);
    let admin = node.admin;
    // API keys with full allow-lists: about 4 KB each, so the database must grow.
    let ips: Vec<String> = (0..100)
        .map(|n| format!("2001:db8:{n:x}:ffff:ffff:ffff:ffff:0/112"))
        .collect();
    let body =
        json!({"userId": "u".repeat(200), "description": "d".repeat(200), "whitelistedIPs": ips});
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..5_000 {
        let reply = admin.request("POST", "/v1/keys", Some(body.clone())).await;
        *answers.entry(reply.status).or_insert(0) += 1;
        if reply.status == 503 {
            let message = reply.error(503, "ServiceUnavailable");
            assert!(
                !message.contains("os error") && !message.contains("large"),
                "{message}"
            );
            assert!(reply.header("retry-after").is_some());
            break;
        }
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    assert!(answers.contains_key(&503), "{answers:?}");
    let addr = node.admin.addr;
    eventually(
        "reads still work",
        Duration::from_secs(5),
        move || async move { send(addr, "GET", "/healthz", &[], "").await.status == 200 },
    )
    .await;
}
