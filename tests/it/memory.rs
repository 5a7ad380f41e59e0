//! Memory stays bounded under answer amplification (issue 10 point 1): many clients
//! send tiny gzip bodies that once produced 20 MB answers, and never read what comes
//! back. The gateway runs as its own process, so its resident memory is its own.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{basic, eventually, send, Binary};

/// Clients, each sending one request and never reading the answer.
const CLIENTS: usize = 60;
/// The peak resident memory the gateway may reach meanwhile (it took 2.6 GB before
/// answers were bounded and unread ones timed out).
const PEAK_RSS_LIMIT_KIB: u64 = 256 * 1024;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One valid event followed by `zeros` entries `0`, gzipped.
fn amplification_body(zeros: usize) -> Vec<u8> {
    let mut body = String::from(r#"{"batch":[{"type":"track","userId":"u","event":"real"}"#);
    body.push_str(&",0".repeat(zeros));
    body.push_str("]}");
    gzip(body.as_bytes())
}

/// A kernel figure of the process (`VmHWM`: peak resident set), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Batch requests answered so far, from the gateway's own metrics.
async fn batch_answers(node: &Binary) -> f64 {
    let metrics = send(node.admin.addr, "GET", "/metrics", &[], "").await;
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .filter(|l| l.starts_with("intake_http_requests_total{route=\"batch\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn amplification_with_unread_answers_keeps_memory_and_slots_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = Binary::start(
        dir.path(),
        &[
            ("INTAKE_INGEST__MAX_CONNECTIONS", "50"),
            ("INTAKE_INGEST__HEADER_READ_TIMEOUT_SECS", "2"),
            ("INTAKE_INGEST__SEND_TIMEOUT_SECS", "2"),
            ("INTAKE_RATE_LIMIT__PER_KEY_PER_SECOND", "0"),
            ("INTAKE_RATE_LIMIT__PER_KEY_EVENTS_PER_SECOND", "0"),
        ],
    );
    let (_, _, key) = node.admin.sdk_key().await;
    let auth = basic(&key);
    let before = status_kib(node.child.id(), "VmRSS:");
    // Half the clients send the issue's body (~255 000 entries in ~600 bytes), half a
    // batch just under the events cap whose 2 499 rejects once all went into the answer.
    let bodies = [amplification_body(254_999), amplification_body(2_499)];
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let body = &bodies[n % 2];
        let head = format!(
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(node.ingest).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        clients.push(stream); // kept open, never read
    }
    let node = &node;
    eventually(
        "every amplification request is answered",
        Duration::from_secs(60),
        || async move { batch_answers(node).await >= CLIENTS as f64 },
    )
    .await;
    let peak = status_kib(node.child.id(), "VmHWM:");
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "peak RSS {peak} KiB (at start {before} KiB) over {PEAK_RSS_LIMIT_KIB} KiB"
    );
    // The slots held by clients that read nothing come back: a fresh client is served.
    let fresh = tokio::time::timeout(
        Duration::from_secs(30),
        send(node.ingest, "OPTIONS", "/v1/batch", &[], ""),
    )
    .await
    .expect("a fresh client is served while the silent clients stay connected");
    assert_eq!(fresh.status, 204);
    drop(clients);
}
