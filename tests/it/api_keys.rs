//! `/v1/keys`: creation, field rules, versions, soft delete, paging, allow-lists,
//! isolation, workspace-restricted keys and the failed-authentication limit.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::support::{send, send_from, AdminClient, TestApp, API_KEY};

async fn create_key(admin: &AdminClient, key: &str, body: Value) -> Value {
    let reply = admin
        .call_as(key, "POST", "/v1/keys", None, Some(body))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_key_is_shown_once_then_masked_and_works() {
    let app = TestApp::start().await;
    let created = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "ada", "description": "CI", "whitelistedIPs": ["127.0.0.1", "10.0.0.0/8", "::1"]}),
    )
    .await;
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("api_") && secret.len() == 44);
    assert!(secret[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    for field in [
        "id",
        "companyId",
        "workspaceId",
        "userId",
        "key",
        "whitelistedIPs",
        "status",
        "description",
        "apiVersion",
        "apiVersionUpdatedAt",
        "apiVersionDowngradeNotAllowedAfter",
        "createdAt",
        "updatedAt",
        "deletedAt",
    ] {
        assert!(created.get(field).is_some(), "missing {field}");
    }
    assert_eq!(created["status"], "active");
    assert_eq!(created["userId"], "ada");
    assert_eq!(
        created["whitelistedIPs"],
        json!(["127.0.0.1/32", "10.0.0.0/8", "::1/128"])
    );
    assert_eq!(created["deletedAt"], Value::Null);
    let id = created["id"].as_str().unwrap();
    let shown = app
        .admin
        .call("GET", &format!("/v1/keys/{id}"), None, None)
        .await
        .json();
    assert_eq!(shown["key"], format!("api_\u{2026}{}", &secret[40..]));
    assert_eq!(shown["id"], created["id"]);
    // The new key authenticates.
    let reply = app
        .admin
        .call_as(&secret, "GET", "/v1/workspaces", None, None)
        .await;
    assert_eq!(reply.status, 200);
    // Unknown id.
    app.admin
        .call("GET", "/v1/keys/nope", None, None)
        .await
        .error(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_field_rules_give_422_naming_the_field() {
    let app = TestApp::start().await;
    let cases = [
        (json!({}), "userId"),
        (json!({"userId": ""}), "userId"),
        (json!({"userId": 5}), "userId"),
        (json!({"userId": "u", "description": ""}), "description"),
        (
            json!({"userId": "u", "description": "d".repeat(201)}),
            "description",
        ),
        (json!({"userId": "u", "description": 3}), "description"),
        (
            json!({"userId": "u", "whitelistedIPs": "10.0.0.1"}),
            "whitelistedIPs",
        ),
        (
            json!({"userId": "u", "whitelistedIPs": ["10.0.0.300"]}),
            "whitelistedIPs",
        ),
        (
            json!({"userId": "u", "whitelistedIPs": ["10.0.0.0/33"]}),
            "whitelistedIPs",
        ),
        (
            json!({"userId": "u", "whitelistedIPs": ["fe80::/129"]}),
            "whitelistedIPs",
        ),
        (
            json!({"userId": "u", "whitelistedIPs": [7]}),
            "whitelistedIPs",
        ),
        (json!({"userId": "u", "workspaceId": 999}), "workspaceId"),
        (json!({"userId": "u", "workspaceId": "one"}), "workspaceId"),
    ];
    for (body, field) in cases {
        let reply = app
            .admin
            .call("POST", "/v1/keys", None, Some(body.clone()))
            .await;
        let message = reply.error(422, "InvalidValue");
        assert!(message.contains(field), "{body}: {message}");
    }
    // The edges that are allowed.
    let ok = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "description": "d".repeat(200), "whitelistedIPs": []}),
    )
    .await;
    assert_eq!(ok["description"].as_str().unwrap().len(), 200);
    let ok = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "description": null}),
    )
    .await;
    assert_eq!(ok["description"], Value::Null);
    let reply = app.admin.call("POST", "/v1/keys", None, None).await;
    reply.error(400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn put_changes_version_description_and_allow_list() {
    let app = TestApp::start().await;
    let created = create_key(&app.admin, API_KEY, json!({"userId": "u"})).await;
    let secret = created["key"].as_str().unwrap().to_string();
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    assert_eq!(created["apiVersion"], Value::Null);
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .date()
        .to_string();
    for bad in [
        json!("2026-02-30"),
        json!("2026/01/01"),
        json!("2026-1-1"),
        json!(tomorrow),
        json!(1),
    ] {
        let reply = app
            .admin
            .call("PUT", &path, None, Some(json!({"apiVersion": bad})))
            .await;
        assert!(
            reply.error(422, "InvalidValue").contains("apiVersion"),
            "{bad}"
        );
    }
    let reply = app
        .admin
        .call(
            "PUT",
            &path,
            None,
            Some(json!({"apiVersion": "2025-06-01", "description": "pinned"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let updated = reply.json();
    assert_eq!(updated["apiVersion"], "2025-06-01");
    assert_eq!(updated["description"], "pinned");
    let changed =
        intake::clock::parse_iso8601(updated["apiVersionUpdatedAt"].as_str().unwrap()).unwrap();
    let closes = intake::clock::parse_iso8601(
        updated["apiVersionDowngradeNotAllowedAfter"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(closes - changed, time::Duration::hours(72));
    assert!(updated["key"].as_str().unwrap().starts_with("api_\u{2026}"));
    // Within 72 hours, going back is allowed.
    let reply = app
        .admin
        .call(
            "PUT",
            &path,
            None,
            Some(json!({"apiVersion": "2025-01-01"})),
        )
        .await;
    assert_eq!(reply.status, 200);
    // The allow-list applies from the next request.
    let reply = app
        .admin
        .call(
            "PUT",
            &path,
            None,
            Some(json!({"whitelistedIPs": ["192.0.2.0/24"]})),
        )
        .await;
    assert_eq!(reply.status, 200);
    let reply = app
        .admin
        .call_as(&secret, "GET", "/v1/workspaces", None, None)
        .await;
    reply.error(403, "Forbidden");
    let reply = app
        .admin
        .call("PUT", &path, None, Some(json!({"description": ""})))
        .await;
    reply.error(422, "InvalidValue");
    app.admin
        .call("PUT", "/v1/keys/unknown", None, Some(json!({})))
        .await
        .error(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_soft_and_stops_the_key_at_once() {
    let app = TestApp::start().await;
    let created = create_key(&app.admin, API_KEY, json!({"userId": "u"})).await;
    let secret = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.admin
            .call_as(&secret, "GET", "/v1/workspaces", None, None)
            .await
            .status,
        200
    );
    let reply = app
        .admin
        .call("DELETE", &format!("/v1/keys/{id}"), None, None)
        .await;
    assert_eq!(reply.status, 204);
    app.admin
        .call_as(&secret, "GET", "/v1/workspaces", None, None)
        .await
        .error(401, "Unauthorized");
    let shown = app
        .admin
        .call("GET", &format!("/v1/keys/{id}"), None, None)
        .await
        .json();
    assert_eq!(shown["status"], "inactive");
    assert!(shown["deletedAt"].is_string());
    let inactive = app
        .admin
        .call("GET", "/v1/keys?status=inactive", None, None)
        .await
        .json();
    assert_eq!(inactive["total"], 1);
    assert_eq!(inactive["data"][0]["id"], id);
    let active = app.admin.call("GET", "/v1/keys", None, None).await.json();
    assert!(active["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != id));
}

/// Follows `nextUrl` from the first page, then `previousUrl` back; returns both walks.
async fn walk(
    admin: &AdminClient,
    key: &str,
    status: &str,
    limit: usize,
) -> (Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut url = format!("/v1/keys?status={status}&limit={limit}");
    let mut pages = Vec::new();
    loop {
        let page = admin.call_as(key, "GET", &url, None, None).await;
        assert_eq!(page.status, 200, "{url}: {:?}", page.body);
        let page = page.json();
        assert_eq!(page["status"], 200);
        let data = page["data"].as_array().unwrap();
        assert_eq!(page["count"], data.len());
        assert!(data.len() <= limit);
        forward.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_string()));
        pages.push(page.clone());
        match page["nextUrl"].as_str() {
            Some(next) => {
                assert!(!next.contains("offset"));
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages[0]["previousUrl"], Value::Null);
    let mut backward = Vec::new();
    let last = pages.last().unwrap();
    let mut data: Vec<String> = last["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    let mut previous = last["previousUrl"].as_str().map(str::to_string);
    loop {
        data.reverse();
        backward.extend(data);
        let Some(url) = previous else { break };
        let page = admin.call_as(key, "GET", &url, None, None).await.json();
        data = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            page["nextUrl"].is_string(),
            "a page walked back to has a next page"
        );
        previous = page["previousUrl"].as_str().map(str::to_string);
    }
    backward.reverse();
    (forward, backward)
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_visits_every_key_once_in_both_directions() {
    let app = TestApp::start().await;
    // A fresh company starts with one key (its owner's).
    let company = app
        .admin
        .call(
            "POST",
            "/v1/companies",
            None,
            Some(json!({"name": "Paged"})),
        )
        .await
        .json();
    let owner = company["apiKey"]["key"].as_str().unwrap().to_string();
    let (forward, backward) = walk(&app.admin, &owner, "inactive", 25).await;
    assert!(forward.is_empty() && backward.is_empty());
    let mut created = vec![company["apiKey"]["id"].as_str().unwrap().to_string()];
    for total in [1usize, 25, 26, 250] {
        while created.len() < total {
            let key = create_key(
                &app.admin,
                &owner,
                json!({"userId": format!("u{}", created.len())}),
            )
            .await;
            created.push(key["id"].as_str().unwrap().to_string());
        }
        let newest_first: Vec<String> = created.iter().rev().cloned().collect();
        for limit in [1, 25, 100] {
            let (forward, backward) = walk(&app.admin, &owner, "active", limit).await;
            assert_eq!(forward, newest_first, "total {total} limit {limit}");
            assert_eq!(backward, newest_first, "total {total} limit {limit}");
            assert_eq!(forward.iter().collect::<HashSet<_>>().len(), total);
        }
        let page = app
            .admin
            .call_as(&owner, "GET", "/v1/keys", None, None)
            .await
            .json();
        assert_eq!(page["total"], total);
        assert_eq!(page["count"], total.min(25));
    }
    // Offsets skip from the cursor in the direction of travel.
    let all: Vec<String> = created.iter().rev().cloned().collect();
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    };
    let page = app
        .admin
        .call_as(&owner, "GET", "/v1/keys?limit=5&offset=3", None, None)
        .await
        .json();
    assert_eq!(ids(&page), all[3..8]);
    let url = format!("/v1/keys?limit=5&offset=2&startingAfter={}", all[10]);
    let page = app
        .admin
        .call_as(&owner, "GET", &url, None, None)
        .await
        .json();
    assert_eq!(ids(&page), all[13..18]);
    let url = format!("/v1/keys?limit=5&offset=2&endingBefore={}", all[20]);
    let page = app
        .admin
        .call_as(&owner, "GET", &url, None, None)
        .await
        .json();
    assert_eq!(ids(&page), all[13..18]);
    // endingBefore wins over startingAfter.
    let url = format!(
        "/v1/keys?limit=2&startingAfter={}&endingBefore={}",
        all[0], all[5]
    );
    let page = app
        .admin
        .call_as(&owner, "GET", &url, None, None)
        .await
        .json();
    assert_eq!(ids(&page), all[3..5]);
    let page = app
        .admin
        .call_as(&owner, "GET", "/v1/keys?offset=1000", None, None)
        .await
        .json();
    assert_eq!(page["count"], 0);
    assert_eq!(page["total"], 250);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_list_parameters_give_422_naming_them() {
    let app = TestApp::start().await;
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("status=deleted", "status"),
        ("startingAfter=nope", "startingAfter"),
        ("endingBefore=nope", "endingBefore"),
    ] {
        let reply = app
            .admin
            .call("GET", &format!("/v1/keys?{query}"), None, None)
            .await;
        assert!(reply.error(422, "InvalidValue").contains(name), "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_lists_are_checked_against_the_real_source_address() {
    let app = TestApp::start().await;
    let key = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "whitelistedIPs": ["127.0.0.2", "127.0.0.8/29"]}),
    )
    .await;
    let auth = format!("Bearer {}", key["key"].as_str().unwrap());
    let headers = [("authorization", auth.as_str())];
    let from = |ip: &str| Some(ip.parse::<IpAddr>().unwrap());
    let reply = send_from(
        from("127.0.0.1"),
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &headers,
        "",
    )
    .await;
    assert!(reply.error(403, "Forbidden").contains("127.0.0.1"));
    for ok in ["127.0.0.2", "127.0.0.9", "127.0.0.15"] {
        let reply = send_from(
            from(ok),
            app.admin.addr,
            "GET",
            "/v1/workspaces",
            &headers,
            "",
        )
        .await;
        assert_eq!(reply.status, 200, "{ok}");
    }
    let reply = send_from(
        from("127.0.0.16"),
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &headers,
        "",
    )
    .await;
    reply.error(403, "Forbidden");
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "127.0.0.2"),
    ];
    let reply = send_from(
        from("127.0.0.1"),
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &forged,
        "",
    )
    .await;
    reply.error(403, "Forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_lists_work_over_ipv6() {
    let app = TestApp::start_with(|c| c.admin.listen = "[::1]:0".into()).await;
    let v6 = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "whitelistedIPs": ["::1"]}),
    )
    .await;
    let v4 = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "whitelistedIPs": ["127.0.0.0/8"]}),
    )
    .await;
    let reply = app
        .admin
        .call_as(
            v6["key"].as_str().unwrap(),
            "GET",
            "/v1/workspaces",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    let reply = app
        .admin
        .call_as(
            v4["key"].as_str().unwrap(),
            "GET",
            "/v1/workspaces",
            None,
            None,
        )
        .await;
    reply.error(403, "Forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_from_trusted_admin_proxies() {
    let app = TestApp::start_with(|c| c.admin.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let key = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "whitelistedIPs": ["198.51.100.0/24"]}),
    )
    .await;
    let auth = format!("Bearer {}", key["key"].as_str().unwrap());
    let via_proxy = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "198.51.100.9"),
    ];
    let reply = send(app.admin.addr, "GET", "/v1/workspaces", &via_proxy, "").await;
    assert_eq!(reply.status, 200);
    let direct = [("authorization", auth.as_str())];
    send(app.admin.addr, "GET", "/v1/workspaces", &direct, "")
        .await
        .error(403, "Forbidden");
    let untrusted = Some("127.0.0.2".parse().unwrap());
    let reply = send_from(
        untrusted,
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &via_proxy,
        "",
    )
    .await;
    reply.error(403, "Forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_companys_keys_are_not_found() {
    let app = TestApp::start().await;
    let operator_key = create_key(&app.admin, API_KEY, json!({"userId": "u"})).await;
    let id = operator_key["id"].as_str().unwrap();
    let tenant = app
        .admin
        .call("POST", "/v1/companies", None, Some(json!({"name": "T"})))
        .await
        .json();
    let tenant_key = tenant["apiKey"]["key"].as_str().unwrap();
    for method in ["GET", "DELETE"] {
        let reply = app
            .admin
            .call_as(tenant_key, method, &format!("/v1/keys/{id}"), None, None)
            .await;
        reply.error(404, "NotFound");
    }
    let reply = app
        .admin
        .call_as(
            tenant_key,
            "PUT",
            &format!("/v1/keys/{id}"),
            None,
            Some(json!({"description": "x"})),
        )
        .await;
    reply.error(404, "NotFound");
    let listed = app
        .admin
        .call_as(tenant_key, "GET", "/v1/keys", None, None)
        .await
        .json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["data"][0]["id"], tenant["apiKey"]["id"]);
    // The operator's key still works.
    assert_eq!(
        app.admin
            .call("GET", &format!("/v1/keys/{id}"), None, None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_restricted_key_acts_only_in_its_workspace() {
    let app = TestApp::start().await;
    let ws = app.admin.workspace().await;
    let other = app.admin.workspace().await;
    let key = create_key(
        &app.admin,
        API_KEY,
        json!({"userId": "u", "workspaceId": ws}),
    )
    .await;
    assert_eq!(key["workspaceId"], ws);
    let secret = key["key"].as_str().unwrap();
    // No header needed; its own workspace named is fine; another is 403.
    let reply = app
        .admin
        .call_as(
            secret,
            "POST",
            "/v1/connections",
            None,
            Some(json!({"name": "c", "type": "sdk"})),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["workspaceId"], ws);
    assert_eq!(
        app.admin
            .call_as(secret, "GET", "/v1/connections", Some(ws), None)
            .await
            .status,
        200
    );
    app.admin
        .call_as(secret, "GET", "/v1/connections", Some(other), None)
        .await
        .error(403, "Forbidden");
    // It manages neither API keys nor companies nor workspaces.
    app.admin
        .call_as(secret, "GET", "/v1/keys", None, None)
        .await
        .error(403, "Forbidden");
    app.admin
        .call_as(
            secret,
            "POST",
            "/v1/keys",
            None,
            Some(json!({"userId": "x"})),
        )
        .await
        .error(403, "Forbidden");
    app.admin
        .call_as(secret, "GET", "/v1/companies", None, None)
        .await
        .error(403, "Forbidden");
    let listed = app
        .admin
        .call_as(secret, "GET", "/v1/workspaces", None, None)
        .await
        .json();
    assert_eq!(listed["workspaces"].as_array().unwrap().len(), 1);
    app.admin
        .call_as(
            secret,
            "GET",
            &format!("/v1/workspaces/{other}"),
            None,
            None,
        )
        .await
        .error(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failed_authentications_get_429() {
    let app = TestApp::start().await;
    let guess = format!("api_{}", "g".repeat(40));
    let source = Some("127.0.0.5".parse::<IpAddr>().unwrap());
    let auth = format!("Bearer {guess}");
    for _ in 0..20 {
        let reply = send_from(
            source,
            app.admin.addr,
            "GET",
            "/v1/workspaces",
            &[("authorization", auth.as_str())],
            "",
        )
        .await;
        reply.error(401, "Unauthorized");
    }
    let reply = send_from(
        source,
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    reply.error(429, "TooManyRequests");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Even the right key is refused from that address until the window ends...
    let good = format!("Bearer {API_KEY}");
    let reply = send_from(
        source,
        app.admin.addr,
        "GET",
        "/v1/workspaces",
        &[("authorization", good.as_str())],
        "",
    )
    .await;
    reply.error(429, "TooManyRequests");
    // ...while other addresses are unaffected.
    assert_eq!(
        app.admin
            .call("GET", "/v1/workspaces", None, None)
            .await
            .status,
        200
    );
}
