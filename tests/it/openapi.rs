//! `GET /openapi.json` describes what the live server does.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::{send, TestApp};

fn schema_fields(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name}"))
        .keys()
        .cloned()
        .collect()
}

fn fields(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_matches_the_live_routes_and_bodies() {
    let app = TestApp::start().await;
    let reply = send(app.admin.addr, "GET", "/openapi.json", &[], "").await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);

    // Every documented operation exists on the server: no route-level 404 or 405.
    let ws = app.admin.workspace().await;
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "4242")
                .replace("{keyId}", "no-such-key")
                .replace("{key}", "no-such-key");
            let reply = app
                .admin
                .call(&method.to_uppercase(), &concrete, Some(ws), Some(json!({})))
                .await;
            assert_ne!(reply.status, 405, "{method} {path}");
            if reply.status == 404 {
                let message = reply.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_ne!(message, "no such route", "{method} {path}");
            }
        }
    }

    // Bodies have the documented fields.
    let created = app
        .admin
        .call("POST", "/v1/workspaces", None, Some(json!({"name": "Doc"})))
        .await
        .json();
    assert_eq!(fields(&created), schema_fields(&doc, "WorkspaceView"));
    let (conn, _) = app.admin.connection(ws, "sdk").await;
    let connection = app
        .admin
        .call("GET", &format!("/v1/connections/{conn}"), Some(ws), None)
        .await
        .json();
    assert_eq!(fields(&connection), schema_fields(&doc, "ConnectionView"));
    let key = app
        .admin
        .call("POST", "/v1/keys", None, Some(json!({"userId": "doc"})))
        .await
        .json();
    assert_eq!(fields(&key), schema_fields(&doc, "ApiKeyView"));
    let page = app.admin.call("GET", "/v1/keys", None, None).await.json();
    assert_eq!(fields(&page), schema_fields(&doc, "ApiKeyPage"));
    let error = app
        .admin
        .call("GET", "/v1/workspaces/99", None, None)
        .await
        .json();
    assert_eq!(fields(&error), schema_fields(&doc, "ErrorBody"));

    // The documented statuses of one route include what the server answers.
    let create_keys = &paths["/v1/connections/{id}/event-write-keys"]["post"]["responses"];
    for status in ["201", "404", "422"] {
        assert!(create_keys.get(status).is_some(), "{status}");
    }
}
