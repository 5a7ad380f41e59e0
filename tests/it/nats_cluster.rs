//! The NATS sink on a 3-server JetStream cluster (stream with 3 replicas): under load
//! from several clients, one server is killed with SIGKILL, then the stream's leader;
//! both are restarted. Every event that got a 200 must be in the stream exactly once.

use crate::load;
use crate::nats::{progress, start_node, stop_and_check};
use crate::nats_server::Nats;

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

    stop_and_check(node, dir.path(), clients, &tally, &nats).await;
}
