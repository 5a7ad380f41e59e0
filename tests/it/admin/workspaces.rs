//! Authentication, health, workspaces, field rules, companies and their isolation.

use serde_json::json;

use super::{start, Store};
use crate::support::{send, API_KEY};

on_both_stores!(
    requests_need_a_valid_api_key,
    health_readiness_and_json_404_405,
    workspaces_are_created_listed_read_and_deleted,
    field_rules_give_422_naming_the_field_and_bad_json_400,
    companies_are_isolated_from_each_other,
);

async fn requests_need_a_valid_api_key(store: Store) {
    let app = start(store).await;
    let addr = app.admin.addr;
    let wrong = format!("Bearer api_{}", "x".repeat(40));
    for headers in [
        vec![],
        vec![("authorization", "Bearer api_nope")],
        vec![("authorization", wrong.as_str())],
    ] {
        send(addr, "GET", "/v1/workspaces", &headers, "")
            .await
            .error(401, "Unauthorized");
    }
    let reply = send(addr, "GET", "/v1/workspaces", &[("x-api-key", API_KEY)], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"workspaces": []}));
}

async fn health_readiness_and_json_404_405(store: Store) {
    let app = start(store).await;
    let addr = app.admin.addr;
    assert_eq!(
        send(addr, "GET", "/healthz", &[], "").await.json(),
        json!({"status": "ok"})
    );
    let ready = send(addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert!(ready.json()["version"].as_u64().unwrap() >= 1);
    send(addr, "GET", "/nothing", &[], "")
        .await
        .error(404, "NotFound");
    let reply = app.admin().request("PATCH", "/v1/workspaces", None).await;
    reply.error(405, "MethodNotAllowed");
}

async fn workspaces_are_created_listed_read_and_deleted(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let ws = admin.create_workspace(" Shop ").await.unwrap();
    assert_eq!(ws.name, "Shop");
    assert!(ws.created_at.ends_with('Z'));
    assert_eq!(admin.workspaces().await.unwrap(), std::slice::from_ref(&ws));
    assert_eq!(admin.get_workspace(ws.id).await.unwrap(), ws);
    let (_, key) = admin.connection(ws.id, "sdk").await;
    admin.delete_workspace(ws.id).await.unwrap();
    admin
        .get_workspace(ws.id)
        .await
        .unwrap_err()
        .is(404, "NotFound");
    admin
        .delete_workspace(ws.id)
        .await
        .unwrap_err()
        .is(404, "NotFound");
    // Its connections' keys went with it.
    let key = key.unwrap();
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

async fn field_rules_give_422_naming_the_field_and_bad_json_400(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "  "}), "name"),
    ] {
        let reply = admin.request("POST", "/v1/workspaces", Some(body)).await;
        assert!(reply.error(422, "InvalidValue").contains(field));
    }
    for body in ["[1]", "", "{", "\"x\""] {
        let reply = send(
            app.admin.addr,
            "POST",
            "/v1/workspaces",
            &[("authorization", &format!("Bearer {API_KEY}"))],
            body,
        )
        .await;
        reply.error(400, "BadRequest");
    }
    let ws = admin.in_workspace(admin.workspace().await);
    for (body, field) in [
        (json!({"name": "c"}), "type"),
        (json!({"name": "c", "type": "Not Valid"}), "type"),
        (json!({"type": "sdk"}), "name"),
    ] {
        let error = ws.create_connection(body).await.unwrap_err();
        assert!(error.is(422, "InvalidValue").contains(field));
    }
}

async fn companies_are_isolated_from_each_other(store: Store) {
    let app = start(store).await;
    let operator = app.admin();
    let operator_ws = operator.workspace().await;
    let company = operator.create_company("Acme").await.unwrap();
    assert_eq!(company.name, "Acme");
    let key = company.api_key.unwrap();
    assert!(key.key.starts_with("api_") && key.key.len() == 44);
    assert_eq!(
        (key.user_id.as_str(), key.status.as_str()),
        ("owner", "active")
    );
    assert_eq!(key.company_id, company.id);
    assert_eq!(operator.companies().await.unwrap().len(), 2);

    // The tenant sees nothing of the operator's and may not manage companies.
    let tenant = operator.as_key(&key.key);
    tenant.companies().await.unwrap_err().is(403, "Forbidden");
    tenant
        .create_company("x")
        .await
        .unwrap_err()
        .is(403, "Forbidden");
    tenant
        .get_workspace(operator_ws)
        .await
        .unwrap_err()
        .is(404, "NotFound");
    let error = tenant
        .in_workspace(operator_ws)
        .connections()
        .await
        .unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "workspace does not exist");
    assert!(tenant.workspaces().await.unwrap().is_empty());
    let own = tenant.create_workspace("Acme WS").await.unwrap();
    operator
        .get_workspace(own.id)
        .await
        .unwrap_err()
        .is(404, "NotFound");
}
