//! Redis key sync, measured against a real redis-server started on a free port:
//! (1) full load of 1 000 000 write keys into the index: time and resident memory per
//! key; (2) propagation: time from a key's creation on node A (its 201) until node B
//! accepts it, and from its deletion until B refuses it.
//!
//! `cargo bench --bench redis_sync` (needs `redis-server` on the PATH).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use intake::config::{Config, StoreBackend};
use serde_json::{json, Value};

const KEYS: usize = 1_000_000;
const ROUNDS: usize = 50;
const API_KEY: &str = "api_BenchOperatorKey000000000000000000000000";

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &std::path::Path) -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let redis = Redis(child, port);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return redis;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server did not start");
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn fill(url: &str) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for n in chunk {
            let record = json!({"workspaceId": 1, "connectionId": n + 1, "source": "sdk", "createdAt": "2026-01-01T00:00:00.000Z"});
            pipe.cmd("HSET")
                .arg("intake:write-keys")
                .arg(format!("{n:032}"))
                .arg(record.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
}

/// A node starting on a Redis that holds `KEYS` write keys: `app::start` returns once
/// the index is loaded in full, so its duration is the load's (plus a bootstrap check).
async fn full_load(url: &str) {
    fill(url).await;
    let before = resident_bytes();
    let started = Instant::now();
    let node = node(url).await;
    let took = started.elapsed();
    let after = resident_bytes();
    node.stop().await;
    println!(
        "node start with a full load of {KEYS} keys: {:.2} s, resident memory +{:.0} MiB = {:.0} bytes per key",
        took.as_secs_f64(),
        (after - before) as f64 / 1048576.0,
        (after - before) as f64 / KEYS as f64
    );
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "x");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn node(url: &str) -> intake::app::Running {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut config = Config::default();
    config.ingest.listen = "127.0.0.1:0".into();
    config.admin.listen = "127.0.0.1:0".into();
    config.admin.bootstrap_api_key = Some(API_KEY.into());
    config.store.backend = StoreBackend::Redis;
    config.store.redis_url = url.into();
    config.store.data_dir = dir;
    intake::app::start(config.validate().unwrap())
        .await
        .unwrap()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

async fn propagation(url: &str) {
    let a = node(url).await;
    let b = node(url).await;
    let auth = format!("Bearer {API_KEY}");
    let (_, ws) = request(
        a.admin_addr,
        "POST",
        "/v1/workspaces",
        &[("authorization", &auth)],
        json!({"name": "b"}).to_string(),
    )
    .await;
    let ws = ws["id"].to_string();
    let admin = [
        ("authorization", auth.as_str()),
        ("intake-workspace", ws.as_str()),
    ];
    let (_, conn) = request(
        a.admin_addr,
        "POST",
        "/v1/connections",
        &admin,
        json!({"name": "c", "type": "sdk"}).to_string(),
    )
    .await;
    let conn = conn["id"].to_string();
    let path = format!("/v1/connections/{conn}/event-write-keys");
    let (mut created, mut deleted) = (Vec::new(), Vec::new());
    let event = json!({"userId": "u", "event": "e"}).to_string();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let (status, key) = request(a.admin_addr, "POST", &path, &admin, String::new()).await;
        assert_eq!(status, 201);
        let key = key["key"].as_str().unwrap().to_string();
        let write = [("x-write-key", key.as_str())];
        while request(b.ingest_addr, "POST", "/v1/track", &write, event.clone())
            .await
            .0
            != 200
        {}
        created.push(started.elapsed());
        let started = Instant::now();
        let (status, _) = request(
            a.admin_addr,
            "DELETE",
            &format!("{path}/{key}"),
            &admin,
            String::new(),
        )
        .await;
        assert_eq!(status, 204);
        while request(b.ingest_addr, "POST", "/v1/track", &write, event.clone())
            .await
            .0
            != 401
        {}
        deleted.push(started.elapsed());
    }
    for (what, samples) in [
        ("create on A → accepted on B", &mut created),
        ("delete on A → refused on B", &mut deleted),
    ] {
        println!(
            "{what} ({ROUNDS} rounds, includes the admin round trip): p50 {:.2} ms, p99 {:.2} ms",
            percentile(samples, 0.5).as_secs_f64() * 1e3,
            percentile(samples, 0.99).as_secs_f64() * 1e3
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let redis = start_redis(dir.path());
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        propagation(&url).await;
        full_load(&url).await;
    });
}
