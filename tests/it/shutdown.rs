//! The one shutdown path says truthfully what it did: a clean stop reports everything
//! finished; a request still running past the grace period is reported, not hidden.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_node_stops_cleanly() {
    let app = TestApp::start().await;
    app.admin().workspace().await;
    let (_, stopped) = app.stop(Duration::from_secs(30)).await;
    assert!(stopped.is_clean(), "{stopped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_left_running_is_reported() {
    let app = TestApp::start().await;
    let (_, _, key) = app.admin.sdk_key().await;
    // A request whose body never comes: the handler waits for it (the server's
    // `100 Continue` proves the handler is reading the body).
    let mut slow = TcpStream::connect(app.ingest).await.unwrap();
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Write-Key: {key}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut continued = [0u8; 25];
    slow.read_exact(&mut continued).await.unwrap();
    assert!(continued.starts_with(b"HTTP/1.1 100 Continue"));
    let (_, stopped) = app.stop(Duration::from_secs(1)).await;
    assert!(!stopped.drained, "{stopped:?}");
    assert!(!stopped.is_clean());
    let unfinished = stopped.unfinished.expect("a task was left");
    assert!(
        unfinished.named.iter().any(|n| n == "ingest listener"),
        "{unfinished:?}"
    );
}
