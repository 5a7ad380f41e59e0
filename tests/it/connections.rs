//! How long a connection may hold its slot (issue: a public write key must not let a
//! sender exhaust the gateway): answers nobody reads, idle HTTP/2 connections that
//! answer pings, and connections past their maximum age.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{send, TestApp};

/// An HTTP/2 (prior knowledge) client connection that answers the server's pings but
/// opens no stream; the task ends when the server closes the connection.
async fn idle_h2_connection(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let stream = TcpStream::connect(app.ingest).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(async move {
        let _keep = sender;
        let _ = connection.await;
    })
}

/// A fresh HTTP/1 request answers within `deadline` (it waits in the backlog while every
/// slot is held).
async fn served_within(app: &TestApp, deadline: Duration) -> bool {
    tokio::time::timeout(deadline, send(app.ingest, "OPTIONS", "/v1/track", &[], ""))
        .await
        .is_ok_and(|reply| reply.status == 204)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_http2_connections_are_sent_away_and_free_their_slots() {
    let app = TestApp::start_with(|c| {
        c.ingest.max_connections = 5;
        c.ingest.idle_timeout_secs = 1;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(idle_h2_connection(&app).await);
    }
    assert!(
        served_within(&app, Duration::from_secs(20)).await,
        "a fresh client was locked out by idle HTTP/2 connections"
    );
    for connection in idle {
        tokio::time::timeout(Duration::from_secs(20), connection)
            .await
            .expect("the server closed every idle HTTP/2 connection")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_its_answers_loses_its_slot() {
    let app = TestApp::start_with(|c| {
        c.ingest.max_connections = 1;
        c.ingest.send_timeout_secs = 1;
    })
    .await;
    // A small receive window, and requests pipelined without ever reading an answer:
    // the server's writes stall once the socket buffers are full.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.ingest).await.unwrap();
    let (_reader, mut writer) = stream.into_split();
    let flood = tokio::spawn(async move {
        let request =
            b"POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".repeat(64);
        while writer.write_all(&request).await.is_ok() {}
    });
    assert!(
        served_within(&app, Duration::from_secs(30)).await,
        "a client that reads nothing kept the only slot"
    );
    flood.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_their_maximum_age_are_closed() {
    let app = TestApp::start_with(|c| c.ingest.max_connection_age_secs = 1).await;
    // HTTP/1: requests on one keep-alive connection until the server closes it.
    let mut stream = TcpStream::connect(app.ingest).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            let request = b"OPTIONS /v1/track HTTP/1.1\r\nHost: x\r\n\r\n";
            if stream.write_all(request).await.is_err() {
                return;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "an HTTP/1 connection outlived its maximum age"
    );
    // HTTP/2: a connection in use is sent GOAWAY too.
    let stream = TcpStream::connect(app.ingest).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::options(format!("http://{}/v1/track", app.ingest))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 204);
    tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("an HTTP/2 connection outlived its maximum age")
        .unwrap()
        .unwrap();
}
