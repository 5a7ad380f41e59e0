//! Connections in the workspace named by `Intake-Workspace`.

use serde_json::json;

use super::{start, Store};

on_both_stores!(
    connections_live_in_the_named_workspace,
    connections_without_keys_refuse_key_routes,
    deleting_a_connection_revokes_its_keys,
);

async fn connections_live_in_the_named_workspace(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let ws = admin.workspace().await;
    let created = admin
        .in_workspace(ws)
        .create_connection(json!({"name": "Site", "type": "sdk"}))
        .await
        .unwrap();
    assert_eq!((created.kind.as_str(), created.workspace_id), ("sdk", ws));
    assert!(created.id > 0 && created.id <= i32::MAX as u32);
    assert!(created.allowed_origins.is_empty());

    // No header, unknown workspace, garbage header: 404 workspace does not exist.
    let error = admin.connections().await.unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "workspace does not exist");
    let error = admin.in_workspace(999_999).connections().await.unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "workspace does not exist");
    let reply = crate::support::send(
        admin.addr,
        "GET",
        "/v1/connections",
        &[
            (
                "authorization",
                &format!("Bearer {}", crate::support::API_KEY),
            ),
            ("intake-workspace", "first"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.error(404, "NotFound"), "workspace does not exist");

    let admin_ws = admin.in_workspace(ws);
    assert_eq!(
        admin_ws.connections().await.unwrap(),
        std::slice::from_ref(&created)
    );
    assert_eq!(admin_ws.get_connection(created.id).await.unwrap(), created);
    let other = admin.in_workspace(admin.workspace().await);
    let error = other.get_connection(created.id).await.unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "connection does not exist");
    let reply = admin_ws.request("GET", "/v1/connections/abc", None).await;
    assert_eq!(reply.error(404, "NotFound"), "connection does not exist");
    admin_ws.delete_connection(created.id).await.unwrap();
    let error = admin_ws.delete_connection(created.id).await.unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "connection does not exist");
}

async fn connections_without_keys_refuse_key_routes(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let ws = admin.workspace().await;
    let (conn, key) = admin.connection(ws, "database").await;
    assert!(key.is_none());
    let admin = admin.in_workspace(ws);
    for error in [
        admin.add_write_key(conn).await.unwrap_err(),
        admin.write_keys(conn).await.unwrap_err(),
    ] {
        assert_eq!(
            error.is(422, "NotEventConnection"),
            "connection is not an SDK or webhook connection"
        );
    }
}

async fn deleting_a_connection_revokes_its_keys(store: Store) {
    let app = start(store).await;
    let (ws, conn, first) = app.admin().sdk_key().await;
    let admin = app.admin().in_workspace(ws);
    let second = admin.add_write_key(conn).await.unwrap();
    let body = json!({"userId": "u", "event": "e"});
    for key in [&first, &second] {
        assert_eq!(app.post_json("/v1/track", key, &body).await.status, 200);
    }
    admin.delete_connection(conn).await.unwrap();
    for key in [&first, &second] {
        let reply = app.post_json("/v1/track", key, &body).await;
        reply.error(401, "Unauthorized");
    }
}
