//! The durable baseline of `benches/load.sh`: the bare hyper server of
//! `examples/bare_hyper.rs`, except that each request body is appended to a file and
//! the 200 is sent only after an `fdatasync` that covers it. One committer thread
//! writes everything queued since its last sync and syncs once (group commit), so this
//! is about as fast as "200 means durable" can be on this disk.
//! `durable_hyper 127.0.0.1:18082 /path/to/file`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// Bodies waiting for the next sync, and the number of the group they will be in.
struct Pending {
    buffer: Vec<u8>,
    group: u64,
}

struct Log {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The last group made durable.
    synced: watch::Sender<u64>,
}

impl Log {
    /// Appends a body; returns the group whose sync makes it durable.
    fn append(&self, body: &[u8]) -> u64 {
        let mut pending = self.pending.lock().unwrap();
        pending.buffer.extend_from_slice(body);
        pending.buffer.push(b'\n');
        self.wake.notify_one();
        pending.group
    }

    fn commit_forever(&self, mut file: std::fs::File) {
        let mut writing = Vec::new();
        loop {
            let group = {
                let mut pending = self.pending.lock().unwrap();
                while pending.buffer.is_empty() {
                    pending = self.wake.wait(pending).unwrap();
                }
                std::mem::swap(&mut pending.buffer, &mut writing);
                pending.group += 1;
                pending.group - 1
            };
            file.write_all(&writing).unwrap();
            file.sync_data().unwrap();
            writing.clear();
            self.synced.send_replace(group);
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18082".into());
    let path = args
        .next()
        .unwrap_or_else(|| "durable-baseline.ndjson".into());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open the log file");
    let log = Arc::new(Log {
        pending: Mutex::new(Pending {
            buffer: Vec::new(),
            group: 1,
        }),
        wake: Condvar::new(),
        synced: watch::channel(0).0,
    });
    let committer = log.clone();
    std::thread::spawn(move || committer.commit_forever(file));
    let listener = tokio::net::TcpListener::bind(&address).await.expect("bind");
    eprintln!(
        "durable hyper listening on {}, appending to {path}",
        listener.local_addr().unwrap()
    );
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        let _ = stream.set_nodelay(true);
        let log = log.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let log = log.clone();
                async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let group = log.append(&body);
                    let mut synced = log.synced.subscribe();
                    synced.wait_for(|done| *done >= group).await.unwrap();
                    let mut answer =
                        hyper::Response::new(Full::new(Bytes::from_static(b"{\"success\":true}")));
                    answer
                        .headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
