//! Request bodies at the ingest listener: size caps, gzip and deflate, decompression
//! bombs, unsupported encodings (SPEC §2, 413 and 415).

use std::io::Write;
use std::time::Duration;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::{json, Value};

use crate::support::{basic, Reply, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_and_events_get_413() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    // A 600 KB body.
    let events: Vec<Value> = (0..300)
        .map(|i| json!({"type": "track", "userId": "u", "event": format!("e{i}"), "properties": {"pad": "x".repeat(2000)}}))
        .collect();
    let body = json!({ "batch": events }).to_string();
    assert!(body.len() > 600_000);
    let reply = app
        .post("/v1/batch", &[("authorization", &auth)], body)
        .await;
    reply.error(413, "PayloadTooLarge");
    // One event over 32 KiB on a single-event route.
    let big = json!({"userId": "u", "event": "e", "properties": {"pad": "x".repeat(33 * 1024)}});
    let reply = app.post_json("/v1/track", &key, &big).await;
    reply.error(413, "PayloadTooLarge");
    assert!(app.events().is_empty());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_and_deflate_bodies_are_accepted() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let body = json!({"batch": [{"type": "track", "userId": "u", "event": "zipped"}]}).to_string();
    let reply = post_gzipped(&app, &auth, gzip(body.as_bytes())).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(body.as_bytes()).unwrap();
    let reply = app
        .post(
            "/v1/batch",
            &[("authorization", &auth), ("content-encoding", "deflate")],
            z.finish().unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(app.events().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_bombs_are_cut_off_with_413() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    // 64 MiB of zeros in about 64 KB: inflating it whole would take 64 MiB.
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let reply = post_gzipped(&app, &auth, bomb).await;
    reply.error(413, "PayloadTooLarge");
    // Corrupt gzip is a 400.
    let reply = post_gzipped(&app, &auth, "not gzip").await;
    reply.error(400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_bomb_is_refused_quickly() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    // About 1 MB of gzip that would inflate to 1 GiB: the same deflate block repeated.
    let bomb = gigabyte_bomb();
    let started = std::time::Instant::now();
    let reply = post_gzipped(&app, &auth, bomb).await;
    reply.error(413, "PayloadTooLarge");
    // Not a timing assertion on speed, only that it did not inflate for minutes.
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A gzip stream whose deflate body is one block of 1 MiB of zeros compressed after a
/// full flush, repeated 1024 times: each repetition is independent, so the stream is
/// valid up to its (deliberately wrong) trailer and inflates to 1 GiB.
fn gigabyte_bomb() -> Vec<u8> {
    use flate2::{Compress, FlushCompress};
    let chunk = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Compression::best(), false);
    let mut block = |input: &[u8]| {
        let mut out = Vec::with_capacity(4096);
        compress
            .compress_vec(input, &mut out, FlushCompress::Full)
            .unwrap();
        out
    };
    let first = block(&chunk);
    let second = block(&chunk);
    let third = block(&chunk);
    assert_eq!(second, third, "flushed blocks repeat");
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bomb.extend_from_slice(&first);
    for _ in 1..1024 {
        bomb.extend_from_slice(&second);
    }
    bomb
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_encoding_gets_415() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    let auth = basic(&key);
    let reply = app
        .post(
            "/v1/track",
            &[("authorization", &auth), ("content-encoding", "br")],
            "xx",
        )
        .await;
    reply.error(415, "UnsupportedMediaType");
}

/// POSTs `body` to `/v1/batch` as gzip, with Basic auth `auth`.
async fn post_gzipped(app: &TestApp, auth: &str, body: impl Into<bytes::Bytes>) -> Reply {
    app.post(
        "/v1/batch",
        &[("authorization", auth), ("content-encoding", "gzip")],
        body,
    )
    .await
}
