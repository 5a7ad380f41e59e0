//! Real sink faults: a full disk under the event log (a small tmpfs mounted by the
//! test; CI runs as root), a 503 whose cause is an OS error, and a Redis that hangs
//! while requests keep coming.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use intake::config::SinkBackend;
use serde_json::json;

use crate::load;
use crate::redis_server::RedisServer;
use crate::support::{eventually, logged_events, send, Binary, TestApp};

/// A tmpfs of `size` mounted on `path` for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs the tests as root)"
        );
        Self(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `path` with one ballast file.
fn fill(path: &Path) {
    use std::io::Write;
    let mut ballast = std::fs::File::create(path).unwrap();
    let chunk = vec![b'x'; 4096];
    while ballast.write_all(&chunk).is_ok() {}
    let _ = ballast.sync_all();
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".ndjson")
        })
        .count()
}

async fn track(node: &Binary, key: &str, user: &str) -> u16 {
    let auth = crate::support::basic(key);
    let body = json!({"userId": user, "event": "e"}).to_string();
    send(
        node.ingest,
        "POST",
        "/v1/track",
        &[("authorization", &auth)],
        body,
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_leaves_no_empty_segments_and_logs_few_errors() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    let _tmpfs = Tmpfs::mount(&events, "256k");
    let node = Binary::start(dir.path(), &[]);
    let (_, _, key) = node.admin.sdk_key().await;
    assert_eq!(track(&node, &key, "before").await, 200);
    let ballast = events.join("ballast");
    fill(&ballast);

    let started = Instant::now();
    let attempts = 300;
    let mut accepted = vec!["before".to_string()];
    let mut refused = Vec::new();
    for i in 0..attempts {
        let user = format!("full-{i}");
        match track(&node, &key, &user).await {
            // The segment's last page may still take a few small events.
            200 => accepted.push(user),
            503 => refused.push(user),
            status => panic!("{status}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        refused.len() >= attempts / 2,
        "the disk is full: {} refused",
        refused.len()
    );
    assert_eq!(
        segment_files(&events),
        1,
        "failed writes reuse their segment instead of leaving new empty ones"
    );
    let errors = node
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"level\":\"ERROR\"") && l.contains("event log write failed"))
        .count();
    // One line per 10 s while the failures go on, however many requests fail.
    let allowed = elapsed.as_secs() as usize / 10 + 2;
    assert!(
        (1..=allowed).contains(&errors),
        "{errors} error lines for {} failed writes in {elapsed:?}",
        refused.len()
    );

    std::fs::remove_file(&ballast).unwrap();
    let (node_ref, key_ref) = (&node, &key);
    eventually(
        "writes succeed once space is back",
        Duration::from_secs(10),
        move || async move { track(node_ref, key_ref, "after").await == 200 },
    )
    .await;
    drop(node);
    // Every line is a whole envelope (logged_events parses each), every accepted
    // event is there, and nothing of a refused one.
    let users: Vec<String> = logged_events(dir.path())
        .iter()
        .map(|e| e["event"]["userId"].as_str().unwrap().to_string())
        .collect();
    let before_space_came_back: Vec<&String> = users.iter().filter(|u| *u != "after").collect();
    assert_eq!(before_space_came_back, accepted.iter().collect::<Vec<_>>());
    assert!(refused.iter().all(|u| !users.contains(u)));
}

/// Asserts a 503 whose body is a fixed sentence, with no trace of the OS error.
fn assert_fixed_503(reply: &crate::support::Reply) {
    let message = reply.error(503, "ServiceUnavailable");
    let body = String::from_utf8_lossy(&reply.body).to_lowercase();
    for leak in [
        "os error",
        "directory",
        "no such",
        "errno",
        "spool",
        "redis",
    ] {
        assert!(!body.contains(leak), "the 503 body leaks `{leak}`: {body}");
    }
    assert_eq!(
        message,
        "the events could not be stored right now; retry later"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_never_carries_the_os_error() {
    // The log sink: its directory swapped for a file (segments of one byte roll on
    // every write, so the next write meets it).
    let app = TestApp::start_with(|c| c.sink.segment_bytes = 1).await;
    let (_, _, key) = app.admin.sdk_key().await;
    let body = json!({"userId": "u", "event": "e"});
    assert_eq!(app.post_json("/v1/track", &key, &body).await.status, 200);
    let events = app.dir.path().join("events");
    let aside = app.dir.path().join("events-aside");
    std::fs::rename(&events, &aside).unwrap();
    std::fs::write(&events, b"not a directory").unwrap();
    assert_fixed_503(&app.post_json("/v1/track", &key, &body).await);
    std::fs::remove_file(&events).unwrap();
    std::fs::rename(&aside, &events).unwrap();
    let app_ref = (&app, &key, &body);
    eventually(
        "the log recovers",
        Duration::from_secs(10),
        move || async move {
            app_ref
                .0
                .post_json("/v1/track", app_ref.1, app_ref.2)
                .await
                .status
                == 200
        },
    )
    .await;

    // The Redis sink with Redis down and its spool directory unusable.
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::start_with(move |c| {
        c.sink.backend = SinkBackend::Redis;
        c.store.redis_url = url;
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    redis.kill();
    let spool = app.dir.path().join("spool");
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, b"not a directory").unwrap();
    assert_fixed_503(&app.post_json("/v1/track", &key, &body).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_acknowledged_at_disk_speed_while_redis_hangs() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::start_with(move |c| {
        c.sink.backend = SinkBackend::Redis;
        c.store.redis_url = url;
        c.rate_limit.per_key_per_second = 0;
    })
    .await;
    let (_, _, key) = app.admin.sdk_key().await;
    // Redis stops answering (SIGSTOP): connections stay open, commands time out.
    redis.pause(true);
    let (clients, per_client) = (16, 100);
    let (tally, tasks) = load::start(app.ingest, &key, clients, per_client, "h");
    // Before the probe moved off the writer, 16 clients got ~6 requests/s with Redis
    // down: 1 600 requests took minutes. At disk speed they take seconds.
    eventually(
        "every request acknowledged from the spool",
        Duration::from_secs(60),
        || {
            let n = tally.acknowledged_count();
            async move { n >= clients * per_client }
        },
    )
    .await;
    load::finish(tasks).await;
    assert!(tally.refused.lock().unwrap().is_empty());
    let ready = send(app.admin.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.json()["sink"], "spooling");

    redis.pause(false);
    let spool = app.dir.path().join("spool");
    eventually("the spool is replayed", Duration::from_secs(30), || {
        let spool = spool.clone();
        async move {
            std::fs::read_dir(&spool)
                .map(|d| d.count() == 0)
                .unwrap_or(false)
        }
    })
    .await;
    let stored = redis.stream_envelopes("intake:events").await;
    load::assert_none_lost(&tally.acknowledged(), &stored);
}
