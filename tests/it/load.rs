//! Load for crash tests: concurrent clients sending uniquely identified events, and
//! the check that every acknowledged event was stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::support::basic;

/// What a load run saw.
#[derive(Default)]
pub struct Tally {
    /// messageIds answered 200, shared while the load runs.
    pub acknowledged: Arc<Mutex<Vec<String>>>,
    /// Other statuses seen.
    pub refused: Arc<Mutex<Vec<u16>>>,
}

impl Tally {
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    pub fn acknowledged(&self) -> Vec<String> {
        self.acknowledged.lock().unwrap().clone()
    }
}

/// Starts `clients` clients, each sending up to `per_client` track events one by one;
/// a client stops at its first broken connection (the node went away).
pub fn start(
    ingest: SocketAddr,
    key: &str,
    clients: usize,
    per_client: usize,
    tag: &str,
) -> (Tally, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Tally::default();
    let auth = basic(key);
    let tasks = (0..clients)
        .map(|client| {
            let (auth, tag) = (auth.clone(), tag.to_string());
            let (acknowledged, refused) = (tally.acknowledged.clone(), tally.refused.clone());
            tokio::spawn(async move {
                for n in 0..per_client {
                    let id = format!("{tag}-{client}-{n}");
                    let body = json!({"userId": "u", "event": "e", "messageId": id}).to_string();
                    let sent = tokio::time::timeout(
                        Duration::from_secs(10),
                        try_send(ingest, &auth, body),
                    )
                    .await;
                    match sent {
                        Ok(Some(200)) => acknowledged.lock().unwrap().push(id),
                        Ok(Some(status)) => refused.lock().unwrap().push(status),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    (tally, tasks)
}

/// Waits for every client.
pub async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.unwrap();
    }
}

/// Sends one track request on a fresh connection; None if the connection broke.
pub async fn try_send(addr: SocketAddr, auth: &str, body: String) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(connection);
    let request = http::Request::post("/v1/track")
        .header("host", addr.to_string())
        .header("authorization", auth)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// How often each messageId occurs among stored envelopes.
pub fn count_ids(envelopes: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for envelope in envelopes {
        let id = envelope["event"]["messageId"].as_str().unwrap().to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Asserts that every acknowledged event is stored; returns the duplicates.
pub fn assert_none_lost(acknowledged: &[String], stored: &[Value]) -> usize {
    assert_all_counted(acknowledged, &count_ids(stored))
}

/// Asserts that every acknowledged id has a count; returns the extra copies.
pub fn assert_all_counted(acknowledged: &[String], counts: &HashMap<String, usize>) -> usize {
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    counts.values().filter(|n| **n > 1).map(|n| n - 1).sum()
}
