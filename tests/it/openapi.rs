//! `GET /openapi.json` describes what the live server does: every documented route
//! exists with the documented bodies, and schemathesis, run against the live document
//! with a real key, finds no undocumented status, schema mismatch or server error.

use std::collections::BTreeSet;
use std::path::PathBuf;

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
    let admin = app.admin().in_workspace(app.admin().workspace().await);
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "4242")
                .replace("{keyId}", "no-such-key")
                .replace("{key}", "no-such-key");
            let reply = admin
                .request(&method.to_uppercase(), &concrete, Some(json!({})))
                .await;
            assert_ne!(reply.status, 405, "{method} {path}");
            if reply.status == 404 {
                assert_ne!(
                    reply.json()["error"]["message"],
                    "no such route",
                    "{method} {path}"
                );
            }
            // Whatever it answered is documented.
            let documented = &operations[method]["responses"];
            assert!(
                documented.get(reply.status.to_string()).is_some(),
                "{method} {path}: {}",
                reply.status
            );
        }
    }

    // Bodies have the documented fields.
    let created = admin
        .request("POST", "/v1/workspaces", Some(json!({"name": "Doc"})))
        .await
        .json();
    assert_eq!(fields(&created), schema_fields(&doc, "WorkspaceView"));
    let connection = admin
        .request(
            "POST",
            "/v1/connections",
            Some(json!({"name": "c", "type": "sdk"})),
        )
        .await
        .json();
    assert_eq!(fields(&connection), schema_fields(&doc, "ConnectionView"));
    assert!(schema_fields(&doc, "ConnectionView").contains("allowedOrigins"));
    let key = admin
        .request("POST", "/v1/keys", Some(json!({"userId": "doc"})))
        .await
        .json();
    assert_eq!(fields(&key), schema_fields(&doc, "ApiKeyView"));
    let page = admin.request("GET", "/v1/keys", None).await.json();
    assert_eq!(fields(&page), schema_fields(&doc, "ApiKeyPage"));
    let error = admin.request("GET", "/v1/workspaces/99", None).await.json();
    assert_eq!(fields(&error), schema_fields(&doc, "ErrorBody"));
    let ready = send(app.admin.addr, "GET", "/readyz", &[], "").await.json();
    assert_eq!(fields(&ready), schema_fields(&doc, "Readiness"));

    // Every authenticated route documents the answers any of them can give.
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let statuses = &operation["responses"];
            if !path.starts_with("/v1/") {
                continue;
            }
            for status in ["401", "403", "429", "503"] {
                assert!(statuses.get(status).is_some(), "{method} {path}: {status}");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(statuses.get(status).is_some(), "{method} {path}: {status}");
                }
            }
        }
    }
}

/// schemathesis, as `./scripts/test.sh` installs it.
fn schemathesis() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let st = root.join("target/clients/venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: ./scripts/test.sh installs schemathesis",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_on_any_route() {
    let st = schemathesis();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/schemathesis.toml");
    // Its guesses would lock out its own address after 20 failures: limit off here.
    let app = TestApp::start_with(|c| c.admin.auth_failures_per_minute = 0).await;
    let workspace = app.admin().workspace().await.to_string();
    let url = format!("http://{}/openapi.json", app.admin.addr);
    let auth = format!("Authorization: Bearer {}", crate::support::API_KEY);
    // Changing or deleting API keys by id runs apart: with ids learnt from the other
    // operations it would deactivate the very key the run uses, and test nothing after.
    let key_changes = ["PUT /v1/keys/{keyId}", "DELETE /v1/keys/{keyId}"];
    for (filter, name) in [
        ("--exclude-name", "all but key changes"),
        ("--include-name", "key changes"),
    ] {
        let mut command = std::process::Command::new(&st);
        command
            .arg("--config-file")
            .arg(&config)
            .args([
                "run", &url, "-H", &auth, "--checks", "all", "-n", "30", "--seed", "1",
            ])
            .args(["--no-color", "--generation-database", "none"])
            .env("INTAKE_WORKSPACE", &workspace);
        for operation in key_changes {
            command.arg(filter).arg(operation);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis ({name}) failed:\n{report}"
        );
        assert!(!report.contains("Authentication failed"), "{report}");
    }
}
