//! The admin listener: authentication, companies, workspaces, connections and the
//! event write keys API with every seed error (SPEC §4).

use std::sync::Arc;

use serde_json::json;

use crate::support::{send, TestApp, API_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn requests_need_a_valid_api_key() {
    let app = TestApp::start().await;
    let addr = app.admin.addr;
    let reply = send(addr, "GET", "/v1/workspaces", &[], "").await;
    reply.error(401, "Unauthorized");
    let reply = send(
        addr,
        "GET",
        "/v1/workspaces",
        &[("authorization", "Bearer api_nope")],
        "",
    )
    .await;
    reply.error(401, "Unauthorized");
    let wrong = format!("Bearer api_{}", "x".repeat(40));
    let reply = send(
        addr,
        "GET",
        "/v1/workspaces",
        &[("authorization", wrong.as_str())],
        "",
    )
    .await;
    reply.error(401, "Unauthorized");
    let reply = send(addr, "GET", "/v1/workspaces", &[("x-api-key", API_KEY)], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"workspaces": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_json_404_405() {
    let app = TestApp::start().await;
    let addr = app.admin.addr;
    assert_eq!(send(addr, "GET", "/healthz", &[], "").await.status, 200);
    let ready = send(addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    send(addr, "GET", "/nothing", &[], "")
        .await
        .error(404, "NotFound");
    app.admin
        .call("PATCH", "/v1/workspaces", None, None)
        .await
        .error(405, "MethodNotAllowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_are_created_listed_read_and_deleted() {
    let app = TestApp::start().await;
    let created = app
        .admin
        .call(
            "POST",
            "/v1/workspaces",
            None,
            Some(json!({"name": "Shop"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let ws = created.json();
    assert_eq!(ws["name"], "Shop");
    assert!(ws["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = ws["id"].as_u64().unwrap();
    let list = app
        .admin
        .call("GET", "/v1/workspaces", None, None)
        .await
        .json();
    assert_eq!(list["workspaces"], json!([ws]));
    let one = app
        .admin
        .call("GET", &format!("/v1/workspaces/{id}"), None, None)
        .await;
    assert_eq!(one.json(), ws);
    let (_, key) = app.admin.connection(id as u32, "sdk").await;
    let key = key.unwrap();
    assert_eq!(
        app.admin
            .call("DELETE", &format!("/v1/workspaces/{id}"), None, None)
            .await
            .status,
        204
    );
    app.admin
        .call("GET", &format!("/v1/workspaces/{id}"), None, None)
        .await
        .error(404, "NotFound");
    // Its connections' keys went with it.
    let reply = send(
        app.ingest,
        "POST",
        "/v1/track",
        &[("x-write-key", key.as_str())],
        r#"{"userId":"u","event":"e"}"#,
    )
    .await;
    reply.error(401, "Unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn field_rules_give_422_naming_the_field_and_bad_json_400() {
    let app = TestApp::start().await;
    let reply = app
        .admin
        .call("POST", "/v1/workspaces", None, Some(json!({})))
        .await;
    assert!(reply.error(422, "InvalidValue").contains("name"));
    let reply = app
        .admin
        .call("POST", "/v1/workspaces", None, Some(json!({"name": 5})))
        .await;
    assert!(reply.error(422, "InvalidValue").contains("name"));
    let reply = app
        .admin
        .call(
            "POST",
            "/v1/workspaces",
            None,
            Some(json!({"name": "x".repeat(101)})),
        )
        .await;
    assert!(reply.error(422, "InvalidValue").contains("name"));
    let reply = app
        .admin
        .call("POST", "/v1/workspaces", None, Some(json!([1])))
        .await;
    reply.error(400, "BadRequest");
    let ws = app.admin.workspace().await;
    let reply = app
        .admin
        .call(
            "POST",
            "/v1/connections",
            Some(ws),
            Some(json!({"name": "c"})),
        )
        .await;
    assert!(reply.error(422, "InvalidValue").contains("type"));
    let reply = app
        .admin
        .call(
            "POST",
            "/v1/connections",
            Some(ws),
            Some(json!({"name": "c", "type": "Not Valid"})),
        )
        .await;
    assert!(reply.error(422, "InvalidValue").contains("type"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_live_in_the_named_workspace() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let created = app
        .admin
        .call(
            "POST",
            "/v1/connections",
            Some(ws),
            Some(json!({"name": "Site", "type": "sdk"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let conn = created.json();
    assert_eq!(conn["type"], "sdk");
    assert_eq!(conn["workspaceId"], ws);
    let id = conn["id"].as_u64().unwrap();
    assert!(id > 0 && id <= i32::MAX as u64);

    // No header, unknown workspace, garbage header: 404 workspace does not exist.
    for ws_header in [None, Some(999_999)] {
        let reply = app
            .admin
            .call("GET", "/v1/connections", ws_header, None)
            .await;
        assert_eq!(reply.error(404, "NotFound"), "workspace does not exist");
    }
    let list = app
        .admin
        .call("GET", "/v1/connections", Some(ws), None)
        .await
        .json();
    assert_eq!(list["connections"], json!([conn]));
    let other_ws = app.admin.workspace().await;
    let reply = app
        .admin
        .call(
            "GET",
            &format!("/v1/connections/{id}"),
            Some(other_ws),
            None,
        )
        .await;
    assert_eq!(reply.error(404, "NotFound"), "connection does not exist");
    let reply = app
        .admin
        .call("GET", "/v1/connections/abc", Some(ws), None)
        .await;
    assert_eq!(reply.error(404, "NotFound"), "connection does not exist");
    assert_eq!(
        app.admin
            .call("DELETE", &format!("/v1/connections/{id}"), Some(ws), None)
            .await
            .status,
        204
    );
    let reply = app
        .admin
        .call("DELETE", &format!("/v1/connections/{id}"), Some(ws), None)
        .await;
    assert_eq!(reply.error(404, "NotFound"), "connection does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn event_write_keys_follow_the_seed_rules() {
    seed_rules(&TestApp::start().await).await;
}

/// Every rule and error of the event write keys seed, on any store.
pub async fn seed_rules(app: &TestApp) {
    let ws = app.admin.workspace().await;
    let (conn, first) = app.admin.connection(ws, "sdk").await;
    let first = first.unwrap();
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
    let path = format!("/v1/connections/{conn}/event-write-keys");

    // Up to 20 keys, oldest first; the 21st is refused.
    let mut keys = vec![first.clone()];
    for _ in 1..20 {
        let reply = app.admin.call("POST", &path, Some(ws), None).await;
        assert_eq!(reply.status, 201);
        keys.push(reply.json()["key"].as_str().unwrap().to_string());
    }
    let reply = app.admin.call("POST", &path, Some(ws), None).await;
    assert_eq!(
        reply.error(422, "TooManyEventWriteKeys"),
        "connection already has 20 keys"
    );
    let listed = app.admin.call("GET", &path, Some(ws), None).await.json();
    assert_eq!(listed, json!({ "keys": keys }));

    // Deleting: unknown key 404, then down to one key, which cannot go.
    let reply = app
        .admin
        .call(
            "DELETE",
            &format!("{path}/{}", "z".repeat(32)),
            Some(ws),
            None,
        )
        .await;
    assert_eq!(reply.error(404, "NotFound"), "key does not exist");
    for key in &keys[1..] {
        let reply = app
            .admin
            .call("DELETE", &format!("{path}/{key}"), Some(ws), None)
            .await;
        assert_eq!(reply.status, 204);
    }
    let reply = app
        .admin
        .call("DELETE", &format!("{path}/{first}"), Some(ws), None)
        .await;
    assert_eq!(
        reply.error(422, "SingleEventWriteKey"),
        "key cannot be deleted as it is the connection's only key"
    );
    assert_eq!(
        app.admin.call("GET", &path, Some(ws), None).await.json(),
        json!({"keys": [first]})
    );

    // Workspace and connection errors on every route.
    for (method, route) in [
        ("POST", path.clone()),
        ("GET", path.clone()),
        ("DELETE", format!("{path}/{first}")),
    ] {
        let reply = app.admin.call(method, &route, Some(424242), None).await;
        assert_eq!(
            reply.error(404, "NotFound"),
            "workspace does not exist",
            "{method}"
        );
        let reply = app.admin.call(method, &route, None, None).await;
        assert_eq!(
            reply.error(404, "NotFound"),
            "workspace does not exist",
            "{method}"
        );
        let missing = route.replace(&conn.to_string(), "12345");
        let reply = app.admin.call(method, &missing, Some(ws), None).await;
        assert_eq!(
            reply.error(404, "NotFound"),
            "connection does not exist",
            "{method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_without_keys_refuse_key_routes() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let (conn, key) = app.admin.connection(ws, "database").await;
    assert!(key.is_none());
    let path = format!("/v1/connections/{conn}/event-write-keys");
    for method in ["POST", "GET"] {
        let reply = app.admin.call(method, &path, Some(ws), None).await;
        assert_eq!(
            reply.error(422, "NotEventConnection"),
            "connection is not an SDK or webhook connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_cap_and_last_key_rule_hold_under_concurrency() {
    let app = Arc::new(TestApp::start().await);
    let ws = app.admin.workspace().await;
    let (conn, _) = app.admin.connection(ws, "sdk").await;
    let path = format!("/v1/connections/{conn}/event-write-keys");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, path) = (app.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            app.admin.call("POST", &path, Some(ws), None).await.status
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => created += 1,
            422 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 19);
    let keys: Vec<String> = app.admin.call("GET", &path, Some(ws), None).await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 20);
    let mut tasks = Vec::new();
    for key in keys {
        let (app, path) = (app.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            app.admin
                .call("DELETE", &format!("{path}/{key}"), Some(ws), None)
                .await
                .status
        }));
    }
    let statuses: Vec<u16> = futures_join(tasks).await;
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 19);
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 1);
    let left = app.admin.call("GET", &path, Some(ws), None).await.json();
    assert_eq!(left["keys"].as_array().unwrap().len(), 1);
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn companies_are_isolated_from_each_other() {
    company_isolation(&TestApp::start().await).await;
}

/// A tenant company sees nothing of the operator's, on any store.
pub async fn company_isolation(app: &TestApp) {
    let operator_ws = app.admin.workspace().await;
    let created = app
        .admin
        .call("POST", "/v1/companies", None, Some(json!({"name": "Acme"})))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let company = created.json();
    assert_eq!(company["name"], "Acme");
    let tenant_key = company["apiKey"]["key"].as_str().unwrap().to_string();
    assert!(tenant_key.starts_with("api_") && tenant_key.len() == 44);
    assert_eq!(company["apiKey"]["userId"], "owner");
    assert_eq!(company["apiKey"]["companyId"], company["id"]);
    assert_eq!(company["apiKey"]["status"], "active");

    let listed = app
        .admin
        .call("GET", "/v1/companies", None, None)
        .await
        .json();
    assert_eq!(listed["companies"].as_array().unwrap().len(), 2);

    // The tenant sees nothing of the operator's and may not manage companies.
    let tenant = |method: &'static str, path: String, ws: Option<u32>| {
        let key = tenant_key.clone();
        let admin = app.admin;
        async move { admin.call_as(&key, method, &path, ws, None).await }
    };
    tenant("GET", "/v1/companies".into(), None)
        .await
        .error(403, "Forbidden");
    let reply = tenant("GET", format!("/v1/workspaces/{operator_ws}"), None).await;
    reply.error(404, "NotFound");
    let reply = tenant("GET", "/v1/connections".into(), Some(operator_ws)).await;
    assert_eq!(reply.error(404, "NotFound"), "workspace does not exist");
    let list = tenant("GET", "/v1/workspaces".into(), None).await.json();
    assert_eq!(list, json!({"workspaces": []}));
    let own = app
        .admin
        .call_as(
            &tenant_key,
            "POST",
            "/v1/workspaces",
            None,
            Some(json!({"name": "Acme WS"})),
        )
        .await;
    assert_eq!(own.status, 201);
    let own_id = own.json()["id"].as_u64().unwrap();
    app.admin
        .call("GET", &format!("/v1/workspaces/{own_id}"), None, None)
        .await
        .error(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_start_without_keys_generates_one() {
    let app = TestApp::start_with(|c| c.admin.bootstrap_api_key = None).await;
    let path = app.dir.path().join("bootstrap-api-key");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(key.starts_with("api_") && key.len() == 44);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reply = app
        .admin
        .call_as(&key, "GET", "/v1/companies", None, None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["companies"][0]["name"], "default");
    // The configured test key was not created.
    app.admin
        .call("GET", "/v1/workspaces", None, None)
        .await
        .error(401, "Unauthorized");
}
