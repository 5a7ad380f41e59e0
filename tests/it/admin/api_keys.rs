//! `/v1/keys`: creation, field rules, versions, soft delete, the operator's last key,
//! company isolation and workspace-restricted keys.

use serde_json::{json, Value};

use super::{start, Store};

on_both_stores!(
    a_created_key_is_shown_once_then_masked_and_works,
    creation_field_rules_give_422_naming_the_field,
    put_changes_version_description_and_allow_list,
    delete_is_soft_and_stops_the_key_at_once,
    the_last_active_operator_key_cannot_be_deleted,
    another_companys_keys_are_not_found,
    a_workspace_restricted_key_acts_only_in_its_workspace,
);

async fn a_created_key_is_shown_once_then_masked_and_works(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let created = admin
        .create_api_key(json!({"userId": "ada", "description": "CI",
            "whitelistedIPs": ["127.0.0.1", "10.0.0.0/8", "::1"]}))
        .await
        .unwrap();
    assert!(created.key.starts_with("api_") && created.key.len() == 44);
    assert!(created.key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        (created.status.as_str(), created.user_id.as_str()),
        ("active", "ada")
    );
    assert_eq!(
        created.whitelisted_ips,
        ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    );
    assert_eq!(
        (created.deleted_at.as_ref(), created.api_version.as_ref()),
        (None, None)
    );
    let shown = admin.api_key(&created.id).await.unwrap();
    assert_eq!(shown.key, format!("api_\u{2026}{}", &created.key[40..]));
    assert_eq!(shown.id, created.id);
    assert_eq!(admin.as_key(&created.key).workspaces().await.unwrap(), []);
    admin.api_key("nope").await.unwrap_err().is(404, "NotFound");
}

async fn creation_field_rules_give_422_naming_the_field(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let many: Vec<String> = (0..101)
        .map(|n| format!("10.0.{}.{}", n / 256, n % 256))
        .collect();
    for (body, field) in [
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
        (
            json!({"userId": "u", "whitelistedIPs": many}),
            "whitelistedIPs",
        ),
        (json!({"userId": "u", "workspaceId": 999}), "workspaceId"),
        (json!({"userId": "u", "workspaceId": "one"}), "workspaceId"),
    ] {
        let error = admin.create_api_key(body.clone()).await.unwrap_err();
        let message = error.is(422, "InvalidValue");
        assert!(message.contains(field), "{body}: {message}");
    }
    // The edges that are allowed.
    let hundred: Vec<String> = (0..100).map(|n| format!("10.1.0.{n}")).collect();
    let ok = admin
        .create_api_key(
            json!({"userId": "u", "description": "d".repeat(200), "whitelistedIPs": hundred}),
        )
        .await
        .unwrap();
    assert_eq!(
        (ok.description.unwrap().len(), ok.whitelisted_ips.len()),
        (200, 100)
    );
    let ok = admin
        .create_api_key(json!({"userId": "u", "description": null, "whitelistedIPs": null}))
        .await
        .unwrap();
    assert_eq!((ok.description, ok.whitelisted_ips), (None, vec![]));
    admin
        .request("POST", "/v1/keys", None)
        .await
        .error(400, "BadRequest");
}

async fn put_changes_version_description_and_allow_list(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let created = admin.create_api_key(json!({"userId": "u"})).await.unwrap();
    let id = created.id.as_str();
    let in_two_days = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .date()
        .to_string();
    for bad in [
        json!("2026-02-30"),
        json!("2026/01/01"),
        json!("2026-1-1"),
        json!(in_two_days),
        json!(1),
        Value::Null,
    ] {
        let error = admin
            .update_api_key(id, json!({"apiVersion": bad}))
            .await
            .unwrap_err();
        assert!(
            error.is(422, "InvalidValue").contains("apiVersion"),
            "{bad}"
        );
    }
    let updated = admin
        .update_api_key(
            id,
            json!({"apiVersion": "2025-06-01", "description": "pinned"}),
        )
        .await
        .unwrap();
    assert_eq!(updated.api_version.as_deref(), Some("2025-06-01"));
    assert_eq!(updated.description.as_deref(), Some("pinned"));
    let changed =
        intake::clock::parse_iso8601(updated.api_version_updated_at.as_deref().unwrap()).unwrap();
    let closes = intake::clock::parse_iso8601(
        updated
            .api_version_downgrade_not_allowed_after
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(closes - changed, time::Duration::hours(72));
    assert!(updated.key.starts_with("api_\u{2026}"));
    // Within 72 hours, going back is allowed; null clears the description.
    let back = admin
        .update_api_key(id, json!({"apiVersion": "2025-01-01", "description": null}))
        .await
        .unwrap();
    assert_eq!(
        (back.api_version.as_deref(), back.description),
        (Some("2025-01-01"), None)
    );
    // The allow-list applies from the next request.
    admin
        .update_api_key(id, json!({"whitelistedIPs": ["192.0.2.0/24"]}))
        .await
        .unwrap();
    let error = admin.as_key(&created.key).workspaces().await.unwrap_err();
    error.is(403, "Forbidden");
    admin
        .update_api_key(id, json!({"description": ""}))
        .await
        .unwrap_err()
        .is(422, "InvalidValue");
    admin
        .update_api_key("unknown", json!({}))
        .await
        .unwrap_err()
        .is(404, "NotFound");
}

async fn delete_is_soft_and_stops_the_key_at_once(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let created = admin.create_api_key(json!({"userId": "u"})).await.unwrap();
    admin.as_key(&created.key).workspaces().await.unwrap();
    admin.delete_api_key(&created.id).await.unwrap();
    let error = admin.as_key(&created.key).workspaces().await.unwrap_err();
    error.is(401, "Unauthorized");
    let shown = admin.api_key(&created.id).await.unwrap();
    assert_eq!(shown.status, "inactive");
    assert!(shown.deleted_at.is_some());
    admin.delete_api_key(&created.id).await.unwrap();
    let inactive = admin.api_keys("/v1/keys?status=inactive").await.unwrap();
    assert_eq!(
        (inactive.total, inactive.ids()),
        (1, vec![created.id.clone()])
    );
    let active = admin.api_keys("/v1/keys").await.unwrap();
    assert!(!active.ids().contains(&created.id));
}

async fn the_last_active_operator_key_cannot_be_deleted(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let page = admin.api_keys("/v1/keys").await.unwrap();
    let bootstrap = page.data[0].id.clone();
    let error = admin.delete_api_key(&bootstrap).await.unwrap_err();
    let message = error.is(409, "Conflict");
    assert!(message.contains("last active API key"), "{message}");
    admin.api_keys("/v1/keys").await.unwrap();

    // With a second operator key, one may go, then the other is the last.
    let second = admin
        .create_api_key(json!({"userId": "second"}))
        .await
        .unwrap();
    admin.delete_api_key(&bootstrap).await.unwrap();
    admin
        .workspaces()
        .await
        .unwrap_err()
        .is(401, "Unauthorized");
    let second_admin = admin.as_key(&second.key);
    let error = second_admin.delete_api_key(&second.id).await.unwrap_err();
    error.is(409, "Conflict");
    // A tenant may delete its own last key: the operator can still give it another.
    let tenant = admin.as_key(&second.key).create_company("T").await.unwrap();
    let owner = tenant.api_key.unwrap();
    admin
        .as_key(&owner.key)
        .delete_api_key(&owner.id)
        .await
        .unwrap();
}

async fn another_companys_keys_are_not_found(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let operator_key = admin.create_api_key(json!({"userId": "u"})).await.unwrap();
    let tenant = admin.create_company("T").await.unwrap();
    let owner = tenant.api_key.unwrap();
    let as_tenant = admin.as_key(&owner.key);
    as_tenant
        .api_key(&operator_key.id)
        .await
        .unwrap_err()
        .is(404, "NotFound");
    as_tenant
        .delete_api_key(&operator_key.id)
        .await
        .unwrap_err()
        .is(404, "NotFound");
    let error = as_tenant
        .update_api_key(&operator_key.id, json!({"description": "x"}))
        .await
        .unwrap_err();
    error.is(404, "NotFound");
    let listed = as_tenant.api_keys("/v1/keys").await.unwrap();
    assert_eq!((listed.total, listed.ids()), (1, vec![owner.id.clone()]));
    admin.api_key(&operator_key.id).await.unwrap();
}

async fn a_workspace_restricted_key_acts_only_in_its_workspace(store: Store) {
    let app = start(store).await;
    let admin = app.admin();
    let ws = admin.workspace().await;
    let other = admin.workspace().await;
    let key = admin
        .create_api_key(json!({"userId": "u", "workspaceId": ws}))
        .await
        .unwrap();
    assert_eq!(key.workspace_id, Some(ws));
    let restricted = admin.as_key(&key.key);
    // No header needed; its own workspace named is fine; another is 403.
    let created = restricted
        .create_connection(json!({"name": "c", "type": "sdk"}))
        .await
        .unwrap();
    assert_eq!(created.workspace_id, ws);
    restricted.in_workspace(ws).connections().await.unwrap();
    let error = restricted
        .in_workspace(other)
        .connections()
        .await
        .unwrap_err();
    error.is(403, "Forbidden");
    // It manages neither API keys nor companies nor workspaces.
    restricted
        .api_keys("/v1/keys")
        .await
        .unwrap_err()
        .is(403, "Forbidden");
    let error = restricted
        .create_api_key(json!({"userId": "x"}))
        .await
        .unwrap_err();
    error.is(403, "Forbidden");
    restricted
        .companies()
        .await
        .unwrap_err()
        .is(403, "Forbidden");
    restricted
        .create_workspace("x")
        .await
        .unwrap_err()
        .is(403, "Forbidden");
    restricted
        .delete_workspace(ws)
        .await
        .unwrap_err()
        .is(403, "Forbidden");
    assert_eq!(restricted.workspaces().await.unwrap().len(), 1);
    restricted
        .get_workspace(other)
        .await
        .unwrap_err()
        .is(404, "NotFound");
}
