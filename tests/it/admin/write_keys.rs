//! The event write keys seed: 1 to 20 keys, oldest first, every seed error, and the
//! rules under concurrent requests.

use std::sync::Arc;

use super::{start, Store};
use crate::support::TestApp;

on_both_stores!(
    event_write_keys_follow_the_seed_rules,
    the_key_cap_and_last_key_rule_hold_under_concurrency,
);

async fn event_write_keys_follow_the_seed_rules(store: Store) {
    let node = start(store).await;
    seed_rules(&node).await;
}

/// Every rule and error of the event write keys seed.
async fn seed_rules(app: &TestApp) {
    let admin = app.admin();
    let ws = admin.workspace().await;
    let (conn, first) = admin.connection(ws, "sdk").await;
    let first = first.unwrap();
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
    let admin = admin.in_workspace(ws);

    // Up to 20 keys, oldest first; the 21st is refused.
    let mut keys = vec![first.clone()];
    for _ in 1..20 {
        keys.push(admin.add_write_key(conn).await.unwrap());
    }
    let error = admin.add_write_key(conn).await.unwrap_err();
    assert_eq!(
        error.is(422, "TooManyEventWriteKeys"),
        "connection already has 20 keys"
    );
    assert_eq!(admin.write_keys(conn).await.unwrap(), keys);

    // Deleting: unknown key 404, then down to one key, which cannot go.
    let error = admin
        .delete_write_key(conn, &"z".repeat(32))
        .await
        .unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "key does not exist");
    for key in &keys[1..] {
        admin.delete_write_key(conn, key).await.unwrap();
    }
    let error = admin.delete_write_key(conn, &first).await.unwrap_err();
    assert_eq!(
        error.is(422, "SingleEventWriteKey"),
        "key cannot be deleted as it is the connection's only key"
    );
    assert_eq!(
        admin.write_keys(conn).await.unwrap(),
        std::slice::from_ref(&first)
    );

    // Workspace and connection errors on every route.
    let path = format!("/v1/connections/{conn}/event-write-keys");
    for (method, route) in [
        ("POST", path.clone()),
        ("GET", path.clone()),
        ("DELETE", format!("{path}/{first}")),
    ] {
        for ws in [Some(424242), None] {
            let reply = app.admin.call(method, &route, ws, None).await;
            assert_eq!(
                reply.error(404, "NotFound"),
                "workspace does not exist",
                "{method}"
            );
        }
        let missing = route.replace(&conn.to_string(), "12345");
        let reply = admin.request(method, &missing, None).await;
        assert_eq!(
            reply.error(404, "NotFound"),
            "connection does not exist",
            "{method}"
        );
    }
}

async fn the_key_cap_and_last_key_rule_hold_under_concurrency(store: Store) {
    let app = start(store).await;
    let ws = app.admin().workspace().await;
    let (conn, _) = app.admin().connection(ws, "sdk").await;
    let admin = Arc::new(app.admin().in_workspace(ws));
    let adds: Vec<_> = (0..50)
        .map(|_| {
            let admin = admin.clone();
            tokio::spawn(async move { admin.add_write_key(conn).await.map(|_| ()) })
        })
        .collect();
    let mut created = 0;
    for add in adds {
        match add.await.unwrap() {
            Ok(()) => created += 1,
            Err(error) => {
                error.is(422, "TooManyEventWriteKeys");
            }
        }
    }
    assert_eq!(created, 19);
    let keys = admin.write_keys(conn).await.unwrap();
    assert_eq!(keys.len(), 20);
    let deletes: Vec<_> = keys
        .into_iter()
        .map(|key| {
            let admin = admin.clone();
            tokio::spawn(async move { admin.delete_write_key(conn, &key).await })
        })
        .collect();
    let mut deleted = 0;
    for delete in deletes {
        match delete.await.unwrap() {
            Ok(()) => deleted += 1,
            Err(error) => {
                error.is(422, "SingleEventWriteKey");
            }
        }
    }
    assert_eq!(deleted, 19);
    assert_eq!(admin.write_keys(conn).await.unwrap().len(), 1);
}
