//! Connections' `allowedOrigins` (SPEC §4): set on create and with PUT, canonical,
//! capped, and carried by the change feed into the key index, which answers the
//! ingest path's origin check.

use intake::index::OriginVerdict;
use serde_json::json;

use super::{start, Store};

on_both_stores!(
    allowed_origins_are_stored_changed_and_reach_the_index,
    bad_allowed_origins_give_422_naming_the_field,
);

async fn allowed_origins_are_stored_changed_and_reach_the_index(store: Store) {
    let app = start(store).await;
    let admin = app.admin().in_workspace(app.admin().workspace().await);
    let created = admin
        .create_connection(json!({"name": "Site", "type": "sdk",
            "allowedOrigins": ["https://Shop.example:443", "https://*.shop.example"]}))
        .await
        .unwrap();
    assert_eq!(
        created.allowed_origins,
        ["https://shop.example", "https://*.shop.example"]
    );
    assert_eq!(admin.get_connection(created.id).await.unwrap(), created);
    let verdict = |origin: &str| app.index().origin_verdict(created.id, origin.as_bytes());
    assert_eq!(verdict("https://shop.example"), OriginVerdict::Allowed);
    assert_eq!(verdict("https://www.shop.example"), OriginVerdict::Allowed);
    assert_eq!(verdict("https://evil.example"), OriginVerdict::Refused);

    // A new name keeps the origins; new origins replace them; null removes them.
    let renamed = admin
        .update_connection(created.id, json!({"name": "Shop site"}))
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), &renamed.allowed_origins),
        ("Shop site", &created.allowed_origins)
    );
    let changed = admin
        .update_connection(
            created.id,
            json!({"allowedOrigins": ["http://localhost:3000"]}),
        )
        .await
        .unwrap();
    assert_eq!(changed.allowed_origins, ["http://localhost:3000"]);
    assert_eq!(changed.name, "Shop site");
    assert_eq!(verdict("http://localhost:3000"), OriginVerdict::Allowed);
    assert_eq!(verdict("https://shop.example"), OriginVerdict::Refused);
    assert_eq!(
        admin.connections().await.unwrap(),
        std::slice::from_ref(&changed)
    );
    let cleared = admin
        .update_connection(created.id, json!({"allowedOrigins": null}))
        .await
        .unwrap();
    assert!(cleared.allowed_origins.is_empty());
    assert_eq!(verdict("https://evil.example"), OriginVerdict::NoPolicy);

    // Deleting the connection drops its origins from the index.
    admin
        .update_connection(created.id, json!({"allowedOrigins": ["https://a.example"]}))
        .await
        .unwrap();
    admin.delete_connection(created.id).await.unwrap();
    assert_eq!(verdict("https://evil.example"), OriginVerdict::NoPolicy);
    let error = admin
        .update_connection(created.id, json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(error.is(404, "NotFound"), "connection does not exist");
}

async fn bad_allowed_origins_give_422_naming_the_field(store: Store) {
    let app = start(store).await;
    let ws = app.admin().workspace().await;
    let admin = app.admin().in_workspace(ws);
    let (conn, _) = app.admin().connection(ws, "sdk").await;
    let many: Vec<String> = (0..101).map(|n| format!("https://{n}.example")).collect();
    for origins in [
        json!(["ftp://shop.example"]),
        json!(["https://shop.example/path"]),
        json!(["http://*.shop.example"]),
        json!(["https://*.example"]),
        json!("https://shop.example"),
        json!([7]),
        json!(many),
    ] {
        let body = json!({"name": "c", "type": "sdk", "allowedOrigins": origins});
        let error = admin.create_connection(body).await.unwrap_err();
        assert!(
            error.is(422, "InvalidValue").contains("allowedOrigins"),
            "{origins}"
        );
        let error = admin
            .update_connection(conn, json!({"allowedOrigins": origins}))
            .await
            .unwrap_err();
        assert!(
            error.is(422, "InvalidValue").contains("allowedOrigins"),
            "{origins}"
        );
    }
    let hundred: Vec<String> = (0..100).map(|n| format!("https://{n}.example")).collect();
    let body = json!({"name": "c", "type": "sdk", "allowedOrigins": hundred});
    assert_eq!(
        admin
            .create_connection(body)
            .await
            .unwrap()
            .allowed_origins
            .len(),
        100
    );
    let error = admin
        .update_connection(conn, json!({"name": ""}))
        .await
        .unwrap_err();
    assert!(error.is(422, "InvalidValue").contains("name"));
}
