//! The NATS sink on a 3-server JetStream cluster (stream with 3 replicas): under load
//! from several clients, one server is killed with SIGKILL, then the stream's leader;
//! both are restarted. Every event that got a 200 must be in the stream exactly once.

use std::time::Duration;

use crate::load;
use crate::nats::{assert_each_once, assert_no_spool_left, metric, ready_sink, start_node};
use crate::nats_server::{count_by_message_id, Nats};
use crate::support::eventually;

/// Waits until `more` further requests were acknowledged.
async fn progress(tally: &load::Tally, more: usize, what: &str) {
    let from = tally.acknowledged_count();
    eventually(what, Duration::from_secs(60), || {
        let n = tally.acknowledged_count();
        async move { n >= from + more }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_server_then_the_leader_loses_and_repeats_no_acknowledged_event() {
    let mut nats = Nats::cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("INTAKE_SINK__BACKEND", "nats".to_string()),
        ("INTAKE_SINK__NATS_URL", nats.url()),
        ("INTAKE_SINK__NATS_REPLICAS", "3".to_string()),
        ("INTAKE_RATE_LIMIT__PER_KEY_PER_SECOND", "0".to_string()),
    ];
    let node = start_node(dir.path(), &env);
    let (_, _, key) = node.admin.sdk_key().await;
    let (tally, clients) = load::start(node.ingest, &key, 8, 1_000_000, "c");
    progress(&tally, 300, "the load is under way").await;

    let leader = nats.stream_leader().await;
    let follower = nats
        .servers
        .iter()
        .map(|s| s.name.clone())
        .find(|name| *name != leader)
        .unwrap();
    nats.server(&follower).kill();
    progress(&tally, 300, "events are acknowledged with a follower down").await;
    nats.server(&follower).start();
    nats.wait_for_jetstream().await;

    let leader = nats.stream_leader().await;
    nats.server(&leader).kill();
    progress(&tally, 300, "events are acknowledged after the leader died").await;
    nats.server(&leader).start();
    nats.wait_for_jetstream().await;
    progress(
        &tally,
        300,
        "events are acknowledged with every server back",
    )
    .await;

    let admin = node.admin.addr;
    eventually(
        "the spool is replayed",
        Duration::from_secs(60),
        move || async move { ready_sink(admin).await.as_deref() == Some("ok") },
    )
    .await;
    let spooled = metric(admin, "intake_spool_envelopes_total")
        .await
        .unwrap_or(0.0);
    node.signal("TERM");
    load::finish(clients).await;
    assert_eq!(node.wait(Duration::from_secs(30)), Some(0));
    assert_no_spool_left(dir.path());

    let acknowledged = tally.acknowledged();
    let stored = nats.messages().await;
    let counts = count_by_message_id(&stored);
    assert_each_once(&acknowledged, &counts);
    let refused = tally.refused.lock().unwrap().clone();
    println!(
        "acknowledged {}, in stream {}, spooled {spooled}, refused {} {refused:?}",
        acknowledged.len(),
        stored.len(),
        refused.len()
    );
}
