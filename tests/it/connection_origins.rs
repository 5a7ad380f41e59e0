//! A connection's `allowedOrigins` enforced on the ingest path (SPEC §2 CORS): set
//! with `PUT /v1/connections/{id}`, read from the key index, a 403 for other pages,
//! a preflight without allow headers, and `ingest.cors_origins` again once the list
//! is emptied.

use serde_json::json;

use crate::support::{basic, send, Reply, TestApp};

async fn track_from(app: &TestApp, key: &str, origin: Option<&str>, id: &str) -> Reply {
    let auth = basic(key);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(origin.map(|o| ("origin", o)));
    let body = json!({"userId": "u", "event": "E", "messageId": id}).to_string();
    app.post("/v1/t", &headers, body).await
}

async fn beacon_preflight(app: &TestApp, key: &str, origin: &str) -> Reply {
    let path = format!("/beacon/v1/batch?writeKey={key}");
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    send(app.ingest, "OPTIONS", &path, &headers, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connections_allowed_origins_replace_the_global_list() {
    let app = TestApp::start().await;
    let (workspace, connection, key) = app.admin.sdk_key().await;
    let (_, _, open_key) = app.admin.sdk_key().await;
    let admin = app.admin.in_workspace(workspace);
    admin
        .update_connection(
            connection,
            json!({"allowedOrigins": ["https://*.shop.example"]}),
        )
        .await
        .unwrap();

    let shop = "https://www.shop.example";
    let reply = track_from(&app, &key, Some(shop), "shop").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(shop));
    assert_eq!(reply.header("vary"), Some("Origin"));
    for evil in ["https://evil.example", "https://shop.example", "null"] {
        let reply = track_from(&app, &key, Some(evil), "refused").await;
        reply.error(403, "Forbidden");
        assert_eq!(reply.header("access-control-allow-origin"), None, "{evil}");
    }
    assert_eq!(track_from(&app, &key, None, "server").await.status, 200);

    let refused = beacon_preflight(&app, &key, "https://evil.example").await;
    assert_eq!(refused.status, 204);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(refused.header("access-control-allow-methods"), None);
    let allowed = beacon_preflight(&app, &key, shop).await;
    assert_eq!(allowed.status, 204);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(shop));
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("content-type")
    );

    // Another connection, without a list, keeps `ingest.cors_origins` (["*"]).
    let reply = track_from(&app, &open_key, Some("https://evil.example"), "open").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));

    // An emptied list defers to `ingest.cors_origins` again.
    admin
        .update_connection(connection, json!({"allowedOrigins": []}))
        .await
        .unwrap();
    let reply = track_from(&app, &key, Some("https://evil.example"), "after").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));

    let stored: Vec<String> = app
        .events()
        .iter()
        .map(|e| e["event"]["messageId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, ["shop", "server", "open", "after"]);
}
